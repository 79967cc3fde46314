#!/usr/bin/env bash
# Builds the libFuzzer binary for semidpo's parsers and runs each target for a bounded time.
#   fuzz/run.sh [seconds per target, default 60] [targets…, default: json jsonl yaml safetensors]
#   make fuzz FUZZ_SECONDS=60
# The build goes to .build-fuzz (debug, Swift's runtime checks on, -sanitize=fuzzer,address), so the
# normal .build is untouched. Seeds come from fuzz/corpus/<target>/ (read only); what libFuzzer finds
# grows .build-fuzz/corpus/<target>/; crashes are written to .build-fuzz/crashes/<target>/ and make
# the script exit non-zero. Reproduce one with:
#   FUZZ_TARGET=yaml .build-fuzz/debug/semidpo-fuzz .build-fuzz/crashes/yaml/crash-…
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(json jsonl yaml safetensors)
SWIFT="${SWIFT:-swift}"
sanitizers="${FUZZ_SANITIZE:-fuzzer,address}"

SEMIDPO_FUZZ=1 "$SWIFT" build -c debug --scratch-path .build-fuzz --product semidpo-fuzz \
    -Xswiftc "-sanitize=$sanitizers"
bin=.build-fuzz/debug/semidpo-fuzz

status=0
for t in "${targets[@]}"; do
    rm -rf ".build-fuzz/crashes/$t"   # crashes of an earlier run: reproduce them before they go
    mkdir -p ".build-fuzz/corpus/$t" ".build-fuzz/crashes/$t" .build-fuzz/scratch
    echo "== $t: ${seconds}s"
    # -rss_limit_mb/-timeout: an input that takes > 10 s or 2 GB counts as a hang/blow-up.
    set +e
    # Swift's own backtracer would race ASan's report on a crash; ASan prints the stack.
    LSAN_OPTIONS="suppressions=fuzz/lsan.supp:print_suppressions=0" \
    SWIFT_BACKTRACE=enable=no FUZZ_TARGET="$t" FUZZ_SCRATCH=.build-fuzz/scratch "$bin" ".build-fuzz/corpus/$t" "fuzz/corpus/$t" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -artifact_prefix=".build-fuzz/crashes/$t/" -print_final_stats=1 > ".build-fuzz/$t.log" 2>&1
    rc=$?
    set -e
    grep -E "^#[0-9]+ +DONE|ERROR|SUMMARY|Test unit written|stat::number_of_executed_units|stat::peak_rss_mb" ".build-fuzz/$t.log" || true
    if [ $rc -ne 0 ] || ls ".build-fuzz/crashes/$t/" | grep -q .; then
        echo "== $t: FAILED (exit $rc; see .build-fuzz/$t.log and .build-fuzz/crashes/$t/)"
        status=1
    else
        echo "== $t: no crash"
    fi
done
exit $status
