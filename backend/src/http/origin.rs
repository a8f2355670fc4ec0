//! Refuses state-changing requests that did not come from the portal's own pages (CSRF,
//! DNS rebinding). The portal's origin is fixed at start-up: `public_url`'s, or on a
//! loopback listener `http://127.0.0.1:PORT`, `http://localhost:PORT` and
//! `http://[::1]:PORT`. The request's own `Host` header is never trusted: a rebound
//! name reaches this server with the attacker's host name in both `Host` and `Origin`.
//!
//! Evidence, strongest first: `Origin` (browsers send it on every POST/DELETE), then
//! `Sec-Fetch-Site: same-origin`, then the `Referer`'s origin. A state-changing request
//! with none of them is refused.

use super::error::ApiFailure;
use super::AppState;
use axum::extract::{Request, State};
use axum::http::{header, Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

/// The origins whose pages may change state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedOrigins(Vec<String>);

#[derive(Debug, thiserror::Error)]
#[error(
    "the portal listens on {0}, which is not a loopback address, and no public_url is set: \
     set public_url to the address users open (e.g. public_url = \"https://migrate.example.org\" \
     in the config file, or MAILFERRY_PUBLIC_URL), so that requests from other web sites \
     can be told apart and refused"
)]
pub struct NeedPublicUrl(SocketAddr);

impl AllowedOrigins {
    /// `public_origin` when set; else the loopback names of `listen`'s port, and only
    /// when `listen` is a loopback address.
    pub fn new(public_origin: Option<&str>, listen: SocketAddr) -> Result<Self, NeedPublicUrl> {
        if let Some(origin) = public_origin {
            return Ok(AllowedOrigins(vec![origin.to_owned()]));
        }
        if !listen.ip().is_loopback() {
            return Err(NeedPublicUrl(listen));
        }
        let port = listen.port();
        Ok(AllowedOrigins(
            ["127.0.0.1", "localhost", "[::1]"]
                .iter()
                .map(|host| format!("http://{host}:{port}"))
                .collect(),
        ))
    }

    pub fn all(&self) -> &[String] {
        &self.0
    }

    fn allows(&self, origin: &str) -> bool {
        origin_of_url(origin).is_ok_and(|origin| self.0.contains(&origin))
    }
}

/// `scheme://host[:port]` of an `http`/`https` URL: lower case, the scheme's default port
/// left out, path dropped. The same form is used for `public_url`, `Origin` and `Referer`.
pub fn origin_of_url(url: &str) -> Result<String, String> {
    let uri: Uri = url
        .parse()
        .map_err(|_| "write it as https://HOST[:PORT]".to_owned())?;
    let scheme = uri
        .scheme_str()
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| "it needs a scheme: write it as https://HOST[:PORT]".to_owned())?;
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return Err("the scheme must be https:// (or http://)".to_owned()),
    };
    let authority = uri
        .authority()
        .ok_or_else(|| "it needs a host: write it as https://HOST[:PORT]".to_owned())?;
    if authority.as_str().contains('@') {
        return Err("it must not hold a user name or password".to_owned());
    }
    let host = authority.host().to_ascii_lowercase();
    if host.is_empty() {
        return Err("it needs a host: write it as https://HOST[:PORT]".to_owned());
    }
    Ok(match authority.port_u16() {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

fn header_text<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Why a request may or may not change state.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Ours,
    Foreign,
    Unknown,
}

fn judge(request: &Request, allowed: &AllowedOrigins) -> Verdict {
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        return match origin.to_str() {
            Ok(origin) if allowed.allows(origin) => Verdict::Ours,
            _ => Verdict::Foreign,
        };
    }
    if let Some(site) = header_text(request, "sec-fetch-site") {
        return if site.eq_ignore_ascii_case("same-origin") {
            Verdict::Ours
        } else {
            Verdict::Foreign
        };
    }
    if let Some(referer) = request.headers().get(header::REFERER) {
        return match referer.to_str() {
            Ok(referer) if allowed.allows(referer) => Verdict::Ours,
            _ => Verdict::Foreign,
        };
    }
    Verdict::Unknown
}

pub async fn same_origin_only(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    // Violation reports change nothing (they are only logged) and come without Origin.
    let report = request.uri().path() == "/csp-report";
    if !safe && !report {
        match judge(&request, &state.edge.origins) {
            Verdict::Ours => {}
            Verdict::Foreign => {
                tracing::warn!(
                    origin = header_text(&request, "origin").unwrap_or("-"),
                    fetch_site = header_text(&request, "sec-fetch-site").unwrap_or("-"),
                    path = request.uri().path(),
                    "refused a state-changing request from a foreign origin"
                );
                return ApiFailure::Forbidden(
                    "This request came from another web site and was refused. Open the \
                     portal at its own address and try again."
                        .into(),
                )
                .into_response();
            }
            Verdict::Unknown => {
                tracing::warn!(
                    path = request.uri().path(),
                    "refused a state-changing request without Origin, Sec-Fetch-Site or Referer"
                );
                return ApiFailure::Forbidden(
                    "This request did not say which page sent it (no Origin or Referer \
                     header), so it was refused. Use the portal's pages, or send an Origin \
                     header naming the portal's address."
                        .into(),
                )
                .into_response();
            }
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request {
        let mut builder = Request::builder().method(Method::POST).uri("/api/session");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(axum::body::Body::empty()).unwrap()
    }

    fn loopback() -> AllowedOrigins {
        AllowedOrigins::new(None, "127.0.0.1:8080".parse().unwrap()).unwrap()
    }

    #[test]
    fn origins_are_normalised() {
        assert_eq!(
            origin_of_url("HTTPS://Example.ORG:443/x?y").unwrap(),
            "https://example.org"
        );
        assert_eq!(
            origin_of_url("http://[::1]:8080").unwrap(),
            "http://[::1]:8080"
        );
        assert!(origin_of_url("null").is_err());
        assert!(origin_of_url("ftp://example.org").is_err());
        assert!(origin_of_url("https://u:p@example.org").is_err());
    }

    #[test]
    fn loopback_names_only_and_non_loopback_needs_public_url() {
        let allowed = loopback();
        assert_eq!(
            allowed.all(),
            [
                "http://127.0.0.1:8080",
                "http://localhost:8080",
                "http://[::1]:8080"
            ]
        );
        let err = AllowedOrigins::new(None, "0.0.0.0:8080".parse().unwrap()).unwrap_err();
        assert!(err.to_string().contains("public_url"), "{err}");
        let public = AllowedOrigins::new(
            Some("https://migrate.example.org"),
            "0.0.0.0:8080".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(public.all(), ["https://migrate.example.org"]);
    }

    #[test]
    fn evidence_is_weighed_in_order() {
        let allowed = loopback();
        let verdict = |headers: &[(&str, &str)]| judge(&request(headers), &allowed);
        assert_eq!(
            verdict(&[("origin", "http://localhost:8080")]),
            Verdict::Ours
        );
        assert_eq!(
            verdict(&[("origin", "http://evil.example")]),
            Verdict::Foreign
        );
        // A rebound name: Host and Origin agree, and both are the attacker's.
        assert_eq!(
            verdict(&[
                ("origin", "http://evil.example:8080"),
                ("host", "evil.example:8080")
            ]),
            Verdict::Foreign
        );
        assert_eq!(verdict(&[("origin", "null")]), Verdict::Foreign);
        assert_eq!(verdict(&[("sec-fetch-site", "same-origin")]), Verdict::Ours);
        assert_eq!(
            verdict(&[("sec-fetch-site", "cross-site")]),
            Verdict::Foreign
        );
        assert_eq!(
            verdict(&[("sec-fetch-site", "same-site")]),
            Verdict::Foreign
        );
        assert_eq!(
            verdict(&[("referer", "http://127.0.0.1:8080/staff")]),
            Verdict::Ours
        );
        assert_eq!(
            verdict(&[("referer", "https://evil.example/page")]),
            Verdict::Foreign
        );
        assert_eq!(verdict(&[]), Verdict::Unknown);
    }
}
