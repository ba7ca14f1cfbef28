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
# Examples (the simulator's reproduce command) only need to build; doc tests run
# first, so the run ends on the test binaries' summaries.
cargo build --workspace --profile ci --examples || status=1
cargo test --workspace --profile ci --doc || status=1
cargo test --workspace --profile ci --no-fail-fast --lib --bins --tests \
    -- --test-threads=2 || status=1
exit "$status"
