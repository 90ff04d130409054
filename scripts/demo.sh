#!/usr/bin/env bash
# The main job: installs what is needed, builds, starts the single-host daemon on this
# machine's GPUs (or on the fake GPU when there is none, clearly labelled), runs three capped
# jobs side by side and prints what each could use.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j2
exec src/hostd/demo.sh --build-dir build/release "$@"
