//! Free loopback ports for test servers.

use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicU16, Ordering};

/// A port on 127.0.0.1 that nothing listens on right now.
///
/// Ports come from below the kernel's ephemeral range (`ip_local_port_range`), walked in
/// turn from an offset per process: the kernel never hands those to outgoing connections
/// or to `bind(0)`, so a port chosen now is still free when its server starts a few
/// seconds later (a port from `bind(0)` could meanwhile be taken by any connection a
/// test makes, e.g. to PostgreSQL). Each port goes to one caller per process.
/// `MAILFERRY_TEST_PORTS=LOW-HIGH` narrows the range, so that test runs going on at the
/// same time (the README's test command runs its SQLite and PostgreSQL passes side by
/// side) never pick the same port.
pub fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let (floor, ceiling) = port_range();
    if ceiling <= floor + 1_000 {
        return os_port();
    }
    free_port_in(&NEXT, floor, ceiling)
}

/// Walks `floor..ceiling` from where this process last stopped.
fn free_port_in(next: &AtomicU16, floor: u16, ceiling: u16) -> u16 {
    let span = ceiling - floor;
    // Successive test binaries start at different places (ports they used may linger).
    let _ = next.compare_exchange(
        0,
        floor + (std::process::id() % u32::from(span)) as u16,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..span {
        let port = next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |p| {
                Some(if p + 1 >= ceiling { floor } else { p + 1 })
            })
            .unwrap_or(floor);
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    os_port()
}

/// The ports to choose from: `MAILFERRY_TEST_PORTS` if it names a range inside
/// 10000..(the ephemeral range), else all of that.
fn port_range() -> (u16, u16) {
    const FLOOR: u16 = 10_000;
    let ceiling = ephemeral_low().unwrap_or(32_768);
    let narrowed = std::env::var("MAILFERRY_TEST_PORTS").ok().and_then(|v| {
        let (low, high) = v.split_once('-')?;
        Some((
            low.trim().parse::<u16>().ok()?,
            high.trim().parse::<u16>().ok()?,
        ))
    });
    match narrowed {
        Some((low, high)) if low >= FLOOR && high <= ceiling && low < high => (low, high),
        _ => (FLOOR, ceiling),
    }
}

/// The first port of the kernel's ephemeral range.
fn ephemeral_low() -> Option<u16> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    range.split_whitespace().next()?.parse().ok()
}

/// A port the OS picks (when no range below the ephemeral one is usable).
fn os_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_free_and_below_the_ephemeral_range() {
        let low = ephemeral_low().unwrap_or(32_768);
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        let distinct: std::collections::HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len(), "{ports:?}");
        assert!(
            ports.iter().all(|p| *p < low),
            "{ports:?} (ephemeral from {low})"
        );
        for p in ports {
            TcpListener::bind((Ipv4Addr::LOCALHOST, p)).expect("still free");
        }
    }

    #[test]
    fn a_narrowed_range_is_kept_to_and_wraps_around() {
        let next = AtomicU16::new(0);
        let ports: Vec<u16> = (0..40)
            .map(|_| free_port_in(&next, 20_000, 20_030))
            .collect();
        assert!(
            ports.iter().all(|p| (20_000..20_030).contains(p)),
            "{ports:?}"
        );
        // Forty picks from thirty ports: the walk went round.
        let distinct: std::collections::HashSet<u16> = ports.iter().copied().collect();
        assert!(distinct.len() > 20, "{ports:?}");
    }
}
