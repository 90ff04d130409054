#!/bin/bash
# libvgpu.so preloaded under real old glibc builds (by hand; needs the network once):
#   tests/compat/old_glibc_load.sh [path/to/libvgpu.so]
# Downloads the libc6 packages of Ubuntu 16.04 (2.23), 18.04 (2.27), Debian 11 (2.31) and
# Ubuntu 22.04 (2.35), and Debian 11's coreutils, into $HAMI_COMPAT_CACHE (default
# build/compat-cache), then runs Debian 11's /bin/true with each glibc's own loader, the
# library preloaded and every symbol bound at once (LD_BIND_NOW=1): a missing symbol or
# version fails the start. Prints one line per glibc; exit 1 if any failed.
set -u
lib=$(realpath "${1:-build/release/lib/libvgpu.so}")
cache=${HAMI_COMPAT_CACHE:-build/compat-cache}
mkdir -p "$cache" && cd "$cache" || exit 2
debs=(
  http://archive.ubuntu.com/ubuntu/pool/main/g/glibc/libc6_2.23-0ubuntu3_amd64.deb
  http://archive.ubuntu.com/ubuntu/pool/main/g/glibc/libc6_2.27-3ubuntu1_amd64.deb
  http://deb.debian.org/debian/pool/main/g/glibc/libc6_2.31-13+deb11u11_amd64.deb
  http://archive.ubuntu.com/ubuntu/pool/main/g/glibc/libc6_2.35-0ubuntu3_amd64.deb
  http://deb.debian.org/debian/pool/main/c/coreutils/coreutils_8.32-4+b1_amd64.deb
)
for u in "${debs[@]}"; do
  f=${u##*/}
  [ -s "$f" ] || curl -sSfo "$f" "$u" || { echo "cannot download $u"; exit 2; }
  [ -d "x/${f%.deb}" ] || { mkdir -p "x/${f%.deb}" && dpkg -x "$f" "x/${f%.deb}"; }
done
prog=x/coreutils_8.32-4+b1_amd64/bin/true
fail=0
for d in x/libc6_*; do
  libdir=$d/lib/x86_64-linux-gnu
  out=$(LD_BIND_NOW=1 LD_PRELOAD="$lib" "$libdir/ld-linux-x86-64.so.2" --library-path "$libdir" \
        "$prog" 2>&1)
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
