#include "hostd/build_paths.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "abi/node_layout.h"

namespace hami::hostd {
namespace {

namespace fs = std::filesystem;

bool Exists(const std::string& p) {
  std::error_code ec;
  return !p.empty() && fs::exists(p, ec);
}

std::string ExeDir() {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  return p.parent_path().string();
}

}  // namespace

std::string BuildVersion() {
#ifdef HAMI_VERSION
  return HAMI_VERSION;
#else
  return "0.0.0";
#endif
}

std::string FindLibvgpu() {
  const char* env = getenv("HAMI_LIBVGPU");
  if (env && *env) return env;
#ifdef HAMI_BUILD_LIBVGPU
  if (Exists(HAMI_BUILD_LIBVGPU)) return HAMI_BUILD_LIBVGPU;
#endif
  std::string exe = ExeDir();
  for (const std::string& p : {exe + "/../lib/libvgpu.so", exe + "/../lib/hami/libvgpu.so",
                               std::string(abi::kDefaultHookPath) + abi::kHookSubdir + "/" + abi::kLibraryName}) {
    if (Exists(p)) return fs::weakly_canonical(p).string();
  }
  return "";
}

std::string FindFakeGpuLibDir() {
  const char* env = getenv("HAMI_FAKEGPU_LIB_DIR");
  if (env && *env) return env;
#ifdef HAMI_BUILD_FAKEGPU_LIB_DIR
  if (Exists(std::string(HAMI_BUILD_FAKEGPU_LIB_DIR) + "/libnvidia-ml.so.1")) {
    return HAMI_BUILD_FAKEGPU_LIB_DIR;
  }
#endif
  std::string exe = ExeDir();
  std::string p = exe + "/../lib/hami/fakegpu";
  if (Exists(p + "/libnvidia-ml.so.1")) return fs::weakly_canonical(p).string();
  return "";
}

std::string DefaultStateDir() {
  if (geteuid() == 0) return "/var/lib/hami";
  const char* xdg = getenv("XDG_STATE_HOME");
  if (xdg && *xdg) return std::string(xdg) + "/hami";
  const char* home = getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.local/state/hami";
}

std::string DefaultSocketPath() {
  if (geteuid() == 0) return kSystemSocket;
  return DefaultStateDir() + "/hami.sock";
}

std::string DefaultAddress() {
  const char* env = getenv("HAMI_ADDR");
  if (env && *env) return env;
  for (const std::string& p : {std::string(kSystemSocket), DefaultStateDir() + "/hami.sock"}) {
    if (Exists(p)) return "unix:" + p;
  }
  return std::string("unix:") + kSystemSocket;
}

std::string DefaultTokenFile() { return DefaultStateDir() + "/api.token"; }

}  // namespace hami::hostd
