#!/usr/bin/env bash
# Installs the Debian packages the project builds and tests with. Idempotent.
# Usage: scripts/install-deps.sh [--test]   (--test adds what only the test suite needs)
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config git
      libgtest-dev libgmock-dev libbenchmark-dev
      nlohmann-json3-dev libcpp-httplib-dev libyaml-cpp-dev libspdlog-dev libfmt-dev
      libcli11-dev libssl-dev libsqlite3-dev
      libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc)
# Node and npm bundle the web UI's frontend at build time (docs/webui.md). Debian's packages
# when the commands are missing; a machine with another Node build (which ships its own npm and
# conflicts with Debian's npm package) keeps it.
command -v node >/dev/null || pkgs+=(nodejs)
command -v npm >/dev/null || pkgs+=(npm)
# clang + compiler-rt: the libFuzzer targets scripts/fuzz.sh builds and runs.
# chromium: the web UI's browser tests (tests/webui)
# g++-aarch64-linux-gnu: libvgpu.so's glibc floor checked on an aarch64 cross build
if [[ "${1:-}" == "--test" ]]; then
  pkgs+=(prometheus clang-format clang libclang-rt-dev chromium g++-aarch64-linux-gnu)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
