use leptos::prelude::*;
use mailferry_shared::{ImportPreview, ImportRow, RowError};

/// One line of the file in the preview: a good row, or the problems found on that line.
enum Line {
    Good(ImportRow),
    Bad(u64, Vec<RowError>),
}

impl Line {
    fn number(&self) -> u64 {
        match self {
            Line::Good(row) => row.line,
            Line::Bad(line, _) => *line,
        }
    }
}

/// Every line of the file in order; bad lines in red with their reasons.
#[component]
pub fn PreviewTable(preview: ImportPreview) -> impl IntoView {
    let mut lines: Vec<Line> = preview.rows.into_iter().map(Line::Good).collect();
    for error in preview.errors {
        match lines
            .iter_mut()
            .find(|l| matches!(l, Line::Bad(n, _) if *n == error.line))
        {
            Some(Line::Bad(_, errors)) => errors.push(error),
            _ => lines.push(Line::Bad(error.line, vec![error])),
        }
    }
    lines.sort_by_key(Line::number);
    view! {
        <div class="table-wrap preview">
            <table class="data">
                <thead>
                    <tr>
                        <th scope="col" class="num">"Line"</th>
                        <th scope="col">"Old mailbox"</th>
                        <th scope="col">"New mailbox"</th>
                        <th scope="col">"Route"</th>
                        <th scope="col">"Passwords"</th>
                    </tr>
                </thead>
                <tbody>
                    {lines.into_iter().map(line_row).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

fn line_row(line: Line) -> AnyView {
    match line {
        Line::Good(row) => {
            let route = if row.route_from_default {
                format!("{} (default)", row.route)
            } else {
                row.route
            };
            let passwords = match (row.source_password_given, row.target_password_given) {
                (true, true) => "both given",
                (true, false) => "old only (new: master login)",
                (false, true) => "new only (old: master login)",
                (false, false) => "none (master logins)",
            };
            view! {
                <tr data-testid="preview-row" data-line=row.line>
                    <td data-label="Line" class="num">{row.line}</td>
                    <td data-label="Old mailbox">{row.source_user}</td>
                    <td data-label="New mailbox">{row.target_user}</td>
                    <td data-label="Route">{route}</td>
                    <td data-label="Passwords">{passwords}</td>
                </tr>
            }
            .into_any()
        }
        Line::Bad(number, errors) => view! {
            <tr class="row-bad" data-testid="row-error" data-line=number>
                <td data-label="Line" class="num">{number}</td>
                <td colspan="4" class="reason">
                    {errors
                        .into_iter()
                        .map(|e| {
                            let column = e.column.map(|c| format!("{c}: ")).unwrap_or_default();
                            view! { <div><strong>{column}</strong>{e.reason}</div> }
                        })
                        .collect_view()}
                </td>
            </tr>
        }
        .into_any(),
    }
}
