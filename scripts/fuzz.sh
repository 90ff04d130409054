#!/usr/bin/env bash
# Runs every libFuzzer target (src/*/fuzz, gathered by cmake/HamiFuzz.cmake) for
# HAMI_FUZZ_SECONDS each (default 30) with ASan+UBSan, HAMI_FUZZ_JOBS at a time (default 2),
# starting from its checked-in corpus. New inputs go to a scratch folder, never into the
# source tree; a crash fails the run and its input is kept under build/fuzz/crashes/ (add it
# to the corpus once fixed). Called by scripts/test.sh after ctest; docs/security.md.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${HAMI_FUZZ_SECONDS:-30}
jobs=${HAMI_FUZZ_JOBS:-2}
if ! command -v clang++ >/dev/null; then
  echo "fuzz.sh: clang++ not found (scripts/install-deps.sh --test installs it)" >&2
  exit 1
fi
start=$(date +%s)
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j"${jobs}"
built=$(date +%s)
out=build/fuzz
rm -rf "$out/crashes" "$out/work" "$out/logs"
mkdir -p "$out/crashes" "$out/work" "$out/logs"

run_one() {
  local bin=$1 corpus=${2:-} seconds=$3 out=$4
  local name
  name=$(basename "$bin")
  mkdir -p "$out/work/$name"
  # -rss_limit_mb: a parser that balloons on a small input is a finding too.
  if "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$out/crashes/$name-" "$out/work/$name" ${corpus:+"$corpus"} \
      >"$out/logs/$name.log" 2>&1; then
    printf '%-40s ok   %s\n' "$name" "$(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' \
      "$out/logs/$name.log" | grep -o '[0-9]*$') runs"
  else
    printf '%-40s FAIL (log %s)\n' "$name" "$out/logs/$name.log"
    tail -n 40 "$out/logs/$name.log" >&2
    return 1
  fi
}
export -f run_one
status=0
xargs -P "$jobs" -L 1 bash -c 'run_one "$0" "${1:-}" '"$seconds $out" <"$out/fuzzers.txt" || status=1
end=$(date +%s)
n=$(wc -l <"$out/fuzzers.txt")
echo "fuzz.sh: $n fuzzers x ${seconds}s, $jobs at a time: build $((built - start))s, fuzzing $((end - built))s"
if [ "$status" -ne 0 ]; then
  echo "fuzz.sh: crash inputs:" >&2
  ls -1 "$out"/crashes/* >&2 2>/dev/null || true
fi
exit "$status"
