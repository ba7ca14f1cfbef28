#!/usr/bin/env bash
# Builds every cargo-fuzz target in fuzz/ with libFuzzer's coverage instrumentation
# and runs each for a short time (FUZZ_SECONDS, default 20). It runs on the stable
# toolchain: the sanitizer-coverage passes are stable codegen flags, and no sanitizer
# runtime is linked (a panic is the crash libFuzzer reports). Long runs before a
# release use cargo-fuzz on nightly with AddressSanitizer (fuzz/README.md).
#
# A crash fails the script and leaves the reproducer in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-20}"
triple="$(rustc -vV | sed -n 's/^host: //p')"
# Flags as cargo-fuzz passes them; `--target` keeps them off build scripts.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
export CARGO_TARGET_DIR="$PWD/target/ci"
targets=$(awk '/^\[\[bin\]\]/{b=1;next} b&&/^name *=/{gsub(/[" ]/,"",$0);sub(/^name=/,"",$0);print;b=0}' Cargo.toml)
[ -n "$targets" ] || { echo "fuzz-ci: no [[bin]] targets in fuzz/Cargo.toml" >&2; exit 1; }
args=()
for t in $targets; do args+=(--bin "$t"); done
cargo build --release --target "$triple" "${args[@]}"
failed=0
for t in $targets; do
    corpus="corpus/$t"
    mkdir -p "$corpus" "artifacts/$t"
    # Real frames (fuzz/seeds/) get past the header checks from the first run on.
    [ -d "seeds/$t" ] && cp -n seeds/"$t"/* "$corpus"/ 2>/dev/null || true
    log="$(mktemp)"
    if "target/ci/$triple/release/$t" "$corpus" -max_total_time="$seconds" \
        -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
        echo "fuzz $t: ${runs:-?} runs in ${seconds}s, $cov, no crash"
    else
        echo "fuzz $t: CRASH (reproducer in fuzz/artifacts/$t/)" >&2
        tail -n 40 "$log" >&2
        failed=1
    fi
    rm -f "$log"
done
exit "$failed"
