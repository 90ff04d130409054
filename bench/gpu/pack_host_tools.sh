#!/usr/bin/env bash
# Packs the host-side binaries built here (hami, hami-device-plugin, hami-vgpu-monitor) with
# the Debian shared libraries they need into .gpu-tools/, for a GPU host that has neither
# the packages nor a network. RUNPATH=$ORIGIN/lib, so no LD_LIBRARY_PATH leaks into the jobs
# they start. glibc and libstdc++ stay the host's (newer there). Usage:
#   bench/gpu/pack_host_tools.sh BUILD_DIR     then carry .gpu-tools to the device
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build/release}
out=.gpu-tools
rm -rf "$out"
mkdir -p "$out/lib"
grep -qx '/.gpu-tools/' .git/info/exclude 2>/dev/null || echo '/.gpu-tools/' >> .git/info/exclude
skip='^(linux-vdso|libc\.so|libm\.so|libpthread|libdl\.so|librt\.so|ld-linux|libstdc\+\+|libgcc_s)'
for bin in "$build/src/hostd/hami" "$build/src/deviceplugin/hami-device-plugin" \
           "$build/src/monitor/hami-vgpu-monitor"; do
  [[ -x "$bin" ]] || { echo "missing $bin" >&2; exit 1; }
  cp "$bin" "$out/"
  strip "$out/$(basename "$bin")"
  patchelf --set-rpath '$ORIGIN/lib' "$out/$(basename "$bin")"
  ldd "$bin" | awk '$3 ~ /^\// {print $1, $3}' | while read -r name path; do
    [[ "$name" =~ $skip ]] && continue
    [[ -e "$out/lib/$name" ]] || { cp -L "$path" "$out/lib/$name"; strip "$out/lib/$name" 2>/dev/null || true; }
  done
done
for so in "$out"/lib/*.so*; do patchelf --set-rpath '$ORIGIN' "$so" 2>/dev/null || true; done
du -sh "$out"
