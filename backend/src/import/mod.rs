//! The admin's bulk import of users from a CSV file: read it, check every row against the
//! configured routes, and answer with the valid users and every error at once.
//!
//! Knows nothing of HTTP or of jobs: [`parse_users_csv`] takes the uploaded bytes and an
//! [`ImportContext`] and returns a [`Parsed`]; [`Parsed::preview`] is what the browser
//! may see (no passwords).
//!
//! Layout: `csv_records` (RFC 4180 records with physical line numbers), `columns` (the
//! header and its synonyms), `user_name`, `row` (one row's checks), `duplicates`,
//! `problem` (every error and its message), `context`, `imported_user`.

mod columns;
mod context;
mod csv_records;
mod duplicates;
mod imported_user;
mod problem;
mod row;
mod user_name;

#[cfg(test)]
mod tests;

pub use columns::Column;
pub use context::{ContextError, ImportContext, ImportRoute, DEFAULT_ROW_LIMIT};
pub use csv_records::{BadUtf8, Resume};
pub use imported_user::ImportedUser;
pub use problem::{ImportError, MissingColumnWhy, OtherLines, Problem};
pub use user_name::{UserName, UserNameError, MAX_USER_NAME_CHARS};

use columns::Header;
use csv_records::Records;
use mailferry_shared::ImportPreview;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
const UTF16_BOMS: [&[u8]; 2] = [b"\xFF\xFE", b"\xFE\xFF"];

/// The outcome of reading an import file: the valid users and every error. `Debug`
/// shows passwords as `Password(***)`; no error message contains one.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// Rows without any error, in file order.
    pub users: Vec<ImportedUser>,
    /// Every problem: with the file or header first, then row by row in file order.
    pub errors: Vec<ImportError>,
    /// User rows in the file (not blank, after the header), good or bad.
    pub total_rows: usize,
}

impl Parsed {
    /// `true` when the file has no error at all.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }

    /// What the browser may see: the valid rows without passwords, and every error.
    pub fn preview(&self) -> ImportPreview {
        ImportPreview {
            rows: self.users.iter().map(ImportedUser::to_wire).collect(),
            errors: self.errors.iter().map(ImportError::to_wire).collect(),
            total_rows: self.total_rows as u64,
            valid_rows: self.users.len() as u64,
        }
    }

    fn rejected(errors: Vec<ImportError>, total_rows: usize) -> Self {
        Parsed {
            users: Vec::new(),
            errors,
            total_rows,
        }
    }
}

/// Reads an uploaded CSV file of users and checks all of it. A problem with the file as a
/// whole (empty, not a CSV of users, bad header, too many rows) rejects every row; other
/// problems reject only their rows, so the admin may still import the valid ones.
pub fn parse_users_csv(bytes: &[u8], ctx: &ImportContext) -> Parsed {
    // UTF-16 without a byte order mark: about every other byte of Latin text is NUL.
    let sample = &bytes[..bytes.len().min(512)];
    let looks_utf16 =
        sample.len() >= 2 && sample.iter().filter(|&&b| b == 0).count() * 4 >= sample.len();
    if looks_utf16 || UTF16_BOMS.iter().any(|bom| bytes.starts_with(bom)) {
        return Parsed::rejected(vec![ImportError::file(1, Problem::Utf16)], 0);
    }
    let start = if bytes.starts_with(UTF8_BOM) {
        UTF8_BOM.len()
    } else {
        0
    };
    let mut records = Records::new(bytes, start).filter(|r| !r.is_blank());
    let Some(header_record) = records.next() else {
        return Parsed::rejected(vec![ImportError::file(1, Problem::EmptyFile)], 0);
    };
    let header = Header::parse(&header_record, bytes, ctx);

    // Keep at most `limit` rows; past it, only count, so a huge file costs little memory.
    let limit = ctx.row_limit();
    let mut rows = Vec::new();
    let mut total_rows = 0;
    let mut first_over_limit = None;
    for record in records {
        total_rows += 1;
        if total_rows > limit {
            first_over_limit.get_or_insert(record.line);
        } else {
            rows.push(record);
        }
    }

    let mut file_errors = match &header {
        Ok(_) => Vec::new(),
        Err(errors) => errors.clone(),
    };
    if let Some(line) = first_over_limit {
        file_errors.push(ImportError::file(
            line,
            Problem::TooManyRows {
                rows: total_rows,
                limit,
            },
        ));
    }
    let header = match header {
        Ok(header) if file_errors.is_empty() => header,
        _ => return Parsed::rejected(file_errors, total_rows),
    };
    if total_rows == 0 {
        let errors = vec![ImportError::file(header.line() + 1, Problem::NoUsers)];
        return Parsed::rejected(errors, 0);
    }

    let mut checked: Vec<row::CheckedRow> = rows
        .iter()
        .map(|record| row::check_row(record, bytes, &header, ctx))
        .collect();
    duplicates::mark_duplicates(&mut checked);

    let mut parsed = Parsed {
        total_rows,
        ..Parsed::default()
    };
    for row in checked {
        match row.into_result() {
            Ok(user) => parsed.users.push(user),
            Err(errors) => parsed.errors.extend(errors),
        }
    }
    tracing::debug!(
        rows = total_rows,
        valid = parsed.users.len(),
        errors = parsed.errors.len(),
        "checked a user import file"
    );
    parsed
}
