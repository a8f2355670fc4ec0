#!/usr/bin/env bash
# Command 1 of the README: installs what is missing, builds the portal in release mode
# and starts it on http://127.0.0.1:8080 with SQLite under ./data (override with
# MAILFERRY_LISTEN / MAILFERRY_DATA_DIR or the options of `mailferry serve`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-build-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/build-frontend.sh
cargo build --release -p mailferry
exec "${CARGO_TARGET_DIR:-target}/release/mailferry" serve "$@"
