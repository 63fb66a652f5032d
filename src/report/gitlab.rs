//! The merge request on GitLab: one sticky note per service and environment, found again by a
//! hidden marker and updated in place (PUT). CI_JOB_TOKEN cannot write notes, so the token comes
//! from a project access token variable (DEPLOYER_GITLAB_TOKEN, or the one named by
//! DEPLOYER_GITLAB_TOKEN_VARIABLE). Every failure here is a warning, never the run's outcome.
//!
//! GitLab is called with a plain HTTP client (hyper-util's, over hyper-rustls with aws-lc-rs: the
//! stack the AWS SDK already builds): the token in `PRIVATE-TOKEN`, JSON bodies, CONNECT_TIMEOUT
//! and READ_TIMEOUT, every page of the notes read, and redirects never followed, so the token
//! is only ever sent to CI_API_V4_URL's origin.

use crate::report::Report;
use crate::report::ci::env;
use crate::report::ci::{CONNECT_TIMEOUT, READ_TIMEOUT};
use crate::report::output::Output;
use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use std::time::Duration;

/// Notes asked for per page (GitLab's maximum), and the pages read before giving up.
const PER_PAGE: u32 = 100;
const MAX_PAGES: u32 = 50;
/// Retries of a call that failed on the way (no answer, 5xx, 429); a POST only when it never left.
const RETRIES: u32 = 3;

pub(crate) async fn publish(report: &Report, environment: &str, out: &Output) {
    let Some(iid) = env("CI_MERGE_REQUEST_IID") else {
        out.info("not a merge-request pipeline (no CI_MERGE_REQUEST_IID): no MR note");
        return;
    };
    let variable =
        env("DEPLOYER_GITLAB_TOKEN_VARIABLE").unwrap_or_else(|| "DEPLOYER_GITLAB_TOKEN".into());
    let Some(token) = env(&variable) else {
        out.warn(&format!(
            "no GitLab token in {variable}: no MR note (CI_JOB_TOKEN cannot write notes; add a project access token with api scope as a masked variable)"
        ));
        return;
    };
    let (Some(api), Some(project)) = (env("CI_API_V4_URL"), env("CI_PROJECT_ID")) else {
        out.warn("CI_API_V4_URL or CI_PROJECT_ID is missing: no MR note");
        return;
    };
    let run_url = env("CI_JOB_URL");
    let note = Note {
        project: &project,
        iid: &iid,
        marker: &report.marker(environment),
        body: &report.markdown(environment, run_url.as_deref()),
    };
    let written = match Api::new(&api, &token) {
        Ok(api) => note.stick(&api).await,
        Err(err) => Err(err),
    };
    if let Err(err) = written {
        // The token travels in a header only; this is a second lock on the door.
        let text = format!("{err:#}").replace(token.as_str(), "[token]");
        out.warn(&format!(
            "could not write the note on merge request !{iid}: {text}"
        ));
    }
}

/// The sticky note of one service and environment on one merge request.
struct Note<'a> {
    project: &'a str,
    iid: &'a str,
    marker: &'a str,
    body: &'a str,
}

impl Note<'_> {
    /// Finds the note by its marker on any page, then leaves it as it is, updates it, or adds it.
    async fn stick(&self, api: &Api) -> Result<()> {
        let (project, iid) = (self.project, self.iid);
        let notes = format!("projects/{project}/merge_requests/{iid}/notes");
        let payload = json!({ "body": self.body });
        match self.find(api, &notes).await? {
            Some((_, body)) if body == self.body => Ok(()),
            Some((id, _)) => {
                api.send(
                    Method::PUT,
                    &api.url(&format!("{notes}/{id}")),
                    Some(&payload),
                )
                .await
                .with_context(|| {
                    format!(
                        "failed to update note {id} of merge request !{iid} in project {project}"
                    )
                })?;
                Ok(())
            }
            None => {
                api.send(Method::POST, &api.url(&notes), Some(&payload))
                    .await
                    .with_context(|| {
                        format!("failed to add a note to merge request !{iid} in project {project}")
                    })?;
                Ok(())
            }
        }
    }

    /// The id and body of the newest note carrying the marker, reading page after page (most
    /// recently updated first) until it is found or the pages end.
    async fn find(&self, api: &Api, notes: &str) -> Result<Option<(u64, String)>> {
        let (project, iid) = (self.project, self.iid);
        let mut url = api.url(&format!(
            "{notes}?per_page={PER_PAGE}&sort=desc&order_by=updated_at"
        ));
        for page in 1..=MAX_PAGES {
            let (list, headers) = api.send(Method::GET, &url, None).await.with_context(|| {
                format!("failed to list the notes of merge request !{iid} in project {project} (page {page})")
            })?;
            if let Some(found) = marked(&list, self.marker) {
                return Ok(Some(found));
            }
            match next_page(&headers, &url, &api.base)? {
                Some(next) => url = next,
                None => return Ok(None),
            }
        }
        bail!(
            "merge request !{iid} in project {project} has more than {} notes and none of the newest carries this service's marker: not adding a second note",
            MAX_PAGES * PER_PAGE
        )
    }
}

/// The first note of a page (not a system note) whose body carries the marker.
fn marked(list: &Value, marker: &str) -> Option<(u64, String)> {
    let note = list
        .as_array()?
        .iter()
        .find(|n| n["system"] != true && n["body"].as_str().is_some_and(|b| b.contains(marker)))?;
    Some((note["id"].as_u64()?, note["body"].as_str()?.to_string()))
}

/// The next page's URL: from `x-next-page` (empty on the last page) on the URL just read, or
/// else from the `Link` header's `rel="next"`, which must stay on the API's origin (the token
/// goes with it).
fn next_page(headers: &HeaderMap, url: &Uri, base: &Uri) -> Result<Option<Uri>> {
    if let Some(next) = headers.get("x-next-page") {
        let next = next.to_str().unwrap_or("").trim();
        if next.is_empty() {
            return Ok(None);
        }
        let page: u32 = next
            .parse()
            .map_err(|_| anyhow!("GitLab sent x-next-page `{next}`, not a page number"))?;
        let query = url
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("page="))
            .chain([format!("page={page}").as_str()])
            .collect::<Vec<_>>()
            .join("&");
        let next = format!("{}{}?{query}", origin(url), url.path());
        return Ok(Some(next.parse().context("the next page's URL")?));
    }
    let links = headers
        .get_all(header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok());
    for link in links.flat_map(|v| v.split(',')) {
        let Some((target, params)) = link.trim().split_once(';') else {
            continue;
        };
        if !params.split(';').any(|p| p.trim() == "rel=\"next\"") {
            continue;
        }
        let target = target.trim().trim_start_matches('<').trim_end_matches('>');
        let next: Uri = target
            .parse()
            .map_err(|_| anyhow!("GitLab's Link header names `{target}`, not a URL"))?;
        if next.scheme() != base.scheme() || next.authority() != base.authority() {
            bail!(
                "GitLab's next page is on another origin ({}://{}); not sending the token there",
                next.scheme_str().unwrap_or("?"),
                next.authority().map_or("?", |a| a.as_str())
            );
        }
        return Ok(Some(next));
    }
    Ok(None)
}

/// GitLab's REST API at CI_API_V4_URL, called with the project access token.
struct Api {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: Uri,
    token: HeaderValue,
}

impl Api {
    fn new(api: &str, token: &str) -> Result<Api> {
        let base: Uri = api
            .trim_end_matches('/')
            .parse()
            .with_context(|| format!("CI_API_V4_URL `{api}` is not a URL"))?;
        if base.scheme().is_none() || base.authority().is_none() {
            bail!("CI_API_V4_URL `{api}` is not an http(s) URL");
        }
        let mut token = HeaderValue::from_str(token)
            .map_err(|_| anyhow!("the GitLab token holds characters a header cannot carry"))?;
        token.set_sensitive(true);
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let https = HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
            .context("failed to load the system's root certificates")?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(Api {
            client,
            base,
            token,
        })
    }

    /// `path` (relative to CI_API_V4_URL, with its query) as a URL.
    fn url(&self, path: &str) -> Uri {
        format!("{}/{path}", self.base)
            .parse()
            .expect("CI_API_V4_URL parsed, and the path is ours")
    }

    /// One call, retried as RETRIES says; a 2xx answer's JSON and headers, or an error that says
    /// what GitLab answered.
    async fn send(
        &self,
        method: Method,
        url: &Uri,
        body: Option<&Value>,
    ) -> Result<(Value, HeaderMap)> {
        let body = Bytes::from(body.map(Value::to_string).unwrap_or_default());
        let mut attempt = 0;
        loop {
            let failure = match self.once(&method, url, &body).await {
                Ok((status, headers, bytes)) if status.is_success() => {
                    let value = if bytes.is_empty() {
                        Value::Null
                    } else {
                        serde_json::from_slice(&bytes).with_context(|| {
                            format!("GitLab answered HTTP {status} with a body that is not JSON")
                        })?
                    };
                    return Ok((value, headers));
                }
                Ok((status, headers, bytes)) => {
                    let retry = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
                    let error = refusal(status, &headers, &bytes);
                    (error, retry && method != Method::POST)
                }
                Err(Attempt::NotSent(err)) => (err, true),
                Err(Attempt::Lost(err)) => (err, method != Method::POST),
                Err(Attempt::TimedOut(err)) => (err, false),
            };
            let (error, retry) = failure;
            if !retry || attempt == RETRIES {
                return Err(error);
            }
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
        }
    }

    /// One request, its status, headers and whole body; a body that stops arriving for
    /// READ_TIMEOUT ends it, as does an answer that does not start within both timeouts.
    async fn once(
        &self,
        method: &Method,
        url: &Uri,
        body: &Bytes,
    ) -> Result<(StatusCode, HeaderMap, Bytes), Attempt> {
        let request = Request::builder()
            .method(method.clone())
            .uri(url.clone())
            .header("PRIVATE-TOKEN", self.token.clone())
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                header::USER_AGENT,
                concat!("deployer/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(body.clone()))
            .map_err(|e| Attempt::NotSent(anyhow!(e).context("failed to build the request")))?;
        let wait = CONNECT_TIMEOUT + READ_TIMEOUT;
        let response = match tokio::time::timeout(wait, self.client.request(request)).await {
            Err(_) => {
                return Err(Attempt::TimedOut(anyhow!(
                    "no answer from {} within {} s",
                    origin(url),
                    wait.as_secs()
                )));
            }
            Ok(Err(err)) if err.is_connect() => {
                let err = anyhow!(err).context(format!("could not connect to {}", origin(url)));
                return Err(Attempt::NotSent(err));
            }
            Ok(Err(err)) => {
                let err = anyhow!(err).context(format!("the call to {} failed", origin(url)));
                return Err(Attempt::Lost(err));
            }
            Ok(Ok(response)) => response,
        };
        let (parts, mut incoming) = response.into_parts();
        let mut bytes = Vec::new();
        loop {
            let frame = tokio::time::timeout(READ_TIMEOUT, incoming.frame()).await;
            match frame {
                Err(_) => {
                    return Err(Attempt::TimedOut(anyhow!(
                        "HTTP {}: the rest of the answer did not come within {} s",
                        parts.status,
                        READ_TIMEOUT.as_secs()
                    )));
                }
                Ok(None) => break,
                Ok(Some(Err(err))) => {
                    let err = anyhow!(err)
                        .context(format!("HTTP {}: the answer broke off", parts.status));
                    return Err(Attempt::Lost(err));
                }
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        bytes.extend_from_slice(&data);
                    }
                }
            }
        }
        Ok((parts.status, parts.headers, Bytes::from(bytes)))
    }
}

/// How a single request failed, which says whether it may be sent again.
enum Attempt {
    /// The connection never opened: nothing reached GitLab.
    NotSent(anyhow::Error),
    /// Sent, then the answer was lost: GitLab may have acted on it.
    Lost(anyhow::Error),
    /// No answer in time: not retried, the report's budget is short.
    TimedOut(anyhow::Error),
}

/// A non-2xx answer in words: the status and GitLab's `message` (or `error`); a redirect says
/// where to, and that it was not followed.
fn refusal(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> anyhow::Error {
    if status.is_redirection() {
        let to = headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map_or("", |l| l.split('?').next().unwrap_or(""));
        return anyhow!(
            "HTTP {status}: GitLab redirects to `{to}`; not followed, so the token is not sent on (set CI_API_V4_URL to the API's own address)"
        );
    }
    let said = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        let message = v.get("message").or_else(|| v.get("error"))?;
        Some(
            message
                .as_str()
                .map_or_else(|| message.to_string(), str::to_string),
        )
    });
    let said = said.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    let said: String = said.chars().take(300).collect();
    let hint = match status {
        StatusCode::UNAUTHORIZED => " (the token is wrong or expired)",
        StatusCode::FORBIDDEN => " (the token needs the api scope and access to the project)",
        StatusCode::NOT_FOUND => " (no such project or merge request, or the token cannot see it)",
        _ => "",
    };
    if said.is_empty() {
        anyhow!("HTTP {status}{hint}")
    } else {
        anyhow!("HTTP {status}{hint}: {said}")
    }
}

/// `scheme://host[:port]` of a URL: where a call went, without its path or query.
fn origin(url: &Uri) -> String {
    format!(
        "{}://{}",
        url.scheme_str().unwrap_or("http"),
        url.authority().map_or("", |a| a.as_str())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn next_page_from_x_next_page_link_or_none() {
        let base: Uri = "https://gitlab.example/api/v4".parse().unwrap();
        let url: Uri = "https://gitlab.example/api/v4/projects/42/merge_requests/3/notes?per_page=100&sort=desc&page=1"
            .parse()
            .unwrap();
        let next = |h: &[(&'static str, &str)]| next_page(&headers(h), &url, &base);
        assert_eq!(
            next(&[("x-next-page", "2")]).unwrap().unwrap().to_string(),
            "https://gitlab.example/api/v4/projects/42/merge_requests/3/notes?per_page=100&sort=desc&page=2"
        );
        assert!(next(&[("x-next-page", "")]).unwrap().is_none());
        assert!(next(&[]).unwrap().is_none());
        let link = r#"<https://gitlab.example/api/v4/n?page=3>; rel="next", <https://gitlab.example/api/v4/n?page=9>; rel="last""#;
        assert_eq!(
            next(&[("link", link)]).unwrap().unwrap().to_string(),
            "https://gitlab.example/api/v4/n?page=3"
        );
        let last_only = r#"<https://gitlab.example/api/v4/n?page=1>; rel="first""#;
        assert!(next(&[("link", last_only)]).unwrap().is_none());
        let elsewhere = r#"<https://evil.example/api/v4/n?page=3>; rel="next""#;
        let err = next(&[("link", elsewhere)]).unwrap_err().to_string();
        assert!(
            err.contains("another origin (https://evil.example)"),
            "{err}"
        );
        assert!(next(&[("x-next-page", "two")]).is_err());
    }

    #[test]
    fn the_marked_note_is_found_and_system_notes_are_not() {
        let marker = "<!-- deployer:v1 service=web env=staging -->";
        let list = json!([
            {"id": 1, "system": true, "body": format!("changed {marker}")},
            {"id": 2, "system": false, "body": "a review comment"},
            {"id": 3, "system": false, "body": format!("{marker}\nold")},
            {"id": 4, "system": false, "body": format!("{marker}\nolder")},
        ]);
        assert_eq!(marked(&list, marker), Some((3, format!("{marker}\nold"))));
        assert_eq!(marked(&json!([]), marker), None);
        assert_eq!(marked(&json!({"message": "x"}), marker), None);
    }

    #[test]
    fn refusals_say_the_status_gitlab_message_and_redirects_are_not_followed() {
        let none = HeaderMap::new();
        let text = refusal(
            StatusCode::FORBIDDEN,
            &none,
            br#"{"message":"403 Forbidden"}"#,
        )
        .to_string();
        assert!(
            text.starts_with("HTTP 403 Forbidden (the token needs the api scope"),
            "{text}"
        );
        assert!(text.ends_with(": 403 Forbidden"), "{text}");
        let text = refusal(
            StatusCode::BAD_REQUEST,
            &none,
            br#"{"message":{"body":["is too long"]}}"#,
        )
        .to_string();
        assert!(text.contains(r#"{"body":["is too long"]}"#), "{text}");
        assert_eq!(
            refusal(StatusCode::BAD_GATEWAY, &none, b"").to_string(),
            "HTTP 502 Bad Gateway"
        );
        let moved = headers(&[(
            "location",
            "https://other.example/api/v4/x?private_token=no",
        )]);
        let text = refusal(StatusCode::FOUND, &moved, b"").to_string();
        assert!(
            text.contains("redirects to `https://other.example/api/v4/x`; not followed"),
            "{text}"
        );
        assert!(!text.contains("private_token"), "{text}");
    }

    /// One canned answer per connection on 127.0.0.1; the thread returns the requests' heads.
    fn serve(answers: &[&'static str]) -> (String, std::thread::JoinHandle<Vec<String>>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/api/v4", listener.local_addr().unwrap());
        let answers = answers.to_vec();
        let thread = std::thread::spawn(move || {
            let mut heads = Vec::new();
            for answer in answers {
                let (mut stream, _) = listener.accept().unwrap();
                let (mut head, mut byte) = (Vec::new(), [0u8]);
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
                    head.push(byte[0]);
                }
                heads.push(String::from_utf8_lossy(&head).to_string());
                stream.write_all(answer.as_bytes()).unwrap();
            }
            heads
        });
        (url, thread)
    }

    #[test]
    fn a_redirect_is_not_followed_and_the_error_says_what_was_attempted() {
        let (url, thread) = serve(&[
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/elsewhere?page=1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        ]);
        let note = Note {
            project: "42",
            iid: "12",
            marker: "<!-- m -->",
            body: "hello",
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let api = Api::new(&url, "glpat-secret").unwrap();
        let err = format!("{:#}", runtime.block_on(note.stick(&api)).unwrap_err());
        let heads = thread.join().unwrap();
        assert_eq!(
            heads.len(),
            1,
            "one request, no redirect followed: {heads:?}"
        );
        assert!(heads[0].starts_with("GET /api/v4/projects/42/merge_requests/12/notes?per_page=100&sort=desc&order_by=updated_at HTTP/1.1"), "{heads:?}");
        assert!(
            heads[0]
                .to_lowercase()
                .contains("private-token: glpat-secret"),
            "{heads:?}"
        );
        assert!(
            err.starts_with("failed to list the notes of merge request !12 in project 42 (page 1): HTTP 302 Found: GitLab redirects to `http://127.0.0.1:9/elsewhere`; not followed"),
            "{err}"
        );
        assert!(!err.contains("glpat-secret"), "{err}");
    }
}
