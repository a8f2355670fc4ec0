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
pub fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    const FLOOR: u16 = 10_000;
    let ceiling = ephemeral_low().unwrap_or(32_768);
    if ceiling <= FLOOR + 1_000 {
        return os_port();
    }
    let span = ceiling - FLOOR;
    // Successive test binaries start at different places (ports they used may linger).
    let _ = NEXT.compare_exchange(
        0,
        FLOOR + (std::process::id() % u32::from(span)) as u16,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..span {
        let port = NEXT
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |p| {
                Some(if p + 1 >= ceiling { FLOOR } else { p + 1 })
            })
            .unwrap_or(FLOOR);
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    os_port()
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
}
