//! Free loopback ports for test servers.

use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicU16, Ordering};

/// A port on 127.0.0.1 that nothing listens on right now.
///
/// The OS picks it; a per-process counter offsets the search so that tests running in
/// parallel in one process are unlikely to be handed the same port between bind and use.
pub fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    loop {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        drop(listener);
        // Avoid handing out the same port twice in one process.
        let previous = NEXT.swap(port, Ordering::SeqCst);
        if previous != port {
            return port;
        }
    }
}
