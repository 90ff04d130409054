#!/usr/bin/env bash
# Installs what the build and tests need, builds the release preset, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
# Layering and size rules of docs/architecture.md (issue 11): seconds, before the build.
python3 scripts/check_includes.py
python3 scripts/check_sizes.py
cmake --preset release >/dev/null
cmake --build --preset release -j2
ctest --preset release
# Every libFuzzer target for 30 s with ASan+UBSan (HAMI_FUZZ_SECONDS=0 skips; docs/security.md).
if [[ "${HAMI_FUZZ_SECONDS:-30}" != 0 ]]; then scripts/fuzz.sh; fi
