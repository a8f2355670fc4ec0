//! Whatever file an admin uploads: the user import's CSV reader and every row check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailferry::import::{parse_users_csv, ImportContext, ImportRoute};

fuzz_target!(|data: &[u8]| {
    let routes = [
        ImportRoute::new("main"),
        ImportRoute::new("hosted")
            .with_source_master_user()
            .with_target_master_user(),
    ];
    let Ok(ctx) = ImportContext::new(routes)
        .and_then(|c| c.with_default_route("main"))
        .and_then(|c| c.with_row_limit(50))
    else {
        return;
    };
    let parsed = parse_users_csv(data, &ctx);
    // The preview is what the browser gets: building it must not fail either.
    let _ = parsed.preview();
    let _ = format!("{parsed:?}");
});
