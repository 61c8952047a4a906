//! Sending claimed entries: one alone or several as one `/v1/batch`, through the token
//! manager (a 401 refreshes once), and what each reply means for its entry. Only a whole
//! reply of the server's is a verdict ([`server_reply`]); anything else is tried again.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::Ctx;
use crate::auth::{AuthError, TokenManager};
use crate::http::{describe, judge};
use crate::owner::Owner;
use crate::queue::{Claimed, Outcome};

/// Sends claimed entries (one alone, several as a batch) and says what became of each.
/// Every entry is `owner`'s and is sent with `owner`'s credentials only, held by `auth`
/// (their session, or the courier of the work they left here).
pub(super) async fn send(
    ctx: &Ctx,
    auth: &TokenManager,
    owner: &Owner,
    claimed: &[Claimed],
) -> Vec<(i64, Outcome)> {
    let started = Instant::now();
    let results = if claimed.len() == 1 {
        vec![(claimed[0].id, send_one(ctx, auth, owner, &claimed[0]).await)]
    } else {
        send_batch(ctx, auth, owner, claimed).await
    };
    let mut s = ctx.shared.stats.lock().unwrap_or_else(|p| p.into_inner());
    s.requests += 1;
    s.batches += u64::from(claimed.len() > 1);
    s.request_time += started.elapsed();
    results
}

async fn send_one(ctx: &Ctx, auth: &TokenManager, owner: &Owner, entry: &Claimed) -> Outcome {
    let Ok(url) = ctx.auth.server().join(entry.path.trim_start_matches('/')) else {
        return Outcome::Dead {
            status: 0,
            body: String::new(),
            error: format!("{} is not a valid path", entry.path),
        };
    };
    let Ok(method) = reqwest::Method::from_bytes(entry.method.as_bytes()) else {
        return Outcome::Dead {
            status: 0,
            body: String::new(),
            error: format!("{} is not an HTTP method", entry.method),
        };
    };
    let timeout = ctx.request_timeout();
    let result = auth
        .send_authorized_as(owner, |client| {
            let mut request = client
                .request(method.clone(), url.clone())
                .timeout(timeout)
                .header("Idempotency-Key", &entry.idempotency_key);
            if let Some(body) = &entry.body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            request
        })
        .await;
    let response = match result {
        Ok(response) => response,
        Err(error) => return auth_failure(ctx, error),
    };
    match read_reply(ctx, response).await {
        Ok((status, body, retry_after)) => classify(status, &body, retry_after),
        Err(outcome) => outcome,
    }
}

/// The server's reply, whole: its status, body and `Retry-After`. A reply cut short, or one
/// that was not the server's (a portal's page with `200`, a proxy's error page), is no
/// verdict on the request: the entry is tried again (its idempotency key makes that safe),
/// and the network monitor hears of it.
async fn read_reply(
    ctx: &Ctx,
    response: reqwest::Response,
) -> Result<(u16, String, Option<Duration>), Outcome> {
    match server_reply(response).await {
        Ok(reply) => Ok(reply),
        Err(NotAReply::CutShort(error)) => {
            (ctx.network.probe_now)();
            Err(Outcome::Retry {
                error,
                retry_after: None,
            })
        }
        Err(NotAReply::Intercepted(interception)) => {
            ctx.auth.http().report_interception(&interception);
            Err(Outcome::Retry {
                error: interception.reason().to_string(),
                retry_after: None,
            })
        }
    }
}

/// Why a response is no verdict of the server's.
#[derive(Debug)]
pub enum NotAReply {
    CutShort(String),
    Intercepted(crate::http::Interception),
}

/// Reads a response whole and keeps it only if it is the server's.
pub async fn server_reply(
    response: reqwest::Response,
) -> Result<(u16, String, Option<Duration>), NotAReply> {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(|error| NotAReply::CutShort(describe(&error).to_string()))?;
    if let Some(interception) = judge(status, &headers, &body) {
        return Err(NotAReply::Intercepted(interception));
    }
    Ok((
        status.as_u16(),
        String::from_utf8_lossy(&body).into_owned(),
        retry_after(&headers),
    ))
}

fn auth_failure(ctx: &Ctx, error: AuthError) -> Outcome {
    match error {
        AuthError::Offline(reason) => {
            (ctx.network.probe_now)();
            Outcome::Retry {
                error: reason.to_string(),
                retry_after: None,
            }
        }
        // Signed out or ended: the entry waits for the next sign-in, unchanged.
        other => {
            tracing::info!(error = %other, "queued work waits for a sign-in");
            Outcome::Release
        }
    }
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    if let Ok(seconds) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(seconds.min(3600)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    at.duration_since(std::time::SystemTime::now()).ok()
}

/// What the server's own reply means for its entry (a reply that is not the server's never
/// gets here: [`server_reply`]).
pub fn classify(status: u16, body: &str, retry_after: Option<Duration>) -> Outcome {
    let code = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("code").and_then(|c| c.as_str()).map(str::to_string));
    match status {
        200..=299 => Outcome::Done {
            status,
            body: body.to_string(),
        },
        401 => Outcome::Release,
        408 | 425 | 429 | 500..=599 => Outcome::Retry {
            error: format!("the server answered {status}"),
            retry_after,
        },
        409 if code.as_deref() == Some("idempotency_in_flight") => Outcome::Retry {
            error: "the same request is still being processed".into(),
            retry_after: retry_after.or(Some(Duration::from_secs(1))),
        },
        _ => Outcome::Dead {
            status,
            body: body.chars().take(4000).collect(),
            error: match code {
                Some(code) => format!("refused by the server ({status} {code})"),
                None => format!("refused by the server ({status})"),
            },
        },
    }
}

async fn send_batch(
    ctx: &Ctx,
    auth: &TokenManager,
    owner: &Owner,
    claimed: &[Claimed],
) -> Vec<(i64, Outcome)> {
    let requests: Vec<serde_json::Value> = claimed
        .iter()
        .map(|c| {
            let body = c
                .body
                .as_ref()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok());
            let mut item = serde_json::json!({
                "id": c.id.to_string(),
                "method": c.method,
                "path": c.path,
                "idempotency_key": c.idempotency_key,
            });
            if let Some(body) = body {
                item["body"] = body;
            }
            item
        })
        .collect();
    let payload = serde_json::json!({ "requests": requests });
    let Ok(url) = ctx.auth.server().join("v1/batch") else {
        return all(claimed, Outcome::Release);
    };
    let timeout = ctx.request_timeout();
    let result = auth
        .send_authorized_as(owner, |client| {
            client.post(url.clone()).timeout(timeout).json(&payload)
        })
        .await;
    let response = match result {
        Ok(r) => r,
        Err(error) => {
            let outcome = auth_failure(ctx, error);
            return all(claimed, outcome);
        }
    };
    let (status, text, retry) = match read_reply(ctx, response).await {
        Ok(reply) => reply,
        Err(outcome) => return all(claimed, outcome),
    };
    if status != 200 {
        return match classify(status, &text, retry) {
            Outcome::Dead { .. } => {
                // The server refuses batches: send one by one for a while.
                tracing::warn!(
                    status,
                    "the server refused a batch; sending singly for a minute"
                );
                *ctx.unbatched_until
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) =
                    Some(Instant::now() + Duration::from_secs(60));
                all(claimed, Outcome::Release)
            }
            other => all(claimed, other),
        };
    }
    let replies: HashMap<String, (u16, String)> =
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v) => v["responses"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|item| {
                            let id = item["id"].as_str()?.to_string();
                            let status = u16::try_from(item["status"].as_u64()?).ok()?;
                            Some((id, (status, item["body"].to_string())))
                        })
                        .collect()
                })
                .unwrap_or_default(),
            Err(_) => HashMap::new(),
        };
    // Within a stream: after a barrier that did not go through, later items keep their result
    // only if they succeeded (e.g. an answer whose attempt is not created yet is sent again
    // later, without counting against it); a barrier after any failed item likewise (a
    // submission must not overtake an answer that failed).
    let mut failed_any: HashSet<&str> = HashSet::new();
    let mut failed_barrier: HashSet<&str> = HashSet::new();
    claimed
        .iter()
        .map(|c| {
            let outcome = match replies.get(&c.id.to_string()) {
                Some((status, body)) => classify(*status, body, None),
                None => Outcome::Retry {
                    error: "the batch reply did not mention this request".into(),
                    retry_after: None,
                },
            };
            let stream = c.stream.as_str();
            let held_back = if c.kind.is_barrier() {
                failed_any.contains(stream)
            } else {
                failed_barrier.contains(stream)
            };
            let outcome = match outcome {
                Outcome::Done { .. } => outcome,
                _ if held_back => Outcome::Release,
                other => {
                    failed_any.insert(stream);
                    if c.kind.is_barrier() {
                        failed_barrier.insert(stream);
                    }
                    other
                }
            };
            (c.id, outcome)
        })
        .collect()
}

fn all(claimed: &[Claimed], outcome: Outcome) -> Vec<(i64, Outcome)> {
    claimed.iter().map(|c| (c.id, outcome.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_classified_as_the_contract_says() {
        assert!(matches!(classify(200, "{}", None), Outcome::Done { .. }));
        assert!(matches!(classify(201, "{}", None), Outcome::Done { .. }));
        assert_eq!(classify(401, "", None), Outcome::Release);
        for status in [408, 429, 500, 502, 503] {
            assert!(
                matches!(classify(status, "", None), Outcome::Retry { .. }),
                "{status}"
            );
        }
        let in_flight = classify(409, r#"{"code":"idempotency_in_flight"}"#, None);
        assert!(matches!(in_flight, Outcome::Retry { .. }));
        let closed = classify(409, r#"{"code":"attempt_closed","title":"x"}"#, None);
        match closed {
            Outcome::Dead {
                status,
                error,
                body,
            } => {
                assert_eq!(status, 409);
                assert!(error.contains("attempt_closed"));
                assert!(body.contains("attempt_closed"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify(422, "not json", None),
            Outcome::Dead { .. }
        ));
        let wait = classify(429, "", Some(Duration::from_secs(7)));
        assert_eq!(
            wait,
            Outcome::Retry {
                error: "the server answered 429".into(),
                retry_after: Some(Duration::from_secs(7))
            }
        );
    }

    /// A one-shot HTTP server on 127.0.0.1 that writes `raw` and closes.
    fn replying(raw: &'static [u8]) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(raw);
            }
        });
        format!("http://{addr}/v1/attempts/a/answers/q1")
    }

    async fn reply_of(raw: &'static [u8]) -> Result<(u16, String, Option<Duration>), NotAReply> {
        let url = replying(raw);
        let response = reqwest::Client::new().put(url).send().await.unwrap();
        server_reply(response).await
    }

    #[tokio::test]
    async fn only_a_whole_reply_of_the_servers_is_a_verdict() {
        let whole = reply_of(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 42\r\n\r\n\
              {\"question_id\":\"q1\",\"seq\":1,\"stored\":true}",
        )
        .await
        .unwrap();
        assert_eq!(whole.0, 200);
        assert!(matches!(
            classify(whole.0, &whole.1, whole.2),
            Outcome::Done { .. }
        ));
        // The body stops after 15 of the 43 bytes announced: not delivered, tried again.
        let cut = reply_of(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 43\r\n\r\n\
              {\"question_id\":",
        )
        .await;
        assert!(matches!(cut, Err(NotAReply::CutShort(_))), "{cut:?}");
        // A portal's login page with 200 is not a receipt.
        let page = reply_of(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 21\r\n\r\n\
              <form>Sign in</form>\n",
        )
        .await;
        assert!(matches!(page, Err(NotAReply::Intercepted(_))), "{page:?}");
        // A proxy's own 503 page: not the server's 503.
        let proxy = reply_of(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html\r\nVia: 1.1 proxy\r\n\
              Content-Length: 7\r\n\r\n<h1>x</h1",
        )
        .await;
        assert!(matches!(proxy, Err(NotAReply::Intercepted(_))), "{proxy:?}");
        // The server's own refusal is one.
        let refused = reply_of(
            b"HTTP/1.1 409 Conflict\r\nContent-Type: application/problem+json\r\n\
              Content-Length: 25\r\n\r\n{\"code\":\"attempt_closed\"}",
        )
        .await
        .unwrap();
        assert!(matches!(
            classify(refused.0, &refused.1, refused.2),
            Outcome::Dead { .. }
        ));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "12".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(12)));
        let later = std::time::SystemTime::now() + Duration::from_secs(100);
        h.insert(
            reqwest::header::RETRY_AFTER,
            httpdate::fmt_http_date(later).parse().unwrap(),
        );
        let got = retry_after(&h).unwrap();
        assert!(got > Duration::from_secs(90) && got <= Duration::from_secs(100));
        h.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
