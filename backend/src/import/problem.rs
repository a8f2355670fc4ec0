//! Everything that can be wrong with an import file, each with a message an admin can act
//! on. Messages name lines, columns and user names, never a password.

use super::columns::Column;
use super::csv_records::{BadUtf8, Resume};
use super::user_name::UserNameError;
use mailferry_shared::RowError;
use std::fmt;
use thiserror::Error;

/// One problem, placed in the file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct ImportError {
    /// Physical line (the header is line 1).
    pub line: u64,
    /// The column: a canonical name (`target_password`) or, for header problems, the
    /// name as written in the file. `None` when the problem is the whole row or file.
    pub column: Option<String>,
    pub problem: Problem,
}

impl ImportError {
    pub fn new(line: u64, column: Option<String>, problem: Problem) -> Self {
        ImportError {
            line,
            column,
            problem,
        }
    }

    /// A problem with a whole row, or with the file as a whole.
    pub fn file(line: u64, problem: Problem) -> Self {
        ImportError::new(line, None, problem)
    }

    /// A problem with one known column of a row.
    pub fn at(line: u64, column: Column, problem: Problem) -> Self {
        ImportError::new(line, Some(column.name().to_owned()), problem)
    }

    /// The form the browser gets.
    pub fn to_wire(&self) -> RowError {
        RowError {
            line: self.line,
            column: self.column.clone(),
            reason: self.problem.to_string(),
        }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(column) => write!(f, "line {}, column {}: {}", self.line, column, self.problem),
            None => write!(f, "line {}: {}", self.line, self.problem),
        }
    }
}

/// Why a column the header lacks is needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MissingColumnWhy {
    Always,
    NoSourceMasterUser,
    NoTargetMasterUser,
    NoDefaultRoute { routes: String },
}

impl fmt::Display for MissingColumnWhy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MissingColumnWhy::Always => f.write_str("every row needs it"),
            MissingColumnWhy::NoSourceMasterUser => f.write_str(
                "no route has a master user for the source server, so every row needs the \
                 source password",
            ),
            MissingColumnWhy::NoTargetMasterUser => f.write_str(
                "no route has a master user for the target server, so every row needs the \
                 target password",
            ),
            MissingColumnWhy::NoDefaultRoute { routes } => write!(
                f,
                "there are several routes ({routes}) and no default one, so every row must \
                 name its route"
            ),
        }
    }
}

/// What is wrong. The `Display` text is the `reason` the admin reads.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Problem {
    #[error(
        "the file is empty; it needs a header line naming the columns, then one line per user"
    )]
    EmptyFile,
    #[error(
        "the file is saved as UTF-16 (\"Unicode text\"); save it as UTF-8 (in Excel: \
         \"CSV UTF-8 (Comma delimited)\") and upload it again"
    )]
    Utf16,
    #[error("the file has a header line but no users")]
    NoUsers,
    #[error(
        "the first line must name the columns, for example \
         source_user,source_password,target_user,target_password,route; \"{first_cell}\" \
         is not a column name. Add a header line"
    )]
    NoHeader { first_cell: String },
    #[error(
        "the values are separated by {separator}, not commas; save the file as \"CSV UTF-8 \
         (Comma delimited)\", or replace the separators with commas"
    )]
    WrongSeparator { separator: &'static str },
    #[error(
        "the header's quotes do not add up; write the column names without quotes, \
         separated by commas"
    )]
    HeaderQuotes,
    #[error(
        "unknown column \"{name}\" (column {position}); the columns are source_user, \
         source_password, target_user, target_password and route. Rename or remove it"
    )]
    UnknownColumn { name: String, position: usize },
    #[error(
        "column {position} means {column}, like column {first_position}; keep only one of them"
    )]
    DuplicateColumn {
        column: Column,
        first_position: usize,
        position: usize,
    },
    #[error("column {position} has no name in the header; name it or remove it")]
    UnnamedColumn { position: usize },
    #[error("the header has no {column} column; {why}. Add the column")]
    MissingColumn {
        column: Column,
        why: MissingColumnWhy,
    },
    #[error(
        "the file has {rows} users, but one import can take at most {limit}; split it into \
         several files"
    )]
    TooManyRows { rows: usize, limit: usize },
    #[error(
        "not valid UTF-8: byte 0x{:02X} at byte {} of the line (offset {} in the file). Save \
         the file as UTF-8 (in Excel: \"CSV UTF-8 (Comma delimited)\") and upload it again",
        .0.byte, .0.column, .0.offset
    )]
    NotUtf8(BadUtf8),
    #[error(
        "the quoted value that starts here is never closed; add the missing closing quote \
         (\"). {}",
        resume_note(*.resume)
    )]
    UnclosedQuote { resume: Resume },
    #[error(
        "text follows the closing quote of a quoted value{}; inside quotes, write a quote as \
         two quotes (\"\")",
        on_line(*.at_line)
    )]
    TextAfterClosingQuote { at_line: Option<u64> },
    #[error(
        "{found} values, but the header has {expected} columns ({columns}); {}{}",
        count_hint(*.found, *.expected),
        spans_note(*.ends_on_line)
    )]
    FieldCount {
        found: usize,
        expected: usize,
        columns: String,
        ends_on_line: Option<u64>,
    },
    #[error("empty; give the user's login on the {} server", server(*.0))]
    EmptyUserName(Column),
    #[error("\"{}\" {error}", shown(.name))]
    BadUserName { name: String, error: UserNameError },
    #[error(
        "empty; give the {side} password or use a route with a master user for the {side} \
         server (route \"{route}\" has none)",
        side = server(*.column)
    )]
    PasswordRequired { column: Column, route: String },
    #[error(
        "the file has no {column} column, and route \"{route}\" has no master user for the \
         {side} server; add the column with each user's password, or use a route with a \
         master user",
        side = server(*.column)
    )]
    PasswordColumnRequired { column: Column, route: String },
    #[error(
        "contains a line break, which no password can; check the quotes on this row (a \
         missing closing quote pulls the next line into the value)"
    )]
    PasswordLineBreak,
    #[error("contains a control character ({code}), which no password can; remove it")]
    PasswordControl { code: String },
    #[error(
        "contains \u{FFFD}: the text was damaged by a wrong encoding; save the file as UTF-8 \
         and upload it again"
    )]
    PasswordDamaged,
    #[error("empty; give one of the routes ({routes}), since there is no default route")]
    RouteRequired { routes: String },
    #[error("unknown route \"{}\"; the routes are: {routes}", shown(.given))]
    UnknownRoute { given: String, routes: String },
    #[error(
        "\"{}\" is also the source user on {}; each source mailbox can be imported only \
         once (user names are compared without regard to case)",
        shown(.user), .other_lines
    )]
    DuplicateSourceUser {
        user: String,
        other_lines: OtherLines,
    },
    #[error(
        "\"{}\" is also the target user on {}; two rows cannot copy into the same target \
         mailbox (user names are compared without regard to case)",
        shown(.user), .other_lines
    )]
    DuplicateTargetUser {
        user: String,
        other_lines: OtherLines,
    },
}

fn server(column: Column) -> &'static str {
    match column {
        Column::SourceUser | Column::SourcePassword => "source",
        Column::TargetUser | Column::TargetPassword | Column::Route => "target",
    }
}

/// A user-supplied text as it appears in a message: control and invisible characters
/// escaped, long texts cut.
fn shown(text: &str) -> String {
    const MAX: usize = 60;
    let escaped: String = text.escape_debug().collect();
    if escaped.chars().count() > MAX {
        let cut: String = escaped.chars().take(MAX).collect();
        format!("{cut}…")
    } else {
        escaped
    }
}

/// The other lines a duplicate user is on: the first few, and how many more (a file
/// with one name on every line must not need a quadratic amount of memory).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OtherLines {
    first: Vec<u64>,
    more: usize,
}

impl OtherLines {
    /// Lines listed by number; the rest are only counted.
    pub const LISTED: usize = 10;

    /// The first [`Self::LISTED`] of `lines`, out of `total` other lines.
    pub fn new(lines: impl IntoIterator<Item = u64>, total: usize) -> Self {
        let first: Vec<u64> = lines.into_iter().take(Self::LISTED).collect();
        let more = total.saturating_sub(first.len());
        OtherLines { first, more }
    }

    /// The listed lines.
    pub fn lines(&self) -> &[u64] {
        &self.first
    }
}

/// `line 4`, `lines 4 and 9`, `lines 4, 9 and 12`, `lines 4, 9, 12, ... and 7 more`.
impl fmt::Display for OtherLines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let listed: Vec<String> = self.first.iter().map(u64::to_string).collect();
        match (listed.as_slice(), self.more) {
            ([], _) => f.write_str("another line"),
            ([one], 0) => write!(f, "line {one}"),
            ([init @ .., last], 0) => write!(f, "lines {} and {last}", init.join(", ")),
            (_, more) => write!(f, "lines {}, ... and {more} more", listed.join(", ")),
        }
    }
}

fn resume_note(resume: Resume) -> String {
    match resume {
        Resume::NextLine(line) => {
            format!("The lines from {line} on were checked as if it were closed on this line")
        }
        Resume::EndOfFile => String::new(),
        Resume::Stopped => {
            "There are too many unclosed quotes, so the rest of the file was not checked".to_owned()
        }
    }
}

fn on_line(line: Option<u64>) -> String {
    line.map(|l| format!(" (on line {l})")).unwrap_or_default()
}

fn count_hint(found: usize, expected: usize) -> &'static str {
    if found > expected {
        "put a value that contains a comma in double quotes"
    } else {
        "every row needs a value, possibly empty, for each column"
    }
}

fn spans_note(ends_on_line: Option<u64>) -> String {
    ends_on_line
        .map(|end| {
            format!(
                ". A quoted value makes this row run on to line {end}; if that is wrong, look \
                 for a missing closing quote"
            )
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_lists_read_naturally() {
        let lines = |numbers: &[u64]| OtherLines::new(numbers.to_vec(), numbers.len()).to_string();
        assert_eq!(lines(&[4]), "line 4");
        assert_eq!(lines(&[4, 9]), "lines 4 and 9");
        assert_eq!(lines(&[4, 9, 12]), "lines 4, 9 and 12");
        let many: Vec<u64> = (1..=12).collect();
        assert_eq!(
            lines(&many),
            "lines 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, ... and 2 more"
        );
    }

    #[test]
    fn messages_escape_and_cut_user_texts() {
        assert_eq!(shown("a\u{7}b"), "a\\u{7}b");
        assert_eq!(shown(&"x".repeat(100)).chars().count(), 61);
    }

    #[test]
    fn a_row_error_reads_as_a_sentence() {
        let err = ImportError::at(
            7,
            Column::TargetPassword,
            Problem::PasswordRequired {
                column: Column::TargetPassword,
                route: "main".into(),
            },
        );
        assert_eq!(
            err.to_string(),
            "line 7, column target_password: empty; give the target password or use a route \
             with a master user for the target server (route \"main\" has none)"
        );
    }
}
