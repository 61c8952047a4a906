//! The student operations of `/v1`: exams, attempts, answers, submission, events.

use std::sync::Arc;

use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use rusqlite::{Connection, OptionalExtension};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use exam_contract::rules;
pub use exam_contract::{answers_digest, canonical_json};

use crate::problem::{ApiError, Reply};
use crate::routes::Ctx;

pub const MAX_EVENTS: usize = 500;
pub const MAX_EVENT_ID_CHARS: usize = 255;

/// Parses a JSON body: 400 `malformed_body` for bad JSON, 400 `invalid_body` for JSON of the
/// wrong shape, both saying where. Every body of the API is a JSON object: serde would read a
/// struct from an array too (`[null, null]` as two absent fields), so anything else is refused.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let parsed = serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::bad_request(
            "invalid_body",
            format!("the body does not have the expected fields and types: {e}"),
        ),
        _ => ApiError::bad_request("malformed_body", format!("the body is not valid JSON: {e}")),
    })?;
    // Valid JSON, so it starts with a value after optional whitespace.
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    if body.get(start) != Some(&b'{') {
        let line = 1 + body[..start].iter().filter(|b| **b == b'\n').count();
        let column = 1 + start
            - body[..start]
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |n| n + 1);
        return Err(ApiError::bad_request(
            "invalid_body",
            format!("the body must be a JSON object at line {line} column {column}"),
        ));
    }
    Ok(parsed)
}

/// A whole number as JSON Schema counts one (the OpenAPI document's `"type": "integer"`):
/// `7`, `7.0` and `7e0` are the same number. A fraction, or a number out of `T`'s range, is
/// refused like any other wrong type (400 `invalid_body`).
fn whole_number<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i128>,
{
    let number = serde_json::Number::deserialize(deserializer)?;
    let whole = match (number.as_i64(), number.as_u64(), number.as_f64()) {
        (Some(i), _, _) => Some(i128::from(i)),
        (_, Some(u), _) => Some(i128::from(u)),
        // `as` saturates, and anything that large is out of every target's range anyway.
        (_, _, Some(f)) if f.is_finite() && f.fract() == 0.0 => Some(f as i128),
        _ => None,
    };
    whole.and_then(|w| T::try_from(w).ok()).ok_or_else(|| {
        serde::de::Error::invalid_value(
            serde::de::Unexpected::Other(&number.to_string()),
            &"a whole number in range",
        )
    })
}

pub fn parse_time(value: &str, what: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| ApiError::validation(format!("{what} `{value}` is not an RFC 3339 time: {e}")))
}

#[derive(Debug, Clone, Deserialize)]
pub struct Question {
    pub id: String,
    pub kind: String,
    #[serde(default)]
    pub options: Vec<QOption>,
    pub max_length: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct QOption {
    pub id: String,
}

/// `GET /v1/exams`: exams that have not closed yet, with when each package may be fetched
/// (`available_from`), whether it is `sealed`, and the oldest app version that may take it
/// (`min_client_version`, null: any). Nothing of the questions but their number.
pub fn list_exams(ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    let mut stmt = tx.prepare(
        "SELECT id, title, version, opens_at, closes_at, duration_s, json_array_length(questions),
                sealed, available_from, min_client_version
         FROM exams WHERE closes_at > ?1 ORDER BY opens_at, id",
    )?;
    let exams = stmt
        .query_map([crate::rfc3339(ctx.now)], |r| {
            let opens_at: String = r.get(3)?;
            let sealed: bool = r.get(7)?;
            let available_from: Option<String> = r.get(8)?;
            Ok(json!({
                "id": r.get::<_, String>(0)?,
                "title": r.get::<_, String>(1)?,
                "version": r.get::<_, i64>(2)?,
                "available_from": crate::packages::available_from(sealed, available_from.as_deref(), &opens_at),
                "opens_at": opens_at,
                "closes_at": r.get::<_, String>(4)?,
                "duration_s": r.get::<_, i64>(5)?,
                "question_count": r.get::<_, i64>(6)?,
                "sealed": sealed,
                "min_client_version": r.get::<_, Option<String>>(9)?,
            }))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Reply::ok(Value::Array(exams)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AttemptCreate {
    attempt_id: Option<String>,
    started_at: Option<String>,
}

/// `POST /v1/exams/{exam_id}/attempts`: the client may choose the id and start time of an
/// attempt that began offline.
pub fn create_attempt(ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    let user_id = ctx.user_id()?;
    let exam = crate::packages::load(tx, ctx.param("exam_id"))?;
    let body: AttemptCreate = if ctx.body.iter().all(u8::is_ascii_whitespace) {
        AttemptCreate::default()
    } else {
        parse_json(ctx.body)?
    };
    let opens = parse_time(&exam.opens_at, "opens_at")?;
    let closes = parse_time(&exam.closes_at, "closes_at")?;

    let attempt_id = match &body.attempt_id {
        Some(id) => uuid::Uuid::parse_str(id)
            .map_err(|_| ApiError::validation(format!("attempt_id `{id}` is not a UUID")))?
            .to_string(),
        None => uuid::Uuid::new_v4().to_string(),
    };
    // Checked before anything else, a retry of an existing attempt included: a malformed
    // time is refused however the request would end.
    let client_start = match &body.started_at {
        Some(t) => Some(parse_time(t, "started_at")?),
        None => None,
    };
    let existing: Option<(i64, String, String, String)> = tx
        .query_row(
            "SELECT user_id, exam_id, started_at, deadline_at FROM attempts WHERE id = ?1",
            [&attempt_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    if let Some((owner, exam_id, started_at, deadline_at)) = existing {
        if owner != user_id || exam_id != exam.id {
            return Err(ApiError::conflict(
                "attempt_id_taken",
                "this attempt_id is already in use",
            ));
        }
        return Ok(Reply::new(
            StatusCode::CREATED,
            json!({"attempt_id": attempt_id, "exam_id": exam_id, "started_at": started_at, "deadline_at": deadline_at}),
        ));
    }

    // A client start time is trusted inside the open window and not in the future.
    let client_start = client_start
        .filter(|t| *t >= opens && *t <= closes && *t <= ctx.now + Duration::seconds(60));
    let started = client_start.unwrap_or(ctx.now);
    // The start window as the client's core checks it (`exam_contract::rules::may_start`).
    match rules::may_start(
        started.timestamp_millis(),
        opens.timestamp_millis(),
        closes.timestamp_millis(),
        false,
    ) {
        Ok(()) => {}
        Err(rules::StartRefusal::Closed { .. }) => {
            return Err(ApiError::conflict(
                "exam_closed",
                format!("the exam closed at {}", exam.closes_at),
            ))
        }
        Err(_) => {
            return Err(ApiError::conflict(
                "exam_not_open",
                format!("the exam opens at {}", exam.opens_at),
            ))
        }
    }
    let deadline = (started + Duration::seconds(exam.duration_s)).min(closes);
    let (started_at, deadline_at) = (crate::rfc3339(started), crate::rfc3339(deadline));
    tx.execute(
        "INSERT INTO attempts (id, exam_id, user_id, status, started_at, deadline_at)
         VALUES (?1, ?2, ?3, 'open', ?4, ?5)",
        (&attempt_id, &exam.id, user_id, &started_at, &deadline_at),
    )?;
    Ok(Reply::new(
        StatusCode::CREATED,
        json!({"attempt_id": attempt_id, "exam_id": exam.id, "started_at": started_at, "deadline_at": deadline_at}),
    ))
}

struct Attempt {
    exam_id: String,
    status: String,
    started_at: String,
    deadline_at: String,
}

/// The caller's own attempt; someone else's is 404, as if it did not exist.
fn own_attempt(ctx: &Ctx<'_>, tx: &Connection) -> Result<Attempt, ApiError> {
    let user_id = ctx.user_id()?;
    let attempt_id = ctx.param("attempt_id");
    tx.prepare_cached(
        "SELECT exam_id, status, started_at, deadline_at FROM attempts WHERE id = ?1 AND user_id = ?2",
    )?
    .query_row(
        (attempt_id, user_id),
        |r| {
            Ok(Attempt {
                exam_id: r.get(0)?,
                status: r.get(1)?,
                started_at: r.get(2)?,
                deadline_at: r.get(3)?,
            })
        },
    )
    .optional()?
    // Another student's attempt answers exactly as one that does not exist (the contract).
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "attempt_not_found",
            format!("there is no attempt `{attempt_id}`"),
        )
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerPut {
    value: Value,
    #[serde(deserialize_with = "whole_number")]
    seq: i64,
    saved_at: String,
}

/// Checks a value against its question with the rule the client applies too
/// ([`exam_contract::rules::check_answer`]): what one accepts, the other does.
pub fn check_value(question: &Question, value: &Value) -> Result<(), ApiError> {
    let Some(kind) = rules::Kind::parse(&question.kind) else {
        return Err(ApiError::validation(format!(
            "question `{}` has an unknown kind `{}`",
            question.id, question.kind
        )));
    };
    let options: Vec<&str> = question.options.iter().map(|o| o.id.as_str()).collect();
    let rule = rules::QuestionRule {
        id: &question.id,
        kind,
        options: &options,
        max_length: question
            .max_length
            .map(|m| u32::try_from(m).unwrap_or(u32::MAX)),
    };
    rules::check_answer(&rule, value).map_err(|e| ApiError::validation(e.to_string()))
}

/// An exam's questions, parsed once: exams do not change while the server runs.
fn exam_questions(
    ctx: &Ctx<'_>,
    tx: &Connection,
    exam_id: &str,
) -> Result<Arc<Vec<Question>>, ApiError> {
    let mut cache = ctx
        .state
        .questions
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(questions) = cache.get(exam_id) {
        return Ok(questions.clone());
    }
    let text: String = tx
        .prepare_cached("SELECT questions FROM exams WHERE id = ?1")?
        .query_row([exam_id], |r| r.get(0))?;
    let questions: Vec<Question> = serde_json::from_str(&text).map_err(|e| {
        ApiError::internal(format!("exam `{exam_id}` has unreadable questions: {e}"))
    })?;
    let questions = Arc::new(questions);
    cache.insert(exam_id.to_string(), questions.clone());
    Ok(questions)
}

/// `PUT /v1/attempts/{attempt_id}/answers/{question_id}`: a stale `seq` never overwrites.
pub fn put_answer(ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    let attempt = own_attempt(ctx, tx)?;
    if attempt.status != "open" {
        return Err(ApiError::conflict(
            "attempt_closed",
            "this attempt has been submitted",
        ));
    }
    let question_id = ctx.param("question_id");
    let questions = exam_questions(ctx, tx, &attempt.exam_id)?;
    let question = questions
        .iter()
        .find(|q| q.id == question_id)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "exam `{}` has no question `{question_id}`",
                attempt.exam_id
            ))
        })?;
    let body: AnswerPut = parse_json(ctx.body)?;
    if body.seq < 0 {
        return Err(ApiError::validation("seq must not be negative"));
    }
    parse_time(&body.saved_at, "saved_at")?;
    check_value(question, &body.value)?;

    let attempt_id = ctx.param("attempt_id");
    let current: Option<i64> = tx
        .prepare_cached("SELECT seq FROM answers WHERE attempt_id = ?1 AND question_id = ?2")?
        .query_row((attempt_id, question_id), |r| r.get(0))
        .optional()?;
    let stored = current.is_none_or(|seq| body.seq > seq);
    if stored {
        tx.prepare_cached(
            "INSERT INTO answers (attempt_id, question_id, value, seq, saved_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (attempt_id, question_id) DO UPDATE SET value = ?3, seq = ?4, saved_at = ?5",
        )?
        .execute((attempt_id, question_id, body.value.to_string(), body.seq, &body.saved_at))?;
        tx.prepare_cached("UPDATE attempts SET applied_writes = applied_writes + 1 WHERE id = ?1")?
            .execute([attempt_id])?;
        ctx.state.stats.answer_applied();
    }
    Ok(Reply::ok(
        json!({"question_id": question_id, "seq": body.seq, "stored": stored}),
    ))
}

/// The stored answers of an attempt: question id → (value, seq, saved_at).
pub fn stored_answers(
    tx: &Connection,
    attempt_id: &str,
) -> rusqlite::Result<Vec<(String, Value, i64, String)>> {
    let mut stmt = tx.prepare(
        "SELECT question_id, value, seq, saved_at FROM answers WHERE attempt_id = ?1 ORDER BY question_id",
    )?;
    let rows = stmt.query_map([attempt_id], |r| {
        let value: String = r.get(1)?;
        Ok((
            r.get(0)?,
            serde_json::from_str(&value).unwrap_or(Value::Null),
            r.get(2)?,
            r.get(3)?,
        ))
    })?;
    rows.collect()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitBody {
    #[serde(deserialize_with = "whole_number")]
    answer_count: u64,
    answers_digest: String,
}

/// `POST /v1/attempts/{attempt_id}/submit`: the receipt, or 409 with the server's digest.
pub fn submit(ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    let attempt = own_attempt(ctx, tx)?;
    if attempt.status != "open" {
        return Err(ApiError::conflict(
            "attempt_closed",
            "this attempt has already been submitted",
        ));
    }
    let body: SubmitBody = parse_json(ctx.body)?;
    let attempt_id = ctx.param("attempt_id");
    let answers = stored_answers(tx, attempt_id)?;
    let digest = answers_digest(answers.iter().map(|(q, v, _, _)| (q.as_str(), v)));
    // Blank values are no answers (`exam_contract::rules::is_blank`): neither counted nor in
    // the digest, on either side.
    let answered = rules::answered_count(answers.iter().map(|(_, v, _, _)| v));
    if !digest.eq_ignore_ascii_case(body.answers_digest.trim())
        || body.answer_count != answered as u64
    {
        let seqs: Map<String, Value> = answers
            .iter()
            .map(|(q, _, seq, _)| (q.clone(), json!(seq)))
            .collect();
        return Err(ApiError::conflict(
            "digest_mismatch",
            format!(
                "the server holds {answered} answers with another digest; send the missing answers and submit again"
            ),
        )
        .with_extra(json!({"answers_digest": digest, "answer_count": answered, "answers": seqs})));
    }
    let deadline = parse_time(&attempt.deadline_at, "deadline_at")?;
    let late = ctx.now > deadline;
    let receipt_id = uuid::Uuid::new_v4().to_string();
    let submitted_at = crate::rfc3339(ctx.now);
    tx.execute(
        "UPDATE attempts SET status = 'submitted', receipt_id = ?2, submitted_at = ?3, answers_digest = ?4, late = ?5
         WHERE id = ?1",
        (attempt_id, &receipt_id, &submitted_at, &digest, late),
    )?;
    // The account the attempt was filed under: a client shows the receipt only when it is
    // the student whose attempt it is.
    let student: String = tx.query_row(
        "SELECT u.username FROM attempts a JOIN users u ON u.id = a.user_id WHERE a.id = ?1",
        [attempt_id],
        |r| r.get(0),
    )?;
    Ok(Reply::ok(json!({
        "receipt_id": receipt_id, "student": student, "submitted_at": submitted_at,
        "answers_digest": digest, "late": late
    })))
}

/// The receipt of a submitted attempt, if any.
pub fn receipt(tx: &Connection, attempt_id: &str) -> rusqlite::Result<Option<Value>> {
    tx.query_row(
        "SELECT a.receipt_id, a.submitted_at, a.answers_digest, a.late, u.username
         FROM attempts a JOIN users u ON u.id = a.user_id
         WHERE a.id = ?1 AND a.receipt_id IS NOT NULL",
        [attempt_id],
        |r| {
            Ok(json!({
                "receipt_id": r.get::<_, String>(0)?,
                "submitted_at": r.get::<_, String>(1)?,
                "answers_digest": r.get::<_, String>(2)?,
                "late": r.get::<_, bool>(3)?,
                "student": r.get::<_, String>(4)?,
            }))
        },
    )
    .optional()
}

/// `GET /v1/attempts/{attempt_id}`.
pub fn get_attempt(ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    let attempt = own_attempt(ctx, tx)?;
    let attempt_id = ctx.param("attempt_id");
    let answers: Map<String, Value> = stored_answers(tx, attempt_id)?
        .into_iter()
        .map(|(q, value, seq, _)| (q, json!({"value": value, "seq": seq})))
        .collect();
    let mut body = json!({
        "attempt_id": attempt_id,
        "exam_id": attempt.exam_id,
        "status": attempt.status,
        "started_at": attempt.started_at,
        "deadline_at": attempt.deadline_at,
        "answers": answers,
    });
    if let (Some(receipt), Some(object)) = (receipt(tx, attempt_id)?, body.as_object_mut()) {
        object.insert("receipt".into(), receipt);
    }
    Ok(Reply::ok(body))
}

#[derive(Debug, Deserialize)]
struct EventsBody {
    events: Vec<Event>,
}

#[derive(Debug, Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    at: String,
    #[serde(default)]
    attrs: Map<String, Value>,
}

/// `POST /v1/events`: telemetry, deduplicated by (student, event id).
pub fn post_events(ctx: &Ctx<'_>, tx: &Connection) -> Result<Reply, ApiError> {
    let body: EventsBody = parse_json(ctx.body)?;
    if body.events.len() > MAX_EVENTS {
        return Err(ApiError::bad_request(
            "batch_too_large",
            format!(
                "{} events; at most {MAX_EVENTS} per request",
                body.events.len()
            ),
        ));
    }
    for event in &body.events {
        // Characters, as the message (and the OpenAPI document's `maxLength`) say, not bytes.
        if event.id.is_empty() || event.id.chars().count() > MAX_EVENT_ID_CHARS {
            return Err(ApiError::validation(format!(
                "every event needs an id of 1 to {MAX_EVENT_ID_CHARS} characters"
            )));
        }
        if event.kind.is_empty() {
            return Err(ApiError::validation(format!(
                "event `{}` has no type",
                event.id
            )));
        }
        parse_time(&event.at, "at")?;
    }
    let received = crate::rfc3339(ctx.now);
    let mut accepted = 0;
    for event in &body.events {
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO events (id, user_id, type, at, attrs, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            (
                &event.id,
                ctx.principal.user_id(),
                &event.kind,
                &event.at,
                Value::Object(event.attrs.clone()).to_string(),
                &received,
            ),
        )?;
        // Security findings raise (or clear) alerts and feed the correlation rules, once
        // per event (a retried batch is not a second finding).
        if inserted > 0 && event.kind.starts_with("security.") {
            if let Some(user_id) = ctx.principal.user_id() {
                crate::security::on_event(ctx, tx, user_id, &event.kind, &event.attrs)?;
            }
        }
        // Minute summaries feed the fleet figures, once per machine and minute.
        if inserted > 0 && event.kind == crate::fleet::EVENT_TYPE {
            if let Some(user_id) = ctx.principal.user_id() {
                crate::fleet::on_minute(ctx, tx, user_id, &event.attrs)?;
            }
        }
        // A machine's readiness report replaces its older one.
        if inserted > 0 && event.kind == crate::readiness::EVENT_TYPE {
            if let Some(user_id) = ctx.principal.user_id() {
                crate::readiness::on_report(ctx, tx, user_id, &event.attrs)?;
            }
        }
        accepted += inserted;
    }
    Ok(Reply::new(
        StatusCode::ACCEPTED,
        json!({"accepted": accepted}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_against_their_question() {
        let q = |kind: &str| Question {
            id: "q".into(),
            kind: kind.into(),
            options: vec![QOption { id: "a".into() }, QOption { id: "b".into() }],
            max_length: Some(5),
        };
        let table = [
            ("single", json!("a"), true),
            ("single", json!("z"), false),
            ("single", json!(["a"]), false),
            ("multiple", json!(["a", "b"]), true),
            ("multiple", json!([]), true),
            ("multiple", json!(["a", "a"]), false),
            ("multiple", json!("a"), false),
            ("multiple", json!([1]), false),
            ("short", json!("hello"), true),
            ("short", json!("hello!"), false),
            ("essay", json!("xin chà"), false),
            ("essay", json!(5), false),
        ];
        for (kind, value, ok) in table {
            assert_eq!(check_value(&q(kind), &value).is_ok(), ok, "{kind} {value}");
        }
    }
}
