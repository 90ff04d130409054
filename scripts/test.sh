#!/usr/bin/env bash
# Installs what the build and tests need, builds the release preset, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
cmake --preset release >/dev/null
cmake --build --preset release -j2
ctest --preset release
