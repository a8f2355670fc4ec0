//! Numbers, sizes, durations and dates in words people read at a glance.

use mailferry_shared::{JobStatus, JobView};

/// `1.2 MB`, `830 KB`, `12 bytes` (decimal units, as mail clients show them).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n} bytes");
    }
    let mut value = n as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

/// A rate with one decimal under 10 and none above: `4.2`, `130`.
pub fn rate(per_second: f64) -> String {
    if per_second < 10.0 {
        format!("{per_second:.1}")
    } else {
        format!("{per_second:.0}")
    }
}

/// Seconds since the Unix epoch, now.
pub fn now() -> i64 {
    (js_sys::Date::now() / 1000.0) as i64
}

/// How long ago a moment was: `just now`, `5 min ago`, `3 h ago`, or the date.
pub fn ago(unix: i64) -> String {
    let seconds = (now() - unix).max(0);
    match seconds {
        0..=44 => "just now".into(),
        45..=3599 => format!("{} min ago", (seconds + 30) / 60),
        3600..=86_399 => format!("{} h ago", seconds / 3600),
        _ => date(unix),
    }
}

/// A local date and time, e.g. `23/11/2026, 15:04` (the browser's own conventions).
pub fn date(unix: i64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(unix as f64 * 1000.0));
    let options = js_sys::Object::new();
    for (key, value) in [
        ("year", "numeric"),
        ("month", "short"),
        ("day", "numeric"),
        ("hour", "2-digit"),
        ("minute", "2-digit"),
    ] {
        let _ = js_sys::Reflect::set(&options, &key.into(), &value.into());
    }
    date.to_locale_string("default", &options).into()
}

/// A local time of day with seconds, for event logs.
pub fn time(unix: i64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(unix as f64 * 1000.0));
    let options = js_sys::Object::new();
    for (key, value) in [
        ("month", "short"),
        ("day", "numeric"),
        ("hour", "2-digit"),
        ("minute", "2-digit"),
        ("second", "2-digit"),
    ] {
        let _ = js_sys::Reflect::set(&options, &key.into(), &value.into());
    }
    date.to_locale_string("default", &options).into()
}

/// A local time of day, `14:05`, in the browser's time zone.
pub fn clock(unix: i64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(unix as f64 * 1000.0));
    let options = js_sys::Object::new();
    for (key, value) in [("hour", "2-digit"), ("minute", "2-digit")] {
        let _ = js_sys::Reflect::set(&options, &key.into(), &value.into());
    }
    date.to_locale_time_string_with_options("default", &options)
        .into()
}

/// "Paused until 14:05 (provider limit)" for a job waiting out a cap, in local time.
pub fn paused_until(job: &JobView) -> Option<String> {
    let at = job
        .resume_at
        .filter(|_| job.status == JobStatus::PausedThrottled)?;
    Some(mailferry_shared::paused_until_words(
        &clock(at),
        job.status_reason.as_deref(),
    ))
}

/// The part of a progress done, 0.0 to 1.0.
pub fn fraction(done: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        (done as f64 / total as f64).clamp(0.0, 1.0)
    }
}

/// Whole percent, never showing 100 % before everything is done.
pub fn percent(done: u64, total: u64) -> u64 {
    if total == 0 {
        return 0;
    }
    let p = (done as f64 * 100.0 / total as f64).floor() as u64;
    if done < total {
        p.min(99)
    } else {
        100
    }
}

/// The colour family of a status chip (a CSS class).
pub fn status_tone(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Ready | JobStatus::Cancelled => "neutral",
        JobStatus::Queued | JobStatus::Connecting | JobStatus::Copying => "active",
        JobStatus::Synced => "good",
        JobStatus::CompletedWithSkips
        | JobStatus::PausedOverQuota
        | JobStatus::PausedThrottled
        | JobStatus::PausedPasswordChanged
        | JobStatus::PausedSignInAgain => "warn",
        JobStatus::Failed => "bad",
    }
}

/// "1 user", "3 users".
pub fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}
