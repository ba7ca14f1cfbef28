#!/usr/bin/env bash
# Installs what the test suite needs on Debian 12 and runs all of it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo build --release --bins
cargo test --workspace --release -- --test-threads=2
