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

step "fuzzing the IMAP response reader and the CSV import (cargo-fuzz, ${MAILFERRY_FUZZ_SECONDS:-30} s per target)"
# libFuzzer through cargo-fuzz on the stable toolchain: RUSTC_BOOTSTRAP=1 allows the
# -Z flags it needs, and --sanitizer none keeps the build quick (safe Rust: we look for
# panics, stack overflows, runaway memory and hangs). New inputs go to a scratch corpus;
# the repository's seeds stay as they are. A crash fails the run (artifacts in
# backend/fuzz/artifacts/).
fuzz_version=0.13.2
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $fuzz_version" ]; then
  cargo install cargo-fuzz --version "$fuzz_version" --locked
fi
fuzz_status=0
for target in imap_response csv_import; do
  scratch=$(mktemp -d)
  fuzz_log=$(mktemp)
  (cd backend && RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/../target}/fuzz" \
    cargo fuzz run --sanitizer none "$target" "$scratch" "fuzz/corpus/$target" -- \
    -max_total_time="${MAILFERRY_FUZZ_SECONDS:-30}" -rss_limit_mb=1024 -max_len=65536 \
    -timeout=10 -print_final_stats=1) >"$fuzz_log" 2>&1 || fuzz_status=$?
  runs=$(awk '/stat::number_of_executed_units:/ { print $2 }' "$fuzz_log")
  secs=$(awk '/stat::average_exec_per_sec:/ { print $2 }' "$fuzz_log")
  echo "fuzz $target: ${runs:-?} executions (${secs:-?}/s)" >&2
  if grep -qE '^(==[0-9]+== ERROR|thread .* panicked)|deadly signal|Test unit written' "$fuzz_log"; then
    fuzz_status=1
    tail -n 40 "$fuzz_log" >&2
  elif [ "$fuzz_status" -ne 0 ]; then
    tail -n 40 "$fuzz_log" >&2
  fi
  rm -rf "$scratch" "$fuzz_log"
done

# The integration suite runs twice: as it is (SQLite behind every portal and migrate
# command), and again with PostgreSQL behind them (each test starts its own private server
# on loopback). The multi-node tests already run on PostgreSQL in the first pass, and the
# test kit's own tests use no database. Left out of the second: the engine's protocol
# tests (hostile and quirky servers, throttling, the wire, fetch forms, other server
# families, the stall watchdog), which use the UID map exactly as engine_copy,
# engine_faults and engine_crash do, and those run there. (No `-p`: selecting the
# workspace's default members keeps the features of the first pass, so nothing rebuilds.)
pg_tests=()
for file in e2e/tests/*.rs; do
  name=$(basename "$file" .rs)
  case "$name" in
    portal_nodes | kit_dovecot | kit_oidc | engine_bench) continue ;;
    engine_hostile | engine_throttle | engine_wire | engine_fetch | engine_connect | engine_servers | engine_stall) continue ;;
  esac
  pg_tests+=(--test "$name")
done

step "building the tests"
cargo test --no-run 2>&1 | grep -Ev '^ +(Executable|Compiling|Checking) ' || true

# Most of the suite's time is spent waiting (token lifetimes, throttles, slow links), so
# the two passes run side by side, each with its own half of the test ports. The
# PostgreSQL pass's output follows the first pass's.
step "tests (SQLite), with the PostgreSQL pass alongside"
log=$(mktemp)
pg_log=$(mktemp)
trap 'rm -f "$log" "$pg_log"' EXIT
status=$fuzz_status
(MAILFERRY_TEST_PORTS=21000-32000 MAILFERRY_TEST_DATABASE=postgres \
  cargo test "${pg_tests[@]}" --no-fail-fast -- "$@" >"$pg_log" 2>&1) &
pg_pid=$!
MAILFERRY_TEST_PORTS=10000-21000 cargo test --no-fail-fast -- "$@" 2>&1 | tee "$log" || status=$?
pg_status=0
wait "$pg_pid" || pg_status=$?
step "integration tests again, on PostgreSQL (ran alongside the first pass)"
tee -a "$log" <"$pg_log"
[ "$pg_status" -eq 0 ] || status=$pg_status
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
