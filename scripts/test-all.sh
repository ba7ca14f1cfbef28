#!/usr/bin/env bash
# Installs what the test suite needs on Debian 12 and runs all of it: unit, property
# and simulator tests, lab tests with real vblade blades in network namespaces, and the
# real Linux aoe driver in qemu. Lab and qemu tests need root (they say "skipped: needs
# root" otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
export CARGO_TERM_COLOR=never
cargo test --workspace --profile ci --no-fail-fast -- --test-threads=2
