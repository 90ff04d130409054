#!/bin/bash
# libvgpu.so preloaded under real old glibc builds (by hand; needs the network once):
#   tests/compat/old_glibc_load.sh [path/to/libvgpu.so]
#   HAMI_COMPAT_ARCH=arm64 tests/compat/old_glibc_load.sh build/aarch64/lib/libvgpu.so
#     (a cross build, cmake/aarch64-linux-gnu.cmake; runs under qemu-aarch64 from qemu-user,
#     with Debian 11's glibc 2.31, the one arm64 glibc before 2.34 that deb.debian.org keeps)
# Downloads the libc6 packages of Ubuntu 16.04 (2.23), 18.04 (2.27), Debian 11 (2.31) and
# Ubuntu 22.04 (2.35), and Debian 11's coreutils, into $HAMI_COMPAT_CACHE (default
# build/compat-cache), then runs Debian 11's /bin/true with each glibc's own loader, the
# library preloaded and every symbol bound at once (LD_BIND_NOW=1): a missing symbol or
# version fails the start. Prints one line per glibc; exit 1 if any failed.
set -u
lib=$(realpath "${1:-build/release/lib/libvgpu.so}")
cache=${HAMI_COMPAT_CACHE:-build/compat-cache}
mkdir -p "$cache" && cd "$cache" || exit 2
arch=${HAMI_COMPAT_ARCH:-amd64}
if [ "$arch" = arm64 ]; then
  debs=(
    http://deb.debian.org/debian/pool/main/g/glibc/libc6_2.31-13+deb11u11_arm64.deb
    http://deb.debian.org/debian/pool/main/c/coreutils/coreutils_8.32-4_arm64.deb
  )
  triplet=aarch64-linux-gnu loader=ld-linux-aarch64.so.1 run=(qemu-aarch64)
  command -v qemu-aarch64 > /dev/null || { echo "qemu-aarch64 missing (apt-get install qemu-user)"; exit 2; }
else
  debs=(
    http://archive.ubuntu.com/ubuntu/pool/main/g/glibc/libc6_2.23-0ubuntu3_amd64.deb
    http://archive.ubuntu.com/ubuntu/pool/main/g/glibc/libc6_2.27-3ubuntu1_amd64.deb
    http://deb.debian.org/debian/pool/main/g/glibc/libc6_2.31-13+deb11u11_amd64.deb
    http://archive.ubuntu.com/ubuntu/pool/main/g/glibc/libc6_2.35-0ubuntu3_amd64.deb
    http://deb.debian.org/debian/pool/main/c/coreutils/coreutils_8.32-4+b1_amd64.deb
  )
  triplet=x86_64-linux-gnu loader=ld-linux-x86-64.so.2 run=()
fi
for u in "${debs[@]}"; do
  f=${u##*/}
  [ -s "$f" ] || curl -sSfo "$f" "$u" || { echo "cannot download $u"; exit 2; }
  [ -d "x/${f%.deb}" ] || { mkdir -p "x/${f%.deb}" && dpkg -x "$f" "x/${f%.deb}"; }
done
prog=$(ls -d x/coreutils_*_"$arch")/bin/true
fail=0
for d in x/libc6_*_"$arch"; do
  libdir=$d/lib/$triplet
  if [ ${#run[@]} -gt 0 ]; then  # the variables for the emulated program, not for qemu itself
    out=$("${run[@]}" -E LD_BIND_NOW=1 -E LD_PRELOAD="$lib" "$libdir/$loader" \
          --library-path "$libdir" "$prog" 2>&1)
  else
    out=$(LD_BIND_NOW=1 LD_PRELOAD="$lib" "$libdir/$loader" --library-path "$libdir" "$prog" 2>&1)
  fi
  rc=$?
  v=$(basename "$d" | sed 's/libc6_\([0-9.]*\).*/\1/')
  if [ $rc -eq 0 ] && [ -z "$out" ]; then
    echo "glibc $v: loads"
  else
    echo "glibc $v: FAILS (rc=$rc) ${out:0:400}"
    fail=1
  fi
done
exit $fail
