//! Source and target users that appear on more than one row. Every row of a duplicate
//! group is refused, each naming the others: which one the admin meant is not ours to guess.

use super::columns::Column;
use super::problem::{ImportError, OtherLines, Problem};
use super::row::CheckedRow;
use super::user_name::UserName;
use std::collections::HashMap;

/// Adds a duplicate error to every row whose source or target user (compared without
/// regard to case) is also on another row.
pub(super) fn mark_duplicates(rows: &mut [CheckedRow]) {
    mark(rows, Column::SourceUser, |row| row.source_user.as_ref());
    mark(rows, Column::TargetUser, |row| row.target_user.as_ref());
}

fn mark(rows: &mut [CheckedRow], column: Column, name: fn(&CheckedRow) -> Option<&UserName>) {
    let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        if let Some(user) = name(row) {
            groups.entry(user.duplicate_key()).or_default().push(i);
        }
    }
    for members in groups.values().filter(|m| m.len() > 1) {
        for &i in members {
            let others = members.iter().filter(|&&j| j != i).map(|&j| rows[j].line);
            let other_lines = OtherLines::new(others, members.len() - 1);
            let user = name(&rows[i])
                .map(|u| u.as_str().to_owned())
                .unwrap_or_default();
            let problem = match column {
                Column::SourceUser => Problem::DuplicateSourceUser { user, other_lines },
                _ => Problem::DuplicateTargetUser { user, other_lines },
            };
            let line = rows[i].line;
            rows[i].errors.push(ImportError::at(line, column, problem));
        }
    }
}
