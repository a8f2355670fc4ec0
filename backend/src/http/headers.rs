//! Security headers on every response: a Content-Security-Policy that lets the
//! WebAssembly app run and nothing else, no MIME sniffing, no referrer, no framing, and
//! HSTS when the portal is served over HTTPS (`secure_cookies`).
//!
//! The app's only inline code is the loader script Trunk writes into `index.html`; its
//! SHA-256 is computed at start-up from the file actually served, so a rebuilt app needs
//! no code change (but a restart).

use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;

/// The headers added to every response (unless the handler set one itself).
#[derive(Debug, Clone)]
pub struct SecurityHeaders {
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl SecurityHeaders {
    /// Headers for the app in `static_dir`; `https` adds Strict-Transport-Security.
    pub fn new(static_dir: &Path, https: bool) -> SecurityHeaders {
        let index = std::fs::read_to_string(static_dir.join("index.html")).unwrap_or_default();
        let policy = content_security_policy(&index);
        let mut headers = vec![
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (
                HeaderName::from_static("cross-origin-opener-policy"),
                HeaderValue::from_static("same-origin"),
            ),
        ];
        match HeaderValue::from_str(&policy) {
            Ok(value) => headers.push((header::CONTENT_SECURITY_POLICY, value)),
            // Hashes and keywords are ASCII: this cannot happen, but never serve without a policy.
            Err(_) => headers.push((
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'"),
            )),
        }
        if https {
            headers.push((
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=31536000"),
            ));
        }
        SecurityHeaders { headers }
    }
}

/// The policy for a page whose inline scripts and styles are those of `index_html`.
pub fn content_security_policy(index_html: &str) -> String {
    let hashes = |tag: &str| -> String {
        inline_blocks(index_html, tag)
            .iter()
            .map(|body| format!(" 'sha256-{}'", sha256_base64(body)))
            .collect()
    };
    // style-src covers only elements and stylesheets: the app sets widths through the
    // CSSOM (`style:width`), which a policy does not restrict, and writes no `style`
    // attributes, so no 'unsafe-inline' anywhere.
    format!(
        "default-src 'none'; \
         script-src 'self' 'wasm-unsafe-eval'{}; \
         style-src 'self'{}; \
         img-src 'self'; \
         font-src 'self'; \
         connect-src 'self'; \
         manifest-src 'self'; \
         frame-ancestors 'none'; \
         base-uri 'none'; \
         form-action 'self'; \
         report-uri {REPORT_PATH}",
        hashes("script"),
        hashes("style"),
    )
}

/// Where browsers report what the policy blocked (logged, so a violation in production
/// shows in the server log).
pub const REPORT_PATH: &str = "/api/csp-report";

/// Logs one violation report (at most a few hundred characters of each field). Reports
/// carry no cookies and change nothing, so this is the one POST without an origin check.
pub async fn csp_report(body: axum::body::Bytes) -> axum::http::StatusCode {
    let report: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let report = report.get("csp-report").unwrap_or(&report);
    let field = |name: &str| -> String {
        report
            .get(name)
            .and_then(|v| v.as_str())
            .unwrap_or("-")
            .chars()
            .take(300)
            .collect()
    };
    tracing::warn!(
        directive = %field("effective-directive"),
        blocked = %field("blocked-uri"),
        page = %field("document-uri"),
        sample = %field("script-sample"),
        "Content-Security-Policy violation reported by a browser"
    );
    axum::http::StatusCode::NO_CONTENT
}

fn sha256_base64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
}

/// The text of every `<TAG ...>...</TAG>` without a `src` attribute (inline code), as
/// the browser hashes it: exactly the characters between the tags.
fn inline_blocks<'a>(html: &'a str, tag: &str) -> Vec<&'a str> {
    let lower = html.to_ascii_lowercase();
    let open = format!("<{tag}");
    let close = format!("</{tag}");
    let mut blocks = Vec::new();
    let mut from = 0;
    while let Some(found) = lower[from..].find(&open) {
        let start = from + found;
        let after_name = start + open.len();
        // `<scripts>` or `<style-x>` are other elements.
        if !lower[after_name..].starts_with(|c: char| c == '>' || c.is_ascii_whitespace()) {
            from = after_name;
            continue;
        }
        let Some(tag_end) = lower[after_name..].find('>').map(|i| after_name + i) else {
            break;
        };
        let attributes = &lower[after_name..tag_end];
        let body_start = tag_end + 1;
        let Some(body_end) = lower[body_start..].find(&close).map(|i| body_start + i) else {
            break;
        };
        if !has_src(attributes) {
            blocks.push(&html[body_start..body_end]);
        }
        from = body_end + close.len();
    }
    blocks
}

fn has_src(attributes: &str) -> bool {
    attributes
        .split(|c: char| c.is_ascii_whitespace())
        .any(|a| a == "src" || a.starts_with("src="))
}

pub async fn add(
    State(security): State<Arc<SecurityHeaders>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in &security.headers {
        if !headers.contains_key(name) {
            headers.insert(name.clone(), value.clone());
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_loader_is_hashed_and_linked_scripts_are_not() {
        let html =
            "<html><head><script type=\"module\">import init from '/app.js';\ninit();</script>\
                    <script src=\"/other.js\"></script><SCRIPT>x()</SCRIPT>\
                    <link rel=\"modulepreload\" href=\"/app.js\"></head></html>";
        assert_eq!(
            inline_blocks(html, "script"),
            ["import init from '/app.js';\ninit();", "x()"]
        );
        let policy = content_security_policy(html);
        // printf 'x()' | openssl dgst -sha256 -binary | base64
        assert!(
            policy.contains("'sha256-D6IGS8VMvCoyaR/l0h9tERrBTATY01CoPS7l6xDv0kI='"),
            "{policy}"
        );
        assert_eq!(policy.matches("'sha256-").count(), 2, "{policy}");
        for part in [
            "default-src 'none'",
            "script-src 'self' 'wasm-unsafe-eval' 'sha256-",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
        ] {
            assert!(policy.contains(part), "{part} missing: {policy}");
        }
        assert!(!policy.contains("unsafe-inline"), "{policy}");
    }
}
