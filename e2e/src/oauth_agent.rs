//! A browser-less user agent for the portal's "Sign in with …" flow: keeps cookies
//! (portal and provider alike), follows redirects and the portal's hand-over page, and
//! fills in the kit provider's own login and consent forms. For API-level tests; the
//! browser tests click through the same pages in Chromium.

use anyhow::{anyhow, bail, Context, Result};

pub struct Agent {
    pub http: reqwest::Client,
}

/// Where a walk through the flow ended: the portal page (or error page) it landed on.
#[derive(Debug)]
pub struct Landing {
    pub status: u16,
    pub url: String,
    pub body: String,
}

impl Default for Agent {
    fn default() -> Self {
        Agent::new()
    }
}

impl Agent {
    pub fn new() -> Agent {
        Agent {
            http: reqwest::Client::builder()
                .no_proxy()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
        }
    }

    /// GETs `url` and follows redirects (and the portal's meta-refresh hand-over) until
    /// a page that is neither.
    pub async fn follow(&self, url: &str) -> Result<Landing> {
        let mut url = reqwest::Url::parse(url)?;
        for _ in 0..20 {
            let response = self.http.get(url.clone()).send().await?;
            let status = response.status().as_u16();
            if let Some(location) = response.headers().get("location") {
                url = url.join(location.to_str()?)?;
                continue;
            }
            let body = response.text().await?;
            if let Some(next) = meta_refresh(&body) {
                url = url.join(&next)?;
                continue;
            }
            return Ok(Landing {
                status,
                url: url.to_string(),
                body,
            });
        }
        bail!("too many redirects from {url}")
    }

    async fn submit(
        &self,
        page: &Landing,
        button_id: &str,
        form: &[(&str, &str)],
    ) -> Result<Landing> {
        let action = form_action(&page.body, button_id)
            .with_context(|| format!("no form with #{button_id} on {}: {}", page.url, page.body))?;
        let target = reqwest::Url::parse(&page.url)?.join(&action)?;
        let response = self.http.post(target.clone()).form(form).send().await?;
        let status = response.status().as_u16();
        match response.headers().get("location") {
            Some(location) => self.follow(target.join(location.to_str()?)?.as_str()).await,
            None => Ok(Landing {
                status,
                url: target.to_string(),
                body: response.text().await?,
            }),
        }
    }

    /// Walks the whole flow from the portal's start URL: signs in at the provider as
    /// `login` (if it asks), then allows (or, with `allow = false`, denies) consent.
    /// Returns the portal page the flow came back to.
    pub async fn sign_in(
        &self,
        start_url: &str,
        login: &str,
        password: &str,
        allow: bool,
    ) -> Result<Landing> {
        let mut page = self.follow(start_url).await?;
        for _ in 0..4 {
            if page.body.contains("id=\"submit\"") && page.body.contains("name=\"password\"") {
                page = self
                    .submit(&page, "submit", &[("login", login), ("password", password)])
                    .await?;
            } else if page.body.contains("id=\"allow\"") {
                let button = if allow { "allow" } else { "deny" };
                page = self.submit(&page, button, &[]).await?;
            } else {
                return Ok(page);
            }
        }
        Err(anyhow!("the provider kept asking: {}", page.body))
    }
}

fn meta_refresh(body: &str) -> Option<String> {
    let at = body.find("http-equiv=\"refresh\"")?;
    let rest = &body[at..];
    let from = rest.find("url=")? + 4;
    let to = from + rest[from..].find('"')?;
    Some(rest[from..to].replace("&amp;", "&"))
}

fn form_action(html: &str, button_id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{button_id}\""))?;
    let start = html[..at].rfind("<form")?;
    let form = &html[start..at];
    let from = form.find("action=\"")? + 8;
    let to = from + form[from..].find('"')?;
    Some(form[from..to].replace("&amp;", "&"))
}
