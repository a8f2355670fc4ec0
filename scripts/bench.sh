#!/usr/bin/env bash
# Benchmarks (figures, not pass/fail): `mailferry migrate` against mbsync and Dovecot's
# dsync (`doveadm backup` from imapc into a local maildir, the floor) on the same seeded
# 10,000-message mailbox between two private Dovecot servers: a full copy, a re-run with
# nothing changed, a re-run after flags changed on 100 messages (time, messages/s, MB/s,
# peak memory of each); the admin CSV import's validation speed on 10,000 rows; and two
# portal nodes sharing one PostgreSQL copying 200 mailboxes of 200 messages (total
# throughput, each node's share and memory) beside mbsync with the same concurrency; the
# peak memory of one 100 MB message (and idle) beside mbsync's; and one node running 200
# small mailboxes at once (throughput, peak memory, message bytes in flight).
# Mailferry also runs through server profiles whose pacing caps are on but never reached
# (the cost of the bookkeeping); MAILFERRY_BIN_BEFORE=PATH adds an earlier build's runs
# beside them, BENCH_MESSAGES=N seeds another size.
# Release builds; run on an otherwise idle machine for comparable figures.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release -p mailferry --bins --examples
target=$(realpath "${CARGO_TARGET_DIR:-target}")
echo "== CSV import validation"
"$target/release/examples/bench_csv_import"
echo "== IMAP copy: mailferry vs mbsync"
MAILFERRY_BIN="$target/release/mailferry" \
  cargo test --release -p mailferry-e2e --test engine_bench -- --ignored --nocapture
echo "== Two nodes on PostgreSQL: 200 mailboxes of 200 messages (and mbsync, 8 at a time)"
MAILFERRY_BIN="$target/release/mailferry" \
  cargo test --release -p mailferry-e2e --test portal_nodes benchmark_two_hundred_mailboxes_across_two_nodes -- --ignored --nocapture
echo "== Memory: one 100 MB message (and idle), mailferry vs mbsync"
MAILFERRY_BIN="$target/release/mailferry" \
  cargo test --release -p mailferry-e2e --test engine_bench_memory -- --ignored --nocapture
echo "== One node, 200 small mailboxes at once"
MAILFERRY_BIN="$target/release/mailferry" \
  cargo test --release -p mailferry-e2e --test portal_nodes benchmark_two_hundred_mailboxes_at_once_on_one_node -- --ignored --nocapture
