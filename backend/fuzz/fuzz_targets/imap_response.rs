//! Whatever bytes a server sends: the response parser, literal announcements, UID sets,
//! and the session's reader (line and literal framing, caps) over an in-memory stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailferry::engine::imap::session::{FetchItem, Session};
use mailferry::engine::imap::wire::{self, Response};
use mailferry::engine::Limits;

fuzz_target!(|data: &[u8]| {
    if let Ok(Response::Untagged(values)) = wire::parse_response(data) {
        let _ = FetchItem::from_values(values);
    }
    for line in data.split_inclusive(|&b| b == b'\n') {
        let _ = wire::literal_announced(line);
        let _ = wire::is_text_only(line);
    }
    let _ = wire::salvage_status(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = wire::parse_uid_set(text, wire::MAX_UID_SET);
    }
    // The first byte picks the state (before or after login); the rest is the stream.
    let Some((&state, stream)) = data.split_first() else {
        return;
    };
    // Small caps so that inputs of a few KiB reach every limit.
    let limits = Limits {
        pre_auth_literal: 512,
        response_literal: 4096,
        max_message: 8192,
        untagged_per_command: 200,
        bytes_per_command: 16 << 10,
        kept_responses: 100,
        kept_bytes: 8 << 10,
        command_deadline: None,
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    else {
        return;
    };
    runtime.block_on(async {
        let stream = tokio::io::join(std::io::Cursor::new(stream.to_vec()), tokio::io::sink());
        let mut session = Session::over_stream(stream, state & 1 == 1, limits);
        // Reading stops at the first error, as a real session would be dropped then.
        for _ in 0..1000 {
            if session.read_response().await.is_err() {
                break;
            }
        }
    });
});
