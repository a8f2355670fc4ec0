#!/usr/bin/env bash
# Command 2 of the README: installs what the tests need, then runs every check and test:
# formatting, clippy (host and wasm), unit, integration and end-to-end tests (real
# Dovecot servers, SQLite, PostgreSQL and headless Chromium, all on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
step() { printf '\n== %s (%ss)\n' "$*" "$(( $(date +%s) - started ))" >&2; }

step "installing build and test dependencies"
bash scripts/install-build-deps.sh
bash scripts/install-test-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"

step "cargo fmt --check"
cargo fmt --all -- --check

step "building the web app (trunk, release)"
bash scripts/build-frontend.sh

step "building the mailferry binary the tests start"
cargo build -p mailferry --bins

step "clippy (host crates: shared, backend, e2e; all targets)"
cargo clippy --all-targets -- -D warnings
step "clippy (web app, wasm32)"
cargo clippy -p mailferry-frontend --target wasm32-unknown-unknown -- -D warnings

step "tests"
cargo test --no-fail-fast -- "$@"

step "all checks passed"
