//! The columns an import file may have, the names a header may give them, and the header
//! line read into a map from column to position.

use super::context::ImportContext;
use super::csv_records::RawRecord;
use super::problem::{ImportError, MissingColumnWhy, Problem};
use std::fmt;

/// A column the importer understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Column {
    SourceUser,
    SourcePassword,
    TargetUser,
    TargetPassword,
    Route,
}

/// Words that, written before a user/password word, mean "source" or "target".
const SOURCE_WORDS: &[&str] = &["source", "src", "from", "old"];
const TARGET_WORDS: &[&str] = &["target", "dest", "destination", "to", "new"];
const USER_WORDS: &[&str] = &[
    "user", "username", "login", "email", "mail", "account", "mailbox",
];
const PASSWORD_WORDS: &[&str] = &["password", "pass", "passwd", "pw", "pwd"];
const ROUTE_NAMES: &[&str] = &["route", "routename", "migrationroute"];

impl Column {
    /// In the order the examples list them.
    pub const ALL: [Column; 5] = [
        Column::SourceUser,
        Column::SourcePassword,
        Column::TargetUser,
        Column::TargetPassword,
        Column::Route,
    ];

    /// The canonical name, used in every message.
    pub fn name(self) -> &'static str {
        match self {
            Column::SourceUser => "source_user",
            Column::SourcePassword => "source_password",
            Column::TargetUser => "target_user",
            Column::TargetPassword => "target_password",
            Column::Route => "route",
        }
    }

    /// The column a header cell names: case, blanks, `_`, `-` and `.` do not matter,
    /// and common synonyms are understood (`From User`, `old_login`, `new-email`,
    /// `target pwd`...).
    pub fn from_header(cell: &str) -> Option<Column> {
        let key: String = cell
            .chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect();
        if ROUTE_NAMES.contains(&key.as_str()) {
            return Some(Column::Route);
        }
        let sides = [
            (SOURCE_WORDS, Column::SourceUser, Column::SourcePassword),
            (TARGET_WORDS, Column::TargetUser, Column::TargetPassword),
        ];
        for (side_words, user, password) in sides {
            for rest in side_words.iter().filter_map(|w| key.strip_prefix(w)) {
                if USER_WORDS.contains(&rest) {
                    return Some(user);
                }
                if PASSWORD_WORDS.contains(&rest) {
                    return Some(password);
                }
            }
        }
        None
    }

    /// Position in [`Column::ALL`] (the declaration order).
    pub(super) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The header line: where each known column is.
#[derive(Debug, Clone)]
pub(super) struct Header {
    positions: [Option<usize>; 5],
    width: usize,
    line: u64,
}

impl Header {
    /// Reads the header record, reporting every problem with it at once.
    pub fn parse(
        record: &RawRecord<'_>,
        file: &[u8],
        ctx: &ImportContext,
    ) -> Result<Header, Vec<ImportError>> {
        let line = record.line;
        if record.quote_problem.is_some() {
            return Err(vec![ImportError::file(line, Problem::HeaderQuotes)]);
        }
        let mut errors = Vec::new();
        let mut positions = [None; 5];
        let mut unknown = Vec::new();
        for (i, field) in record.fields.iter().enumerate() {
            let cell = match field.text(file) {
                Ok(text) => text.trim(),
                Err(bad) => {
                    errors.push(ImportError::new(bad.line, None, Problem::NotUtf8(bad)));
                    continue;
                }
            };
            if cell.is_empty() {
                errors.push(ImportError::file(
                    line,
                    Problem::UnnamedColumn { position: i + 1 },
                ));
                continue;
            }
            match Column::from_header(cell) {
                Some(column) => match positions[column.index()] {
                    Some(first) => errors.push(ImportError::new(
                        line,
                        Some(cell.to_owned()),
                        Problem::DuplicateColumn {
                            column,
                            first_position: first + 1,
                            position: i + 1,
                        },
                    )),
                    None => positions[column.index()] = Some(i),
                },
                None => unknown.push((i, cell.to_owned())),
            }
        }
        if positions.iter().all(Option::is_none) && !unknown.is_empty() {
            if let [(_, only)] = unknown.as_slice() {
                // One cell holding several names: a spreadsheet saved with another separator.
                let separator = [(';', "semicolons"), ('\t', "tabs"), ('|', "vertical bars")]
                    .into_iter()
                    .find(|(c, _)| only.contains(*c));
                if let Some((_, separator)) = separator {
                    return Err(vec![ImportError::file(
                        line,
                        Problem::WrongSeparator { separator },
                    )]);
                }
            }
            // Nothing looks like a column name: most likely the header line is missing.
            let first_cell = unknown.swap_remove(0).1;
            return Err(vec![ImportError::file(
                line,
                Problem::NoHeader { first_cell },
            )]);
        }
        for (i, cell) in unknown {
            errors.push(ImportError::new(
                line,
                Some(cell.clone()),
                Problem::UnknownColumn {
                    name: cell,
                    position: i + 1,
                },
            ));
        }
        for column in Column::ALL {
            if positions[column.index()].is_some() {
                continue;
            }
            if let Some(why) = Self::why_required(column, ctx) {
                errors.push(ImportError::new(
                    line,
                    Some(column.name().to_owned()),
                    Problem::MissingColumn { column, why },
                ));
            }
        }
        if errors.is_empty() {
            Ok(Header {
                positions,
                width: record.fields.len(),
                line,
            })
        } else {
            Err(errors)
        }
    }

    /// Why a file without `column` cannot be imported, or `None` if it can.
    fn why_required(column: Column, ctx: &ImportContext) -> Option<MissingColumnWhy> {
        let routes = ctx.routes();
        match column {
            Column::SourceUser | Column::TargetUser => Some(MissingColumnWhy::Always),
            Column::SourcePassword if !routes.iter().any(|r| r.source_master_user) => {
                Some(MissingColumnWhy::NoSourceMasterUser)
            }
            Column::TargetPassword if !routes.iter().any(|r| r.target_master_user) => {
                Some(MissingColumnWhy::NoTargetMasterUser)
            }
            Column::Route if ctx.default_route().is_none() => {
                Some(MissingColumnWhy::NoDefaultRoute {
                    routes: ctx.route_names(),
                })
            }
            _ => None,
        }
    }

    /// Index of `column` in each record, if the file has it.
    pub fn position(&self, column: Column) -> Option<usize> {
        self.positions[column.index()]
    }

    /// The column at index `position` of a record.
    pub fn column_at(&self, position: usize) -> Option<Column> {
        Column::ALL
            .into_iter()
            .find(|&c| self.position(c) == Some(position))
    }

    /// Number of fields every record must have.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Physical line of the header.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// `source_user, target_user, ...` in file order, for messages about field counts.
    pub fn describe(&self) -> String {
        let mut present: Vec<(usize, Column)> = Column::ALL
            .iter()
            .filter_map(|&c| self.position(c).map(|p| (p, c)))
            .collect();
        present.sort();
        present
            .iter()
            .map(|(_, c)| c.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_ignore_case_blanks_and_separators() {
        for cell in [
            "source_user",
            "Source User",
            "SOURCE-USER",
            "sourceUser",
            " source.user ",
        ] {
            assert_eq!(
                Column::from_header(cell),
                Some(Column::SourceUser),
                "{cell}"
            );
        }
    }

    #[test]
    fn common_synonyms_are_understood() {
        let cases = [
            ("from_user", Column::SourceUser),
            ("old_login", Column::SourceUser),
            ("Source Email", Column::SourceUser),
            ("src_password", Column::SourcePassword),
            ("old pass", Column::SourcePassword),
            ("target_user", Column::TargetUser),
            ("new_login", Column::TargetUser),
            ("Destination Mailbox", Column::TargetUser),
            ("to_password", Column::TargetPassword),
            ("target pwd", Column::TargetPassword),
            ("Route", Column::Route),
            ("route name", Column::Route),
        ];
        for (cell, column) in cases {
            assert_eq!(Column::from_header(cell), Some(column), "{cell}");
        }
    }

    #[test]
    fn other_names_are_not_columns() {
        for cell in ["user", "password", "source", "department", "toto", ""] {
            assert_eq!(Column::from_header(cell), None, "{cell}");
        }
    }
}
