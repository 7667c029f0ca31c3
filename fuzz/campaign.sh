#!/usr/bin/env bash
# One libFuzzer campaign per target, one in-process fuzzer at a time (the machine is shared):
#   fuzz/campaign.sh BUILD_DIR SECONDS TARGET...
# Each target starts from a scratch copy of fuzz/corpus/TARGET (BUILD_DIR/work/TARGET, kept
# between runs), uses BUILD_DIR/pickle.dict for the pickle-reading targets, writes crashes to
# BUILD_DIR/crash/TARGET/ and appends "target wall-seconds cpu-seconds execs crashes" to
# BUILD_DIR/campaigns.tsv (CPU seconds: user + system of the fuzzer, which is what a shared machine
# gives it within the wall-clock budget).
set -uo pipefail
cd "$(dirname "$0")/.."
build=$1 secs=$2
shift 2
for t in "$@"; do
  bin=$build/fuzz_$t
  [ -x "$bin" ] || { echo "no $bin" >&2; exit 2; }
  work=$build/work/$t crash=$build/crash/$t
  mkdir -p "$work" "$crash"
  cp -n fuzz/corpus/"$t"/* "$work"/ 2>/dev/null || true
  dict=()
  case $t in vm | joblib | torch | torch_legacy | npy | zip) dict=(-dict="$build/pickle.dict") ;; esac
  [ -f "$build/pickle.dict" ] || dict=()
  log=$build/work/$t.log
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    /usr/bin/time -f "%U %S" -o "$work.cpu" "$bin" -max_total_time="$secs" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$crash/" -print_final_stats=1 "${dict[@]}" "$work" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  ncrash=$(find "$crash" -type f | wc -l)
  cpu=$(awk '/^[0-9.]+ [0-9.]+$/ {printf "%.0f", $1 + $2}' "$work.cpu")
  printf '%s\t%s\t%s\t%s\t%s\trc=%s\n' "$t" "$secs" "${cpu:-?}" "${execs:-?}" "$ncrash" "$rc" |
    tee -a "$build/campaigns.tsv"
done
