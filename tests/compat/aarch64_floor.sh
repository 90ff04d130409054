#!/bin/bash
# libvgpu.so for 64-bit Arm (Grace Hopper nodes) keeps the glibc floor too: cross-builds the
# library with cmake/aarch64-linux-gnu.cmake (g++-aarch64-linux-gnu) and checks it with
# glibc_floor.py (the versions it needs; it cannot be loaded here: by hand,
# HAMI_COMPAT_ARCH=arm64 tests/compat/old_glibc_load.sh under qemu-user).
#   tests/compat/aarch64_floor.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 out=$2
if ! cmake -S "$src" -B "$out" -DHAMI_HOOK_ONLY=ON -DCMAKE_BUILD_TYPE=Release \
     -DCMAKE_TOOLCHAIN_FILE="$src/cmake/aarch64-linux-gnu.cmake" > "$out.configure.log" 2>&1; then
  cat "$out.configure.log"; exit 1
fi
if ! cmake --build "$out" --target vgpu -j1 > "$out.build.log" 2>&1; then
  grep -E "error|Error" "$out.build.log" | head -20; exit 1
fi
exec python3 "$src/tests/compat/glibc_floor.py" "$out/lib/libvgpu.so"
