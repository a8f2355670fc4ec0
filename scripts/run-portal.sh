#!/usr/bin/env bash
# Command 1 of the README: installs what is missing, builds the portal in release mode
# and starts it on http://127.0.0.1:8080 with SQLite under ./data (override with
# MAILFERRY_LISTEN / MAILFERRY_DATA_DIR or the options of `mailferry serve`).
# This is plain HTTP on this machine only, so the session cookie cannot be `Secure`:
# MAILFERRY_SECURE_COOKIES defaults to false here (and only here). Behind HTTPS, run
# `mailferry serve` with `public_url` set and leave secure_cookies at its default (true).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-build-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/build-frontend.sh
cargo build --release -p mailferry
export MAILFERRY_SECURE_COOKIES="${MAILFERRY_SECURE_COOKIES:-false}"
exec "${CARGO_TARGET_DIR:-target}/release/mailferry" serve "$@"
