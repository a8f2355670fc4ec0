//! How long checking an admin's CSV import takes: a 10,000-row file, all good, and the same
//! size with one row in ten bad (every kind of error). Prints figures; asserts nothing.
//!
//! Run with `cargo run --release -p mailferry --example bench_csv_import`.

use mailferry::import::{parse_users_csv, ImportContext, ImportRoute, Parsed};
use std::time::{Duration, Instant};

const ROWS: usize = 10_000;
const RUNS: usize = 30;

fn main() {
    let ctx = ImportContext::new([
        ImportRoute::new("main"),
        ImportRoute::new("hosted")
            .with_source_master_user()
            .with_target_master_user(),
    ])
    .and_then(|ctx| ctx.with_default_route("main"))
    .expect("a valid benchmark context");

    let good = generate(ROWS, None);
    let bad = generate(ROWS, Some(10));
    println!("checking a {ROWS}-row import file, best and median of {RUNS} runs (release build)");
    for (name, file, expect_bad) in [("all good", &good, false), ("10% bad", &bad, true)] {
        let (parsed, times) = measure(file, &ctx);
        assert_eq!(parsed.total_rows, ROWS);
        assert_eq!(!parsed.is_clean(), expect_bad, "{name}: unexpected outcome");
        let preview_start = Instant::now();
        let json = serde_json::to_vec(&parsed.preview()).expect("a preview serialises");
        let preview_time = preview_start.elapsed();
        report(name, file.len(), &parsed, &times, preview_time, json.len());
    }
}

fn measure(file: &[u8], ctx: &ImportContext) -> (Parsed, Vec<Duration>) {
    let mut parsed = parse_users_csv(file, ctx); // warm-up
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        parsed = parse_users_csv(std::hint::black_box(file), ctx);
        times.push(start.elapsed());
    }
    times.sort();
    (parsed, times)
}

fn report(
    name: &str,
    bytes: usize,
    parsed: &Parsed,
    times: &[Duration],
    preview: Duration,
    json_bytes: usize,
) {
    let best = times[0];
    let median = times[times.len() / 2];
    let rows_per_s = parsed.total_rows as f64 / median.as_secs_f64();
    let mb_per_s = bytes as f64 / 1e6 / median.as_secs_f64();
    println!(
        "{name:>9}: {bytes} bytes, {} valid users, {} errors | validation: best {:.2} ms, \
         median {:.2} ms | {:.0} rows/s, {:.0} MB/s | preview to JSON: {:.2} ms, {} bytes",
        parsed.users.len(),
        parsed.errors.len(),
        best.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e3,
        rows_per_s,
        mb_per_s,
        preview.as_secs_f64() * 1e3,
        json_bytes,
    );
}

/// A realistic file: mixed quoting, CRLF, passwords with quotes, commas and percent
/// signs, some non-ASCII names. With `bad_every = Some(n)`, one row in `n` has an error,
/// cycling through every kind of row error.
fn generate(rows: usize, bad_every: Option<usize>) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows * 90);
    out.extend_from_slice(
        b"\xEF\xBB\xBFSource User,Source Password,Target User,Target Password,Route\r\n",
    );
    for i in 0..rows {
        let line = match bad_every {
            Some(n) if i % n == n - 1 => bad_row(i, i / n),
            _ => good_row(i),
        };
        out.extend_from_slice(&line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn good_row(i: usize) -> Vec<u8> {
    let route = match i % 3 {
        0 => "",
        1 => "main",
        _ => "hosted",
    };
    let name = name(i);
    let (source_password, target_password) = if route == "hosted" && i.is_multiple_of(2) {
        (String::new(), String::new())
    } else {
        (
            format!("\"S3c\"\"r,e%t-{i}\""),
            format!("Target-{i}%{}", i * 31 % 997),
        )
    };
    format!(
        "{name}.{i}@old.example.org,{source_password},\"{name}.{i}@new.example.com\",\
         {target_password},{route}"
    )
    .into_bytes()
}

fn name(i: usize) -> &'static str {
    if i.is_multiple_of(7) {
        "jürgen"
    } else {
        "user"
    }
}

/// Row `i` breaks a rule; duplicates repeat a user of the good row just before it.
fn bad_row(i: usize, kind: usize) -> Vec<u8> {
    let previous = i - 1;
    let previous_name = name(previous);
    match kind % 9 {
        0 => format!(",pw{i},t{i}@new,pw,main").into_bytes(),
        1 => format!("s{i}@old,pw,t{i}@new,,main").into_bytes(),
        2 => format!("s{i}@old,pw,t{i}@new,pw,mars").into_bytes(),
        3 => format!("s {i}@old,pw,t{i}@new,pw,main").into_bytes(),
        4 => format!("s{i}@old,pw,t{i}@new,pw").into_bytes(),
        5 => format!("{previous_name}.{previous}@OLD.example.org,pw,t{i}@new,pw,").into_bytes(),
        6 => format!("s{i}@old,pw,{previous_name}.{previous}@new.example.com,pw,").into_bytes(),
        7 => {
            let mut row = format!("s{i}@old,pw,t{i}@new,pw,").into_bytes();
            row.insert(2, 0xE9);
            row
        }
        _ => format!("s{i}@old,\"pw\"x,t{i}@new,pw,main").into_bytes(),
    }
}
