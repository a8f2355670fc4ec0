//! One user row checked against the header and the configured routes: every problem in
//! the row is reported, not only the first.

use super::columns::{Column, Header};
use super::context::{ImportContext, ImportRoute};
use super::csv_records::{QuoteProblem, RawRecord};
use super::imported_user::ImportedUser;
use super::problem::{ImportError, Problem};
use super::user_name::{UserName, UserNameError};
use crate::engine::Password;

/// What came out of one row: its parts that are valid, and its errors. The user names are
/// kept even when other columns are wrong, so duplicates are found across all rows.
#[derive(Debug)]
pub(super) struct CheckedRow {
    pub line: u64,
    pub source_user: Option<UserName>,
    pub target_user: Option<UserName>,
    source_password: Option<Password>,
    target_password: Option<Password>,
    route: Option<(String, bool)>,
    pub errors: Vec<ImportError>,
}

impl CheckedRow {
    fn broken(line: u64, error: ImportError) -> Self {
        CheckedRow {
            line,
            source_user: None,
            target_user: None,
            source_password: None,
            target_password: None,
            route: None,
            errors: vec![error],
        }
    }

    /// The valid user, or every error of the row in column order.
    pub fn into_result(self) -> Result<ImportedUser, Vec<ImportError>> {
        match (self.source_user, self.target_user, self.route) {
            (Some(source_user), Some(target_user), Some((route, route_from_default)))
                if self.errors.is_empty() =>
            {
                Ok(ImportedUser {
                    line: self.line,
                    source_user,
                    source_password: self.source_password,
                    target_user,
                    target_password: self.target_password,
                    route,
                    route_from_default,
                })
            }
            _ => {
                let mut errors = self.errors;
                errors.sort_by_key(column_rank);
                Err(errors)
            }
        }
    }
}

/// Row-level errors first, then the columns in their usual order.
fn column_rank(error: &ImportError) -> usize {
    error.column.as_deref().map_or(0, |name| {
        Column::ALL
            .iter()
            .position(|c| c.name() == name)
            .map_or(Column::ALL.len() + 1, |i| i + 1)
    })
}

/// Checks one record (not blank, after the header).
pub(super) fn check_row(
    record: &RawRecord<'_>,
    file: &[u8],
    header: &Header,
    ctx: &ImportContext,
) -> CheckedRow {
    let line = record.line;
    if let Some(problem) = &record.quote_problem {
        return CheckedRow::broken(line, quote_error(record, problem, header));
    }
    if record.fields.len() != header.width() {
        let problem = Problem::FieldCount {
            found: record.fields.len(),
            expected: header.width(),
            columns: header.describe(),
            ends_on_line: (record.end_line > line).then_some(record.end_line),
        };
        return CheckedRow::broken(line, ImportError::file(line, problem));
    }

    let mut errors = Vec::new();
    // Each column's text: `None` when absent from the file or not UTF-8 (then reported).
    let mut texts: [Option<&str>; 5] = [None; 5];
    let mut unreadable = [false; 5];
    for (i, column) in Column::ALL.into_iter().enumerate() {
        let Some(field) = header.position(column).and_then(|p| record.fields.get(p)) else {
            continue;
        };
        match field.text(file) {
            Ok(text) => texts[i] = Some(text),
            Err(bad) => {
                unreadable[i] = true;
                errors.push(ImportError::at(bad.line, column, Problem::NotUtf8(bad)));
            }
        }
    }
    let text = |column: Column| texts[column.index()];
    let readable = |column: Column| !unreadable[column.index()];

    let route = if readable(Column::Route) {
        match resolve_route(text(Column::Route), ctx) {
            Ok(route) => Some(route),
            Err(problem) => {
                errors.push(ImportError::at(line, Column::Route, problem));
                None
            }
        }
    } else {
        None
    };

    let user = |column: Column, errors: &mut Vec<ImportError>| {
        let raw = text(column)?;
        match UserName::parse(raw) {
            Ok(name) => Some(name),
            Err(UserNameError::Empty) => {
                errors.push(ImportError::at(
                    line,
                    column,
                    Problem::EmptyUserName(column),
                ));
                None
            }
            Err(error) => {
                let problem = Problem::BadUserName {
                    name: raw.trim().to_owned(),
                    error,
                };
                errors.push(ImportError::at(line, column, problem));
                None
            }
        }
    };
    let source_user = user(Column::SourceUser, &mut errors);
    let target_user = user(Column::TargetUser, &mut errors);

    let route_info = route.as_ref().and_then(|(name, _)| ctx.route(name));
    let password = |column: Column, errors: &mut Vec<ImportError>| {
        if !readable(column) {
            return None;
        }
        let given = text(column).filter(|t| !t.is_empty());
        match given {
            Some(secret) => match password_problem(secret) {
                None => Some(Password::new(secret)),
                Some(problem) => {
                    errors.push(ImportError::at(line, column, problem));
                    None
                }
            },
            None => {
                // Without a known route there is no telling whether a master user logs in.
                let route = route_info?;
                if !has_master_user(route, column) {
                    let route = route.name.clone();
                    let problem = if header.position(column).is_some() {
                        Problem::PasswordRequired { column, route }
                    } else {
                        Problem::PasswordColumnRequired { column, route }
                    };
                    errors.push(ImportError::at(line, column, problem));
                }
                None
            }
        }
    };
    let source_password = password(Column::SourcePassword, &mut errors);
    let target_password = password(Column::TargetPassword, &mut errors);

    CheckedRow {
        line,
        source_user,
        target_user,
        source_password,
        target_password,
        route,
        errors,
    }
}

/// The route's configured name and whether it is the default, or why there is none.
fn resolve_route(given: Option<&str>, ctx: &ImportContext) -> Result<(String, bool), Problem> {
    match given.map(str::trim).filter(|t| !t.is_empty()) {
        Some(name) => ctx
            .route(name)
            .map(|r| (r.name.clone(), false))
            .ok_or_else(|| Problem::UnknownRoute {
                given: name.to_owned(),
                routes: ctx.route_names(),
            }),
        None => ctx
            .default_route()
            .map(|r| (r.name.clone(), true))
            .ok_or_else(|| Problem::RouteRequired {
                routes: ctx.route_names(),
            }),
    }
}

fn has_master_user(route: &ImportRoute, column: Column) -> bool {
    match column {
        Column::SourcePassword => route.source_master_user,
        _ => route.target_master_user,
    }
}

/// Passwords are taken as written (spaces included), except for characters that no
/// server accepts in a login and that mean the file is damaged.
fn password_problem(secret: &str) -> Option<Problem> {
    if secret.contains(['\r', '\n']) {
        return Some(Problem::PasswordLineBreak);
    }
    if let Some(c) = secret.chars().find(|c| c.is_control()) {
        return Some(Problem::PasswordControl {
            code: format!("U+{:04X}", u32::from(c)),
        });
    }
    if secret.contains('\u{FFFD}') {
        return Some(Problem::PasswordDamaged);
    }
    None
}

fn quote_error(record: &RawRecord<'_>, problem: &QuoteProblem, header: &Header) -> ImportError {
    let (field, line, problem) = match *problem {
        QuoteProblem::Unterminated { field, resume } => {
            (field, record.line, Problem::UnclosedQuote { resume })
        }
        QuoteProblem::TextAfterClosingQuote { field, line } => (
            field,
            record.line,
            Problem::TextAfterClosingQuote {
                at_line: (line != record.line).then_some(line),
            },
        ),
    };
    let line = record.fields.get(field).map_or(line, |f| f.line);
    match header.column_at(field) {
        Some(column) => ImportError::at(line, column, problem),
        None => ImportError::file(line, problem),
    }
}
