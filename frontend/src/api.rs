//! Calls to the backend's JSON API. Types come from `mailferry-shared`, never re-declared.

use gloo_net::http::{Request, Response};
use mailferry_shared::{
    ApiError, BatchView, CheckRequest, CheckResult, FirstAdmin, Health, ImportPreview,
    ImportRequest, ImportResult, JobDetail, JobPage, JobView, Me, OAuthStatus, PasswordUpdate,
    ProgressPoint, RouteInfo, SetupStatus, SignInRequest, SignInResult, SkippedMessageView,
    StaffAccount, StaffSignIn,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A failed API call: the HTTP status (0 when the server could not be reached) and a
/// message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: u16,
    pub message: String,
}

impl Failure {
    /// The session is gone (signed out, expired or never signed in).
    pub fn is_unauthorized(&self) -> bool {
        self.status == 401
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

pub type ApiResult<T> = Result<T, Failure>;

fn unreachable(err: gloo_net::Error) -> Failure {
    Failure {
        status: 0,
        message: format!(
            "The server could not be reached. Check your connection and try again. ({err})"
        ),
    }
}

/// Reads a JSON answer, or the API's error message when the status is not a success.
async fn answer<T: DeserializeOwned>(response: Response) -> ApiResult<T> {
    let status = response.status();
    if response.ok() {
        return response.json::<T>().await.map_err(|err| Failure {
            status,
            message: format!("The server sent an answer this page does not understand ({err})."),
        });
    }
    let message = match response.json::<ApiError>().await {
        Ok(api_error) => api_error.message,
        Err(_) => format!("The server answered with an error (HTTP {status}). Please try again."),
    };
    Err(Failure { status, message })
}

async fn get<T: DeserializeOwned>(url: &str) -> ApiResult<T> {
    let response = Request::get(url).send().await.map_err(unreachable)?;
    answer(response).await
}

async fn post<B: Serialize, T: DeserializeOwned>(url: &str, body: &B) -> ApiResult<T> {
    let response = Request::post(url)
        .json(body)
        .map_err(unreachable)?
        .send()
        .await
        .map_err(unreachable)?;
    answer(response).await
}

async fn post_empty<T: DeserializeOwned>(url: &str) -> ApiResult<T> {
    let response = Request::post(url).send().await.map_err(unreachable)?;
    answer(response).await
}

/// Percent-encodes one query-string value.
pub fn encode(value: &str) -> String {
    js_sys::encode_uri_component(value).into()
}

pub async fn health() -> ApiResult<Health> {
    let response = Request::get("/api/health")
        .send()
        .await
        .map_err(unreachable)?;
    if response.status() == 503 {
        // A degraded server still says why, in a `Health`.
        return response.json::<Health>().await.map_err(unreachable);
    }
    answer(response).await
}

pub async fn me() -> ApiResult<Me> {
    get("/api/me").await
}

pub async fn routes() -> ApiResult<Vec<RouteInfo>> {
    get("/api/routes").await
}

pub async fn check(request: CheckRequest) -> ApiResult<CheckResult> {
    post("/api/check", &request).await
}

pub async fn sign_in(request: SignInRequest) -> ApiResult<SignInResult> {
    post("/api/session", &request).await
}

/// Where "Sign in with …" sends the browser (a full navigation to the provider).
pub fn oauth_start_url(route: &str, side: mailferry_shared::AccountSide, renew: bool) -> String {
    let side = match side {
        mailferry_shared::AccountSide::Source => "source",
        mailferry_shared::AccountSide::Target => "target",
    };
    let mut url = format!("/api/oauth/start?route={}&side={side}", encode(route));
    if renew {
        url.push_str("&renew=true");
    }
    url
}

pub async fn oauth_status() -> ApiResult<OAuthStatus> {
    get("/api/oauth/status").await
}

/// "Use another account": forgets one side's provider sign-in.
pub async fn oauth_forget(
    route: &str,
    side: mailferry_shared::AccountSide,
) -> ApiResult<OAuthStatus> {
    let side = match side {
        mailferry_shared::AccountSide::Source => "source",
        mailferry_shared::AccountSide::Target => "target",
    };
    let url = format!("/api/oauth/proof?route={}&side={side}", encode(route));
    let response = Request::delete(&url).send().await.map_err(unreachable)?;
    answer(response).await
}

pub async fn sign_out() -> ApiResult<()> {
    let response = Request::delete("/api/session")
        .send()
        .await
        .map_err(unreachable)?;
    if response.ok() {
        Ok(())
    } else {
        answer::<()>(response).await
    }
}

pub async fn staff_sign_in(request: StaffSignIn) -> ApiResult<Me> {
    post("/api/staff/session", &request).await
}

pub async fn setup_status() -> ApiResult<SetupStatus> {
    get("/api/setup").await
}

pub async fn create_first_admin(request: FirstAdmin) -> ApiResult<Me> {
    post("/api/setup", &request).await
}

pub async fn my_job() -> ApiResult<JobView> {
    get("/api/my/job").await
}

pub async fn my_history() -> ApiResult<Vec<ProgressPoint>> {
    get("/api/my/job/history").await
}

pub async fn job_history(id: &str) -> ApiResult<Vec<ProgressPoint>> {
    get(&format!("{}/history", job_url(id))).await
}

pub async fn my_skipped() -> ApiResult<Vec<SkippedMessageView>> {
    get("/api/my/job/skipped").await
}

pub async fn my_start() -> ApiResult<JobView> {
    post_empty("/api/my/job/start").await
}

pub async fn my_sync() -> ApiResult<JobView> {
    post_empty("/api/my/job/sync").await
}

pub async fn my_cancel() -> ApiResult<JobView> {
    post_empty("/api/my/job/cancel").await
}

pub async fn my_password(update: PasswordUpdate) -> ApiResult<CheckResult> {
    post("/api/my/job/password", &update).await
}

pub async fn helpdesk_jobs(query: &str) -> ApiResult<JobPage> {
    get(&format!("/api/helpdesk/jobs?{query}")).await
}

pub fn job_url(id: &str) -> String {
    format!("/api/helpdesk/jobs/{}", encode(id))
}

pub async fn job_detail(id: &str) -> ApiResult<JobDetail> {
    get(&job_url(id)).await
}

/// A helpdesk action on one job: `retry-skipped`, `cancel` or `sync`.
pub async fn job_action(id: &str, action: &str) -> ApiResult<JobView> {
    post_empty(&format!("{}/{action}", job_url(id))).await
}

pub async fn import_preview(csv: String) -> ApiResult<ImportPreview> {
    let request = ImportRequest {
        csv,
        import_valid_rows: false,
    };
    post("/api/admin/import/preview", &request).await
}

pub async fn import(csv: String, import_valid_rows: bool) -> ApiResult<ImportResult> {
    let request = ImportRequest {
        csv,
        import_valid_rows,
    };
    post("/api/admin/import", &request).await
}

pub async fn batch(id: &str) -> ApiResult<BatchView> {
    get(&format!("/api/admin/batches/{}", encode(id))).await
}

pub async fn admin_routes() -> ApiResult<Vec<RouteInfo>> {
    get("/api/admin/routes").await
}

pub async fn admin_staff() -> ApiResult<Vec<StaffAccount>> {
    get("/api/admin/staff").await
}
