//! The `/v1` operations as one table, and the dispatcher that runs a request through
//! authentication, idempotency and its handler — alone or as an item of a batch.

use std::collections::BTreeMap;
use std::net::IpAddr;

use axum::http::Method;
use rusqlite::{Connection, Transaction};

use crate::problem::{ApiError, Reply};
use crate::{admin, api, fleet, idempotency, packages, readiness, reports, security, AppState};

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    User {
        id: i64,
        username: String,
        session_id: String,
    },
    Admin,
}

impl Principal {
    /// The namespace of this caller's idempotency keys.
    pub fn key(&self) -> String {
        match self {
            Principal::User { id, .. } => format!("user:{id}"),
            Principal::Admin => "admin".into(),
        }
    }

    pub fn user_id(&self) -> Option<i64> {
        match self {
            Principal::User { id, .. } => Some(*id),
            Principal::Admin => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Student,
    Admin,
}

/// What a handler gets.
pub struct Ctx<'a> {
    pub state: &'a AppState,
    pub principal: &'a Principal,
    pub params: BTreeMap<&'static str, String>,
    pub query: BTreeMap<String, String>,
    pub body: &'a [u8],
    pub if_none_match: Option<&'a str>,
    pub ip: IpAddr,
    pub now: chrono::DateTime<chrono::Utc>,
}

impl Ctx<'_> {
    pub fn param(&self, name: &str) -> &str {
        self.params.get(name).map_or("", String::as_str)
    }

    /// The `limit` query parameter: 1 to 1000, `default` when absent.
    pub fn limit(&self, default: u32) -> Result<u32, ApiError> {
        match self.query.get("limit") {
            Some(l) => l
                .parse::<u32>()
                .ok()
                .filter(|l| (1..=1000).contains(l))
                .ok_or_else(|| ApiError::validation("limit must be 1 to 1000")),
            None => Ok(default),
        }
    }

    pub fn user_id(&self) -> Result<i64, ApiError> {
        self.principal
            .user_id()
            .ok_or_else(|| ApiError::forbidden("forbidden", "this operation is for students"))
    }
}

pub type Handler = fn(&Ctx<'_>, &Connection) -> Result<Reply, ApiError>;

pub struct Route {
    pub method: Method,
    pub template: &'static str,
    pub access: Access,
    pub handler: Handler,
    /// A long read-only query: sent alone, it runs on the read-only connection
    /// ([`crate::AppState::reader`]) so that it never holds up the students' writes (in a
    /// batch, on the batch's transaction like every item).
    pub reader: bool,
}

macro_rules! route {
    ($method:ident $template:literal $access:ident $handler:path) => {
        route!($method $template $access $handler, false)
    };
    ($method:ident $template:literal $access:ident $handler:path, reader) => {
        route!($method $template $access $handler, true)
    };
    ($method:ident $template:literal $access:ident $handler:path, $reader:expr) => {
        Route {
            method: Method::$method,
            template: $template,
            access: Access::$access,
            handler: $handler,
            reader: $reader,
        }
    };
}

/// The template of the batch route, handled by [`crate::api::batch`] outside the table's
/// transaction because each of its items runs as if sent alone.
pub const BATCH: &str = "/v1/batch";

/// Every `/v1` operation but the batch.
pub static ROUTES: &[Route] = &[
    route!(GET "/v1/exams" Student api::list_exams),
    route!(GET "/v1/exams/{exam_id}/package" Student packages::exam_package),
    route!(POST "/v1/exams/{exam_id}/key" Student packages::exam_key),
    route!(POST "/v1/exams/{exam_id}/attempts" Student api::create_attempt),
    route!(PUT "/v1/attempts/{attempt_id}/answers/{question_id}" Student api::put_answer),
    route!(POST "/v1/attempts/{attempt_id}/submit" Student api::submit),
    route!(GET "/v1/attempts/{attempt_id}" Student api::get_attempt),
    route!(POST "/v1/events" Student api::post_events),
    route!(GET "/v1/admin/attempts/{attempt_id}" Admin admin::attempt),
    route!(GET "/v1/admin/users/{username}/attempts" Admin admin::user_attempts),
    route!(POST "/v1/admin/users/{username}/sessions/revoke" Admin admin::revoke_sessions),
    route!(POST "/v1/admin/users/{username}/step-up" Admin security::require_step_up),
    route!(DELETE "/v1/admin/users/{username}/step-up" Admin security::clear_step_up),
    route!(POST "/v1/admin/ip-blocks" Admin admin::create_ip_block),
    route!(DELETE "/v1/admin/ip-blocks/{id}" Admin admin::delete_ip_block),
    route!(GET "/v1/admin/audit" Admin admin::audit),
    route!(GET "/v1/admin/stats" Admin admin::stats),
    route!(GET "/v1/admin/alerts" Admin security::list_alerts),
    route!(POST "/v1/admin/alerts/{alert_id}/ack" Admin security::ack_alert),
    route!(GET "/v1/admin/events" Admin security::list_events),
    route!(GET "/v1/admin/machines" Admin security::list_machines),
    route!(GET "/v1/admin/machines/readiness" Admin readiness::handler, reader),
    route!(GET "/v1/admin/machines/{device}/history" Admin security::history::machine_history),
    route!(GET "/v1/admin/attempts/{attempt_id}/timeline" Admin security::attempt_timeline),
    route!(GET "/v1/admin/exams" Admin admin::exams),
    route!(GET "/v1/admin/exams/{exam_id}/time-lost" Admin security::time_lost::exam_time_lost),
    route!(GET "/v1/admin/fleet" Admin fleet::fleet, reader),
    route!(GET "/v1/admin/fleet/series" Admin fleet::series, reader),
    route!(GET "/v1/admin/fleet/scopes" Admin fleet::scopes, reader),
    route!(GET "/v1/admin/fleet/insights" Admin fleet::insights::handler, reader),
    route!(GET "/v1/admin/reports/{kind}" Admin reports::report, reader),
    route!(GET "/v1/admin/exams/{exam_id}/start-code" Admin packages::admin_start_code),
    route!(POST "/v1/admin/exams/{exam_id}/start-code/rotate" Admin packages::admin_rotate_start_code),
    route!(PUT "/v1/admin/exams/{exam_id}/min-client-version" Admin readiness::set_min_version),
];

/// Matches a path (without query) against a template; returns the parameters.
fn match_template(template: &'static str, path: &str) -> Option<BTreeMap<&'static str, String>> {
    let mut params = BTreeMap::new();
    let mut t = template.split('/');
    let mut p = path.split('/');
    loop {
        match (t.next(), p.next()) {
            (None, None) => return Some(params),
            (Some(ts), Some(ps)) => {
                if let Some(name) = ts.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    if ps.is_empty() {
                        return None;
                    }
                    params.insert(name, percent_decode(ps)?);
                } else if ts != ps {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The route for `method path`: `Err(404)` for an unknown path, `Err(405)` with the methods
/// the path accepts (its `Allow` header) for a known path with another method.
pub fn find(
    method: &Method,
    path: &str,
) -> Result<(&'static Route, BTreeMap<&'static str, String>), ApiError> {
    let mut allowed: Vec<&'static str> = Vec::new();
    for route in ROUTES {
        if let Some(params) = match_template(route.template, path) {
            if route.method == *method {
                return Ok((route, params));
            }
            if !allowed.contains(&route.method.as_str()) {
                allowed.push(route.method.as_str());
            }
        }
    }
    if allowed.is_empty() {
        Err(ApiError::not_found(format!("there is no {path}")))
    } else {
        Err(ApiError::method_not_allowed(
            format!("{path} does not accept {method}"),
            &allowed,
        ))
    }
}

/// One `/v1` request (not the batch itself), already authenticated as `principal`.
pub struct Call<'a> {
    pub method: Method,
    pub path: &'a str,
    pub query: BTreeMap<String, String>,
    pub body: &'a [u8],
    pub idempotency_key: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    pub ip: IpAddr,
}

/// Runs one call alone, in a transaction of its own (on the read-only connection for a GET of
/// a `reader` route: it writes nothing, so it neither needs the writer nor waits for it).
pub fn execute_one(
    state: &AppState,
    principal: &Principal,
    call: &Call<'_>,
) -> (Option<&'static str>, Reply) {
    let reader = call.method == Method::GET
        && find(&call.method, call.path).is_ok_and(|(route, _)| route.reader);
    let mut conn = if reader {
        state.reader.lock()
    } else {
        state.db.lock()
    };
    let outcome = conn
        .transaction()
        .map_err(ApiError::from)
        .and_then(|mut tx| {
            let outcome = execute(state, principal, call, &mut tx);
            tx.commit()?;
            Ok(outcome)
        });
    crate::admin::reload_blocks_if_changed(state, &conn);
    outcome.unwrap_or_else(|e| (None, e.into_reply()))
}

/// Runs one call inside the caller's transaction: route, access check, idempotency,
/// handler. Never panics; every failure is a problem reply, and a failed write is rolled
/// back to where it started without touching the rest of the transaction. Returns the
/// route template too, for statistics.
pub fn execute(
    state: &AppState,
    principal: &Principal,
    call: &Call<'_>,
    tx: &mut Transaction<'_>,
) -> (Option<&'static str>, Reply) {
    let (route, params) = match find(&call.method, call.path) {
        Ok(found) => found,
        Err(error) => return (None, error.into_reply()),
    };
    let reply = match (route.access, principal) {
        (Access::Admin, Principal::User { .. }) => Err(ApiError::forbidden(
            "forbidden",
            "this operation needs the admin token",
        )),
        (Access::Student, Principal::Admin) => Err(ApiError::forbidden(
            "forbidden",
            "this operation needs a student's access token",
        )),
        _ => {
            let ctx = Ctx {
                state,
                principal,
                params,
                query: call.query.clone(),
                body: call.body,
                if_none_match: call.if_none_match,
                ip: call.ip,
                now: crate::now(),
            };
            if call.method == Method::GET {
                (route.handler)(&ctx, tx)
            } else {
                idempotency::run(
                    &ctx,
                    tx,
                    &call.method,
                    call.path,
                    call.idempotency_key,
                    route.handler,
                )
            }
        }
    };
    (
        Some(route.template),
        reply.unwrap_or_else(ApiError::into_reply),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn templates_match_paths_and_decode_parameters() {
        let params = match_template(
            "/v1/attempts/{attempt_id}/answers/{question_id}",
            "/v1/attempts/a1/answers/q%201",
        )
        .unwrap();
        assert_eq!(params["attempt_id"], "a1");
        assert_eq!(params["question_id"], "q 1");
        assert!(match_template("/v1/exams", "/v1/exams/").is_none());
        assert!(match_template("/v1/exams/{exam_id}/package", "/v1/exams//package").is_none());
        assert!(match_template("/v1/exams/{exam_id}/package", "/v1/exams/%zz/package").is_none());
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405() {
        assert_eq!(
            find(&Method::GET, "/v1/nope").err().unwrap().status,
            StatusCode::NOT_FOUND
        );
        let refused = find(&Method::DELETE, "/v1/exams").err().unwrap();
        assert_eq!(refused.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(refused.allow.as_deref(), Some("GET"));
        let refused = find(&Method::GET, "/v1/attempts/a1/submit").err().unwrap();
        assert_eq!(refused.allow.as_deref(), Some("POST"));
        assert_eq!(
            find(&Method::GET, "/v1/exams").unwrap().0.template,
            "/v1/exams"
        );
    }
}
