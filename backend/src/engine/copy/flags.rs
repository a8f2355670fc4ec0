//! Flags and dates as a migration must carry them: filtered against what the target keeps,
//! never `\Recent`, keywords kept; INTERNALDATE parsed for the UID map.

/// The flags to give a message on the target: the source's flags, without `\Recent`, and
/// without anything the target's PERMANENTFLAGS says it would not keep.
pub fn flags_for_target(source: &[String], permanent: Option<&[String]>) -> Vec<String> {
    let allows = |flag: &str| match permanent {
        None => true,
        Some(perm) => {
            perm.iter().any(|p| p.eq_ignore_ascii_case(flag))
                || (!flag.starts_with('\\') && perm.iter().any(|p| p == "\\*"))
        }
    };
    let mut out: Vec<String> = Vec::new();
    for flag in source {
        if flag.eq_ignore_ascii_case("\\Recent") || flag.is_empty() || !valid_flag(flag) {
            continue;
        }
        if allows(flag) && !out.iter().any(|f| f.eq_ignore_ascii_case(flag)) {
            out.push(flag.clone());
        }
    }
    out
}

/// A flag we can put back on the wire as an atom.
fn valid_flag(flag: &str) -> bool {
    let body = flag.strip_prefix('\\').unwrap_or(flag);
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'"' | b'\\' | b']' | b'%' | b'*')
        })
}

/// Flags in a stable, comparable form (sorted, case-folded system flags).
pub fn canonical(flags: &[String]) -> String {
    let mut v: Vec<String> = flags
        .iter()
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
        .map(|f| {
            if f.starts_with('\\') {
                f.to_ascii_lowercase()
            } else {
                f.clone()
            }
        })
        .collect();
    v.sort();
    v.dedup();
    v.join(" ")
}

pub fn has_seen(flags: &[String]) -> bool {
    flags.iter().any(|f| f.eq_ignore_ascii_case("\\Seen"))
}

/// INTERNALDATE (`17-Jul-1996 02:44:25 -0700`) as unix seconds.
pub fn parse_internal_date(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, rest) = text.split_once(' ')?;
    let (time, zone) = rest.trim().split_once(' ')?;
    let mut d = date.trim().split('-');
    let day: i64 = d.next()?.trim().parse().ok()?;
    let month = match d.next()?.to_ascii_lowercase().as_str() {
        "jan" => 1,
        "feb" => 2,
        "mar" => 3,
        "apr" => 4,
        "may" => 5,
        "jun" => 6,
        "jul" => 7,
        "aug" => 8,
        "sep" => 9,
        "oct" => 10,
        "nov" => 11,
        "dec" => 12,
        _ => return None,
    };
    let year: i64 = d.next()?.parse().ok()?;
    let mut t = time.split(':');
    let (h, m, s): (i64, i64, i64) = (
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
    );
    // A zone is `+hhmm`/`-hhmm`; working on bytes, not `&str` ranges, means a server's
    // non-ASCII text can never land a slice inside a character.
    let &[sign, h1, h2, m1, m2] = zone.trim().as_bytes() else {
        return None;
    };
    let sign = match sign {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digit = |b: u8| b.is_ascii_digit().then(|| i64::from(b - b'0'));
    let zh = digit(h1)? * 10 + digit(h2)?;
    let zm = digit(m1)? * 10 + digit(m2)?;
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + h * 3600 + m * 60 + s - sign * (zh * 3600 + zm * 60))
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn recent_is_dropped_and_keywords_follow_permanentflags() {
        let src = s(&["\\Seen", "\\Recent", "$Forwarded", "Work", "\\Flagged"]);
        assert_eq!(
            flags_for_target(&src, None),
            s(&["\\Seen", "$Forwarded", "Work", "\\Flagged"])
        );
        let perm = s(&["\\Seen", "\\Flagged", "\\*"]);
        assert_eq!(
            flags_for_target(&src, Some(&perm)),
            s(&["\\Seen", "$Forwarded", "Work", "\\Flagged"])
        );
        let perm = s(&["\\Seen"]);
        assert_eq!(flags_for_target(&src, Some(&perm)), s(&["\\Seen"]));
    }

    #[test]
    fn internal_dates_convert_to_unix_time() {
        assert_eq!(parse_internal_date("01-Jan-1970 00:00:00 +0000"), Some(0));
        assert_eq!(
            parse_internal_date("17-Jul-1996 02:44:25 -0700"),
            Some(837_596_665)
        );
        assert_eq!(
            parse_internal_date(" 1-Feb-2020 10:00:00 +0100"),
            Some(1_580_547_600)
        );
        assert_eq!(parse_internal_date("garbage"), None);
    }

    #[test]
    fn non_ascii_internal_dates_are_refused_not_a_panic() {
        // Five bytes, but the first character is two of them: `&zone[..1]` used to panic.
        assert_eq!(parse_internal_date("01-Jan-2020 10:00:00 é123"), None);
        assert_eq!(parse_internal_date("01-Jan-2020 10:00:00 +é12"), None);
        assert_eq!(parse_internal_date("01-Jan-2020 10:00:00 +01é"), None);
        assert_eq!(parse_internal_date("01-Jän-2020 10:00:00 +0100"), None);
        assert_eq!(parse_internal_date("01-Jan-2020 10:00:00 +1-00"), None);
        assert_eq!(parse_internal_date("ü ü ü"), None);
    }

    #[test]
    fn canonical_flags_ignore_order_and_case() {
        assert_eq!(
            canonical(&s(&["\\SEEN", "b", "a", "\\Recent"])),
            canonical(&s(&["a", "\\Seen", "b"]))
        );
    }
}
