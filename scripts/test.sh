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
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --no-fail-fast -- "$@" 2>&1 | tee "$log" || status=$?

# The integration suite once more with PostgreSQL behind every portal and migrate command
# (each test starts its own private server on loopback). The multi-node tests already run
# on PostgreSQL above, and the test kit's own tests use no database. (No `-p`: selecting
# the workspace's default members keeps the features of the first pass, so nothing rebuilds.)
step "integration tests again, on PostgreSQL"
pg_tests=()
for file in e2e/tests/*.rs; do
  name=$(basename "$file" .rs)
  case "$name" in portal_nodes | kit_dovecot | engine_bench) continue ;; esac
  pg_tests+=(--test "$name")
done
MAILFERRY_TEST_DATABASE=postgres cargo test "${pg_tests[@]}" --no-fail-fast -- "$@" 2>&1 |
  tee -a "$log" || status=$?
# One closing line with the totals of every test binary (unit, integration, end-to-end).
totals=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i; if ($(i+1) ~ /^ignored;?$/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped", p, f, s }' "$log")
if [ "$status" -ne 0 ]; then
  echo "some tests failed (see above)" >&2
else
  step "all checks passed"
fi
echo "$totals"
exit "$status"
