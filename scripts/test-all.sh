#!/usr/bin/env bash
# Installs what the test suite needs on Debian 12 and runs all of it: unit, property
# and simulator tests, lab tests with real vblade blades in network namespaces, and the
# real Linux aoe driver in qemu. Lab and qemu tests need root (they say "skipped: needs
# root" otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
export CARGO_TERM_COLOR=never
status=0
# Style and lints first: formatting, then clippy with every warning an error (the
# workspace lints in Cargo.toml included).
cargo fmt --all --check || status=1
cargo clippy --workspace --all-targets -- -D warnings || status=1
# Every fuzz target builds and runs briefly (stable toolchain, seeded corpus).
FUZZ_SECONDS="${FUZZ_SECONDS:-20}" ./scripts/fuzz-ci.sh || status=1
# Examples (the simulator's reproduce command) only need to build; doc tests run
# first, so the run ends on the test binaries' summaries.
cargo build --workspace --profile ci --examples || status=1
# The chaos soak (benches/soak.sh): SOAK_SECONDS (default 300) of blade, link, frame,
# bit-flip and appliance-kill faults under three verifying clients. It gates like a
# test: a mismatch, a client error, an array left unclean or RSS growth fails the
# run. SOAK_SECONDS=0 leaves it out.
if [ "${SOAK_SECONDS:-300}" -gt 0 ]; then
    ./benches/soak.sh --seconds "${SOAK_SECONDS:-300}" || status=1
fi
cargo test --workspace --profile ci --doc || status=1
cargo test --workspace --profile ci --no-fail-fast --lib --bins --tests \
    -- --test-threads=2 || status=1
exit "$status"
