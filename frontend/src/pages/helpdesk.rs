//! `/helpdesk`: every job in a filterable, sortable table, paged by the server.
//! The filters live in the address (`?status=&route=&q=&batch=&sort=&desc=&page=`), so a
//! view can be bookmarked, shared, or linked to (the admin page links to one batch).

use crate::api;
use crate::components::progress::ProgressBar;
use crate::components::status_chip::StatusChip;
use crate::format;
use crate::staff::use_staff_guard;
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::params::ParamsMap;
use leptos_router::NavigateOptions;
use mailferry_shared::{JobPage, JobStatus, JobView};
use std::time::Duration;

const PER_PAGE: u64 = 50;
/// The table refreshes itself this often, so counts move without a reload.
const REFRESH: Duration = Duration::from_secs(5);

/// The table's filters, sort and page, as read from and written to the address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Filters {
    status: String,
    route: String,
    q: String,
    batch: String,
    sort: String,
    desc: bool,
    /// 1-based, as people count.
    page: u64,
}

impl Filters {
    fn from_query(query: &ParamsMap) -> Filters {
        let text = |key: &str| query.get(key).unwrap_or_default();
        Filters {
            status: text("status"),
            route: text("route"),
            q: text("q"),
            batch: text("batch"),
            sort: text("sort"),
            desc: matches!(query.get_str("desc"), Some("1" | "true")),
            page: query
                .get_str("page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(1)
                .max(1),
        }
    }

    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        for (key, value) in [
            ("status", &self.status),
            ("route", &self.route),
            ("q", &self.q),
            ("batch", &self.batch),
            ("sort", &self.sort),
        ] {
            if !value.is_empty() {
                pairs.push((key, value.clone()));
            }
        }
        if self.desc {
            pairs.push(("desc", "1".into()));
        }
        pairs
    }

    fn url(&self) -> String {
        let mut pairs = self.pairs();
        if self.page > 1 {
            pairs.push(("page", self.page.to_string()));
        }
        if pairs.is_empty() {
            return "/helpdesk".into();
        }
        format!("/helpdesk?{}", join(&pairs))
    }

    fn api_query(&self) -> String {
        let mut pairs = self.pairs();
        if self.desc {
            // The API reads a boolean.
            pairs.retain(|(k, _)| *k != "desc");
            pairs.push(("desc", "true".into()));
        }
        pairs.push(("page", (self.page - 1).to_string()));
        pairs.push(("per_page", PER_PAGE.to_string()));
        join(&pairs)
    }
}

fn join(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", api::encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[component]
pub fn Helpdesk() -> impl IntoView {
    let query = use_query_map();
    let filters = Memo::new(move |_| query.with(Filters::from_query));
    let navigate = use_navigate();
    let go = Callback::new(move |(next, replace): (Filters, bool)| {
        navigate(
            &next.url(),
            NavigateOptions {
                replace,
                scroll: false,
                ..Default::default()
            },
        );
    });

    let jobs = LocalResource::new(move || {
        let query = filters.get().api_query();
        async move { api::helpdesk_jobs(&query).await }
    });
    let guard = use_staff_guard();
    Effect::new(move |_| {
        if let Some(Err(failure)) = jobs.get() {
            guard.run(failure);
        }
    });
    if let Ok(ticker) = set_interval_with_handle(move || jobs.refetch(), REFRESH) {
        on_cleanup(move || ticker.clear());
    }

    // The last good page stays on screen while the next one loads or if a refresh fails.
    let page = RwSignal::new(None::<JobPage>);
    Effect::new(move |_| {
        if let Some(Ok(fresh)) = jobs.get() {
            page.set(Some(fresh));
        }
    });
    let error = move || jobs.get().and_then(|r| r.err()).map(|f| f.message);

    view! {
        <div class="page-head">
            <h1>"Migrations"</h1>
            <p class="muted" data-testid="job-total">
                {move || page.with(|p| p.as_ref().map(|p| if p.total == 1 { "1 job matches".to_owned() } else { format!("{} jobs match", p.total) }))}
            </p>
        </div>
        <FilterBar filters go />
        {move || error().map(|e| view! { <p class="note bad" role="alert">{e}</p> })}
        <div class="card table-card">
            <JobTable filters go page />
            <Pager filters go page />
        </div>
    }
}

#[component]
fn FilterBar(filters: Memo<Filters>, go: Callback<(Filters, bool)>) -> impl IntoView {
    let routes = LocalResource::new(api::routes);
    let search = RwSignal::new(filters.get_untracked().q);
    let mut apply_search = debounce(Duration::from_millis(300), move |q: String| {
        let mut next = filters.get_untracked();
        if next.q != q {
            next.q = q;
            next.page = 1;
            go.run((next, true));
        }
    });
    let set = move |change: fn(&mut Filters, String), value: String| {
        let mut next = filters.get_untracked();
        change(&mut next, value);
        next.page = 1;
        go.run((next, false));
    };
    view! {
        <div class="filters" role="search">
            <div class="field">
                <label for="filter-q">"Search by user"</label>
                <input id="filter-q" type="search" data-testid="filter-q" placeholder="Name or address"
                    autocomplete="off"
                    prop:value=move || search.get()
                    on:input=move |ev| {
                        let value = event_target_value(&ev);
                        search.set(value.clone());
                        apply_search(value);
                    } />
            </div>
            <div class="field">
                <label for="filter-status">"Status"</label>
                <select id="filter-status" data-testid="filter-status"
                    prop:value=move || filters.get().status
                    on:change=move |ev| set(|f, v| f.status = v, event_target_value(&ev))>
                    <option value="">"All statuses"</option>
                    {JobStatus::ALL
                        .into_iter()
                        .map(|s| view! { <option value=s.as_str()>{s.label()}</option> })
                        .collect_view()}
                </select>
            </div>
            <div class="field">
                <label for="filter-route">"Route"</label>
                <select id="filter-route" data-testid="filter-route"
                    prop:value=move || filters.get().route
                    on:change=move |ev| set(|f, v| f.route = v, event_target_value(&ev))>
                    <option value="">"All routes"</option>
                    {move || {
                        routes
                            .get()
                            .and_then(|r| r.ok())
                            .unwrap_or_default()
                            .into_iter()
                            .map(|r| {
                                let selected = filters.with_untracked(|f| f.route == r.name);
                                view! { <option value=r.name selected=selected>{r.label}</option> }
                            })
                            .collect_view()
                    }}
                </select>
            </div>
            {move || {
                let batch = filters.get().batch;
                (!batch.is_empty()).then(|| {
                    let short: String = batch.chars().take(8).collect();
                    view! {
                        <div class="batch-filter">
                            <span class="chip neutral">"Import batch " {short}</span>
                            <button type="button" class="link" on:click=move |_| set(|f, _| f.batch.clear(), String::new())>
                                "Show all jobs"
                            </button>
                        </div>
                    }
                })
            }}
        </div>
    }
}

/// The sortable columns: (label, sort key the API knows, descending first?).
const SORTABLE: [(&str, &str, bool); 4] = [
    ("User", "user", false),
    ("Status", "status", false),
    ("Progress", "progress", true),
    ("Last activity", "updated", true),
];

#[component]
fn SortHeader(
    label: &'static str,
    key: &'static str,
    desc_first: bool,
    filters: Memo<Filters>,
    go: Callback<(Filters, bool)>,
    #[prop(optional)] class: &'static str,
) -> impl IntoView {
    // No sort in the address means the server's default: last activity, newest first.
    let current = move || {
        let f = filters.get();
        if f.sort.is_empty() {
            ("updated".to_string(), true)
        } else {
            (f.sort, f.desc)
        }
    };
    let aria_sort = move || {
        let (sort, desc) = current();
        match (sort == key, desc) {
            (true, true) => "descending",
            (true, false) => "ascending",
            _ => "none",
        }
    };
    let arrow = move || match aria_sort() {
        "descending" => "▼",
        "ascending" => "▲",
        _ => "",
    };
    let click = move |_| {
        let (sort, desc) = current();
        let mut next = filters.get_untracked();
        next.sort = key.to_string();
        next.desc = if sort == key { !desc } else { desc_first };
        next.page = 1;
        go.run((next, false));
    };
    view! {
        <th scope="col" class=class aria-sort=aria_sort>
            <button type="button" class="sort" on:click=click>
                {label}
                <span class="arrow" aria-hidden="true">{arrow}</span>
            </button>
        </th>
    }
}

#[component]
fn JobTable(
    filters: Memo<Filters>,
    go: Callback<(Filters, bool)>,
    page: RwSignal<Option<JobPage>>,
) -> impl IntoView {
    let header = |i: usize, class: &'static str| {
        let (label, key, desc_first) = SORTABLE[i];
        view! { <SortHeader label key desc_first filters go class /> }
    };
    view! {
        <div class="table-wrap">
            <table class="data jobs">
                <thead>
                    <tr>
                        {header(1, "")}
                        {header(0, "")}
                        <th scope="col">"Route"</th>
                        {header(2, "progress-col")}
                        <th scope="col" class="num">"Messages"</th>
                        <th scope="col" class="num">"Skipped"</th>
                        {header(3, "")}
                    </tr>
                </thead>
                <tbody>
                    {move || page.with(|p| match p {
                        None => Some(view! { <tr><td colspan="7" class="muted">"Loading…"</td></tr> }),
                        Some(p) if p.jobs.is_empty() => Some(view! {
                            <tr><td colspan="7" class="muted">"No job matches these filters."</td></tr>
                        }),
                        Some(_) => None,
                    })}
                    // Keyed rows: a refresh rebuilds only the rows that changed, so keyboard
                    // focus on a row's link survives the periodic refresh.
                    <For
                        each=move || page.with(|p| p.as_ref().map(|p| p.jobs.clone()).unwrap_or_default())
                        key=|job| (job.id.clone(), job.updated_at, job.status, job.counts.messages_done, job.counts.messages_total, job.skipped)
                        let:job
                    >
                        <JobRow job page />
                    </For>
                </tbody>
            </table>
        </div>
    }
}

/// `page` is only tracked, so "5 min ago" moves on with every refresh.
#[component]
fn JobRow(job: JobView, page: RwSignal<Option<JobPage>>) -> impl IntoView {
    let navigate = use_navigate();
    let href = format!("/helpdesk/jobs/{}", job.id);
    let open = {
        let href = href.clone();
        move |_| navigate(&href, Default::default())
    };
    let c = job.counts;
    let value = format::fraction(c.messages_done, c.messages_total);
    let percent = format::percent(c.messages_done, c.messages_total);
    let target = (job.source_user != job.target_user).then(|| format!("→ {}", job.target_user));
    let label = format!("{}: {percent}% copied", job.source_user);
    view! {
        <tr data-testid="job-row" data-job-id=job.id.clone() data-user=job.source_user.clone() class="clickable" on:click=open>
            <td data-label="Status">
                <StatusChip status=job.status />
                {format::paused_until(&job).map(|line| view! { <div class="muted small" data-testid="paused-until">{line}</div> })}
            </td>
            <td data-label="User" class="user">
                <a href=href on:click=|ev| ev.stop_propagation()>{job.source_user.clone()}</a>
                {target.map(|t| view! { <span class="target muted small">{t}</span> })}
            </td>
            <td data-label="Route">{job.route.clone()}</td>
            <td data-label="Progress" class="progress-col">
                <div class="bar-with-text">
                    <ProgressBar value=Signal::stored(value) label=Signal::stored(label) tone=format::status_tone(job.status) small=true />
                    <span class="num small">{format!("{percent}%")}</span>
                </div>
            </td>
            <td data-label="Messages" class="num">{format!("{} / {}", c.messages_done, c.messages_total)}</td>
            <td data-label="Skipped" class="num">{job.skipped}</td>
            <td data-label="Last activity" title=format::date(job.updated_at)>
                {move || {
                    page.track();
                    format::ago(job.updated_at)
                }}
            </td>
        </tr>
    }
}

#[component]
fn Pager(
    filters: Memo<Filters>,
    go: Callback<(Filters, bool)>,
    page: RwSignal<Option<JobPage>>,
) -> impl IntoView {
    let pages = move || {
        page.with(|p| {
            p.as_ref()
                .map(|p| p.total.div_ceil(p.per_page.max(1)).max(1))
                .unwrap_or(1)
        })
    };
    let current = move || filters.get().page;
    let at_first = move || current() <= 1;
    let at_last = move || current() >= pages();
    let to = move |n: u64| {
        let mut next = filters.get_untracked();
        next.page = n;
        go.run((next, false));
    };
    let range = move || {
        page.with(|p| {
            p.as_ref().map(|p| {
                if p.total == 0 {
                    "No jobs".to_string()
                } else {
                    let first = p.page * p.per_page + 1;
                    let last = (first + p.jobs.len() as u64).saturating_sub(1);
                    format!("Showing {first}–{last} of {}", p.total)
                }
            })
        })
    };
    view! {
        <nav class="pager" aria-label="Pages">
            <span class="muted small" data-testid="pager-range">{range}</span>
            <div class="button-row">
                <button type="button" class="secondary first-last" disabled=at_first on:click=move |_| to(1)>
                    "First"
                </button>
                <button type="button" class="secondary" data-testid="page-prev" disabled=at_first
                    on:click=move |_| to(current().saturating_sub(1).max(1))>
                    "Previous"
                </button>
                <span class="page-no" aria-live="polite">{move || format!("Page {} of {}", current(), pages())}</span>
                <button type="button" class="secondary" data-testid="page-next" disabled=at_last
                    on:click=move |_| to(current() + 1)>
                    "Next"
                </button>
                <button type="button" class="secondary first-last" disabled=at_last on:click=move |_| to(pages())>
                    "Last"
                </button>
            </div>
        </nav>
    }
}
