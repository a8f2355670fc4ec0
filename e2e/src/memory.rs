//! Memory figures for benchmarks, read from Linux's `/proc`.

/// The peak resident memory (VmHWM) of a running process, in KiB.
pub fn peak_rss_kb(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Runs a child to its end, sampling its peak resident memory (VmHWM, KiB) meanwhile:
/// how long it took, the peak, and how it ended.
pub async fn run_measured(
    mut cmd: tokio::process::Command,
) -> (std::time::Duration, u64, std::process::ExitStatus) {
    let start = std::time::Instant::now();
    let mut child = cmd.spawn().expect("spawn");
    let pid = child.id().unwrap_or(0);
    let mut peak_kb = 0u64;
    loop {
        if let Some(kb) = peak_rss_kb(pid) {
            peak_kb = peak_kb.max(kb);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            return (start.elapsed(), peak_kb, status);
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// `text` without ANSI colour sequences (`ESC [ ... m`).
pub fn strip_colours(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// (the most message bytes in flight at once, the budget) from each line a node logs
/// after a run, in order.
pub fn in_flight_from_log(log: &str) -> Vec<(u64, u64)> {
    let field = |line: &str, name: &str| -> Option<u64> {
        let rest = &line[line.find(&format!("{name}="))? + name.len() + 1..];
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    // Without the terminal colours the log may carry around each field's name.
    let plain = strip_colours(log);
    plain
        .lines()
        .filter(|l| l.contains("message bytes in flight on this node"))
        .filter_map(|l| Some((field(l, "peak")?, field(l, "budget")?)))
        .collect()
}
