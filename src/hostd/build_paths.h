// Where `hami` finds its companions (libvgpu.so, the fake GPU driver) and its state, from the
// build tree or an installed layout, plus the version string.
#pragma once

#include <string>

namespace hami::hostd {

std::string BuildVersion();
// The first existing of: $HAMI_LIBVGPU, the build tree's libvgpu.so, <exe>/../lib/libvgpu.so,
// <exe>/../lib/hami/libvgpu.so, /usr/local/vgpu/libvgpu.so. Empty when none exists.
std::string FindLibvgpu();
// Directory holding the fake libnvidia-ml.so.1 / libcuda.so.1: $HAMI_FAKEGPU_LIB_DIR, the
// build tree's fakegpu/lib, <exe>/../lib/hami/fakegpu. Empty when none exists.
std::string FindFakeGpuLibDir();
// /var/lib/hami for root, else $XDG_STATE_HOME/hami or ~/.local/state/hami.
std::string DefaultStateDir();
// The daemon's Unix socket: /run/hami/hami.sock for root, else <DefaultStateDir()>/hami.sock.
std::string DefaultSocketPath();
// $HAMI_ADDR, else unix:<the first existing of /run/hami/hami.sock and the user's own
// <DefaultStateDir()>/hami.sock>, else unix:/run/hami/hami.sock.
std::string DefaultAddress();
// Where `hami serve --listen-tcp` writes its API token: <DefaultStateDir()>/api.token.
std::string DefaultTokenFile();
inline constexpr int kDefaultPort = 7460;
inline constexpr const char* kSystemSocket = "/run/hami/hami.sock";

}  // namespace hami::hostd
