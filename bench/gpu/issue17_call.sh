#!/usr/bin/env bash
# Issue 17 on a real GPU, in one device call that fits its 10 minutes: the steps still open
# after the seventeenth session, each under its own time limit, so that one slow step cannot
# take the rest with it. Prints a short table at the end; every step's full output and the
# processes' logs are packed into $OUT/issue17.tgz (one file: a call brings back few).
#   tail  A/B of the pace tail rule on the two training loops: HAMI_COMPUTE_PACE_TAIL=0 then 1
#         (flips at 50/70/30, two rounds each; about 300 s), with the pace rows and the GPU's
#         busy % per share (nvidia-smi) in the table
#   r0    tail rule 0 (the default until the nineteenth session) alone on the two training loops at 50/70, four rounds (about
#         250 s): whether its single-round misses at 70 are the loop's or the host's
#   ab    tail rules 0 and 2 (the estimates' overshoot carried to later tails) in turn on the
#         two training loops at 50/70, two rounds a process, AB_REPEAT (default 2) processes
#         a rule (about 100 s a process)
#   pace  HAMI_COMPUTE_PACE_MS 20 against 40 on the two training loops at 50/70 under tail
#         rule 2 (two processes, about 100 s each): whether the loss a stretch's start costs a
#         loop shrinks with longer stretches. Since the nineteenth session the variable is the
#         stretch at 50 % and grows with the share (20: 28 ms at 70); the call recorded in
#         BENCHMARKS ran at a733e28, where it was the stretch at every share (23 ms at 70)
#   now   the defaults since the nineteenth session (tail rule 2, stretches that grow with the
#         share) on the two training loops at 50/70/30, three rounds (about 150 s)
#   dflt  the default policy alone on the card for cnn and the eager decoders (flips under
#         FLIP_POLICY=default: limited windows against the same process's unlimited ones;
#         about 120 s)
#   bench the benchmark kernels (compute_limits.py limits torch; about 200 s), under the tail
#         rule BENCH_TAIL (default 2, the default)
# Usage (GPU host, repository root): bench/gpu/issue17_call.sh STEP...  (tail and bench fit one
# call; r0 and dflt another).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT/issue17"
steps=("$@")
[[ ${#steps[@]} -eq 0 ]] && { echo "usage: issue17_call.sh tail|r0|ab|pace|now|dflt|bench..." >&2; exit 2; }
summary=()

# run NAME SECONDS ENV... -- ARGS...: one workload_suite/compute_limits run in $OUT/issue17/NAME.
run() {
  local name=$1 secs=$2
  shift 2
  local envs=()
  while [[ $1 != -- ]]; do envs+=("$1"); shift; done
  shift
  mkdir -p "$OUT/issue17/$name"
  env "${envs[@]}" OUT="$OUT/issue17/$name" timeout "$secs" python3 "$@" \
    >"$OUT/issue17/$name.txt" 2>&1
  echo "$name: rc=$?" >>"$OUT/issue17/rc.txt"
  # The judged rows (the table's [PASS]/[FAIL] lines and the unlimited-vs-native rows); with
  # VERBOSE_ROWS also the per-round rates, the pace rows and the clock / GPU busy rows.
  while IFS= read -r line; do summary+=("$name | $line"); done < <(
    grep -E "^\S.*\[(PASS|FAIL)\]|its unlimited windows, % of native +\[${VERBOSE_ROWS:+|pace mode at|GPU clock|^  [a-z0-9_]+: N=}" \
      "$OUT/issue17/$name.txt" |
      sed -E 's/ {2,}/ /g' | cut -c1-330)
}

# loops NAME SECONDS TAIL ORDER ROUNDS [ENV...]: the two training loops' flips under tail rule
# TAIL (and ENV), with the verbose rows (pace rows, clocks and GPU busy %).
loops() {
  VERBOSE_ROWS=1 run "$1" "$2" HAMI_COMPUTE_PACE_TAIL="$3" FLIP_ORDER="$4" TURN_ROUNDS="$5" \
    "${@:6}" WL=gpt_large,gpt_small SUITE_SECONDS=1.0 TURN_STATS=1 -- \
    bench/gpu/workload_suite.py flips
}

for s in "${steps[@]}"; do
  case $s in
    tail)
      for t in 0 1; do loops "tail$t" 150 "$t" N,U,50,U,70,U,30,U 2; done
      ;;
    r0)
      loops r0 280 0 N,U,50,U,70,U 4
      ;;
    ab)
      # Tail rules 0 and 2 in turn, two rounds a process, twice (the host drifts between
      # processes; alternating keeps a drift from landing on one rule).
      for i in $(seq "${AB_REPEAT:-2}"); do
        for t in 0 2; do loops "ab$t.$i" 110 "$t" N,U,50,U,70,U 2; done
      done
      ;;
    pace)
      # Stretch length: 20 against 40 ms at 50 %, tail rule 2, in turn.
      for ms in 20 40; do loops "pace$ms" 110 2 N,U,50,U,70,U 2 HAMI_COMPUTE_PACE_MS="$ms"; done
      ;;
    now)
      loops now 280 2 N,U,50,U,70,U,30,U 3
      ;;
    dflt)
      run dflt 130 FLIP_POLICY=default FLIP_ORDER=N,U,50,U,50,U,N TURN_ROUNDS=2 \
        WL=cnn,dec1_eager,dec32_eager SUITE_SECONDS=1.0 -- bench/gpu/workload_suite.py flips
      ;;
    bench)
      run bench 200 HAMI_COMPUTE_PACE_TAIL="${BENCH_TAIL:-2}" COMPUTE_BENCH_SECONDS=1.5 -- \
        bench/gpu/compute_limits.py limits torch
      ;;
    *) echo "issue17_call.sh: unknown step $s (tail, r0, ab, pace, now, dflt, bench)" >&2; exit 2 ;;
  esac
done
tar czf "$OUT/issue17.tgz" -C "$OUT" issue17 && rm -rf "$OUT/issue17"
printf '%s\n' "${summary[@]}"
