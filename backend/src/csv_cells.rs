//! CSV that Mailferry hands out (the UID-map export of the helpdesk and of
//! `mailferry migrate --export-map`). Cells hold text from mailboxes (folder names, flags), which
//! anyone who can send mail or share a folder controls: a cell a spreadsheet would read
//! as a formula (`=`, `+`, `-`, `@`, tab, carriage return first) gets a leading `'`, so
//! opening the export never runs anything.

/// One cell: neutralised against formula injection, then quoted when needed.
pub fn cell(text: &str) -> String {
    let neutral = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if neutral.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", neutral.replace('"', "\"\""))
    } else {
        neutral
    }
}

/// One line: cells joined by commas, ended by a newline.
pub fn line<S: AsRef<str>>(cells: &[S]) -> String {
    let mut out = cells
        .iter()
        .map(|c| cell(c.as_ref()))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_quoting_still_holds() {
        assert_eq!(cell("INBOX"), "INBOX");
        assert_eq!(
            cell("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("-2"), "'-2");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("\tx"), "'\tx");
        assert_eq!(cell("\rx"), "\"'\rx\"");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("a=b"), "a=b");
        assert_eq!(line(&["1", "=x"]), "1,'=x\n");
    }
}
