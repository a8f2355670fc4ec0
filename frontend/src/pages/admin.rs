//! `/admin`: bulk import of users from a CSV file (preview, then import), the progress of
//! the imported batch, and a read-only overview of routes and staff.

use crate::api;
use crate::components::batch_progress::BatchProgress;
use crate::components::check_note::{CheckNote, Note};
use crate::components::import_preview::PreviewTable;
use crate::format::plural;
use crate::session::use_session;
use crate::staff::use_staff_guard;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::NavigateOptions;
use mailferry_shared::{ImportPreview, Me, StaffRole};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::HtmlInputElement;

#[component]
pub fn Admin() -> impl IntoView {
    let session = use_session();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Me::Anonymous | Me::User { .. }) = session.me.get() {
            navigate("/staff", Default::default());
        }
    });
    view! {
        <div class="page-head">
            <h1>"Administration"</h1>
        </div>
        {move || match session.me.get() {
            Some(Me::Staff { role: StaffRole::Admin, .. }) => view! { <AdminCards /> }.into_any(),
            Some(Me::Staff { .. }) => view! {
                <section class="card">
                    <p class="note bad" role="alert">"Only administrators can use this page."</p>
                    <p><a href="/helpdesk">"Go to the migrations table"</a></p>
                </section>
            }
            .into_any(),
            _ => view! { <p class="muted">"Loading…"</p> }.into_any(),
        }}
    }
}

#[component]
fn AdminCards() -> impl IntoView {
    let query = use_query_map();
    let batch = Memo::new(move |_| query.with(|q| q.get("batch")).filter(|b| !b.is_empty()));
    view! {
        <ImportCard />
        {move || batch.get().map(|id| view! { <BatchProgress id /> })}
        <div class="two-columns">
            <RoutesCard />
            <StaffCard />
        </div>
    }
}

/// The chosen file: its name and text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CsvFile {
    name: String,
    text: String,
}

#[component]
fn ImportCard() -> impl IntoView {
    let guard = use_staff_guard();
    let navigate = use_navigate();
    let file = RwSignal::new(None::<CsvFile>);
    let preview = RwSignal::new(None::<ImportPreview>);
    let busy = RwSignal::new(false);
    let note = RwSignal::new(None::<Note>);

    let on_file = move |ev: leptos::ev::Event| {
        let Some(input) = ev
            .target()
            .and_then(|t| t.dyn_into::<HtmlInputElement>().ok())
        else {
            return;
        };
        let Some(chosen) = input.files().and_then(|files| files.get(0)) else {
            return;
        };
        // Cleared so that choosing the same (corrected) file again is noticed.
        input.set_value("");
        busy.set(true);
        note.set(None);
        preview.set(None);
        spawn_local(async move {
            let name = chosen.name();
            let text = match JsFuture::from(chosen.text()).await {
                Ok(text) => text.as_string().unwrap_or_default(),
                Err(_) => {
                    note.set(Some(Note::bad(format!(
                        "The file {name} could not be read. Is it a text (CSV) file?"
                    ))));
                    busy.set(false);
                    return;
                }
            };
            file.set(Some(CsvFile {
                name,
                text: text.clone(),
            }));
            match api::import_preview(text).await {
                Ok(p) => preview.set(Some(p)),
                Err(failure) => {
                    note.set(Some(failure.clone().into()));
                    guard.run(failure);
                }
            }
            busy.set(false);
        });
    };

    let import = Callback::new(move |valid_rows_only: bool| {
        let Some(csv) = file.get_untracked().map(|f| f.text) else {
            return;
        };
        busy.set(true);
        note.set(None);
        let navigate = navigate.clone();
        spawn_local(async move {
            match api::import(csv, valid_rows_only).await {
                Ok(result) => {
                    let imported = result.batch.as_ref().map(|b| b.jobs).unwrap_or(0);
                    match result.batch {
                        Some(batch) => {
                            note.set(Some(Note::good(format!(
                                "Imported {}. Their migrations are queued.",
                                plural(imported, "user", "users")
                            ))));
                            file.set(None);
                            preview.set(None);
                            navigate(
                                &format!("/admin?batch={}", api::encode(&batch.id)),
                                NavigateOptions {
                                    scroll: false,
                                    ..Default::default()
                                },
                            );
                        }
                        None => {
                            note.set(Some(Note::bad(
                                "Nothing was imported: fix the rows marked in red first.",
                            )));
                            preview.set(Some(result.preview));
                        }
                    }
                }
                Err(failure) => {
                    note.set(Some(failure.clone().into()));
                    guard.run(failure);
                }
            }
            busy.set(false);
        });
    });

    view! {
        <section class="card" aria-labelledby="import-title">
            <h2 id="import-title">"Import users from a CSV file"</h2>
            <p class="muted small">
                "One user per line, with a header line. Columns: "
                <code>"source_user"</code>", "<code>"target_user"</code>", and optionally "
                <code>"source_password"</code>", "<code>"target_password"</code>", "<code>"route"</code>
                ". Nothing is imported until you confirm the preview."
            </p>
            <div class="field file-field">
                <label for="csv-file">"CSV file"</label>
                <input id="csv-file" type="file" accept=".csv,text/csv,text/plain" data-testid="csv-file"
                    on:change=on_file disabled=move || busy.get() />
            </div>
            {move || file.get().map(|f| view! { <p class="small">"File: " <strong>{f.name}</strong></p> })}
            {move || preview.get().map(|p| view! { <PreviewSummary preview=p.clone() /> <PreviewTable preview=p /> })}
            <div class="button-row">
                {move || preview.with(|p| p.as_ref().map(|p| (p.is_clean(), p.valid_rows))).map(|(clean, valid)| {
                    if clean && valid > 0 {
                        view! {
                            <button class="primary" data-testid="import" disabled=move || busy.get() on:click=move |_| import.run(false)>
                                {if valid == 1 { "Import 1 user".to_string() } else { format!("Import {valid} users") }}
                            </button>
                        }
                        .into_any()
                    } else if valid > 0 {
                        view! {
                            <button class="secondary" data-testid="import-valid" disabled=move || busy.get() on:click=move |_| import.run(true)>
                                {if valid == 1 { "Import the 1 valid row".to_string() } else { format!("Import the {valid} valid rows") }}
                            </button>
                            <span class="muted small">"or correct the file and choose it again."</span>
                        }
                        .into_any()
                    } else {
                        view! { <span class="muted small">"Correct the file and choose it again."</span> }.into_any()
                    }
                })}
            </div>
            <CheckNote note pending=busy pending_text="Working…" testid="import-result" />
        </section>
    }
}

#[component]
fn PreviewSummary(preview: ImportPreview) -> impl IntoView {
    let bad_lines = {
        let mut lines: Vec<u64> = preview.errors.iter().map(|e| e.line).collect();
        lines.dedup();
        lines.len()
    };
    let text = if preview.is_clean() {
        format!(
            "{}, all ready to import.",
            plural(preview.total_rows, "row", "rows")
        )
    } else {
        format!(
            "{}: {} ready to import, {} with a problem (marked in red).",
            plural(preview.total_rows, "row", "rows"),
            preview.valid_rows,
            bad_lines
        )
    };
    let class = if preview.is_clean() {
        "note ok"
    } else {
        "note bad"
    };
    view! { <p class=class data-testid="preview-summary">{text}</p> }
}

#[component]
fn RoutesCard() -> impl IntoView {
    let guard = use_staff_guard();
    let routes = LocalResource::new(api::admin_routes);
    Effect::new(move |_| {
        if let Some(Err(failure)) = routes.get() {
            guard.run(failure);
        }
    });
    view! {
        <section class="card" aria-labelledby="routes-title">
            <h2 id="routes-title">"Routes"</h2>
            {move || match routes.get() {
                None => view! { <p class="muted">"Loading…"</p> }.into_any(),
                Some(Err(f)) => view! { <p class="note bad">{f.message}</p> }.into_any(),
                Some(Ok(routes)) if routes.is_empty() => view! { <p class="muted">"No route is configured."</p> }.into_any(),
                Some(Ok(routes)) => view! {
                    <div class="table-wrap">
                        <table class="data">
                            <thead><tr>
                                <th scope="col">"Route"</th>
                                <th scope="col">"From"</th>
                                <th scope="col">"To"</th>
                                <th scope="col">"Sign-in"</th>
                            </tr></thead>
                            <tbody>
                                {routes.into_iter().map(|r| { let summary = sign_in_summary(&r); view! {
                                    <tr data-testid="route-row">
                                        <td data-label="Route"><strong>{r.label}</strong><br/><span class="muted small">{r.name}</span></td>
                                        <td data-label="From">{r.source_server}</td>
                                        <td data-label="To">{r.target_server}</td>
                                        <td data-label="Sign-in">{summary}</td>
                                    </tr>
                                }}).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }
                .into_any(),
            }}
        </section>
    }
}

#[component]
fn StaffCard() -> impl IntoView {
    let guard = use_staff_guard();
    let staff = LocalResource::new(api::admin_staff);
    Effect::new(move |_| {
        if let Some(Err(failure)) = staff.get() {
            guard.run(failure);
        }
    });
    view! {
        <section class="card" aria-labelledby="staff-title">
            <h2 id="staff-title">"Staff"</h2>
            {move || match staff.get() {
                None => view! { <p class="muted">"Loading…"</p> }.into_any(),
                Some(Err(f)) => view! { <p class="note bad">{f.message}</p> }.into_any(),
                Some(Ok(staff)) => view! {
                    <ul class="plain-list">
                        {staff.into_iter().map(|s| view! {
                            <li data-testid="staff-row">
                                <span>{s.username}</span>
                                <span class="chip neutral">{match s.role { StaffRole::Admin => "Admin", StaffRole::Helpdesk => "Helpdesk" }}</span>
                            </li>
                        }).collect_view()}
                    </ul>
                    <p class="muted small">"Staff accounts are managed with " <code>"mailferry staff add"</code> "."</p>
                }
                .into_any(),
            }}
        </section>
    }
}

/// How users of a route prove who they are, and how the copy logs in, in one line.
fn sign_in_summary(route: &mailferry_shared::RouteInfo) -> String {
    let copy = match (route.source_master, route.target_master) {
        (false, false) => "copied with the users' passwords".to_owned(),
        (true, true) => "copied with master logins on both sides".to_owned(),
        (true, false) => "master login on the old server".to_owned(),
        (false, true) => "master login on the new server".to_owned(),
    };
    format!(
        "User name and password on both sides; new account: {}; {copy}",
        route.target_user.describe()
    )
}
