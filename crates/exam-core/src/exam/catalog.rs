//! The exam list and downloaded packages: fetched when the server can be reached, kept on
//! this computer for when it cannot (packages checked again with `If-None-Match`), and the
//! server's clock learned from the replies' `Date` headers.

use crate::clock::since_boot_ms;
use std::time::UNIX_EPOCH;

use rusqlite::params;

use super::opening::Kept;
use exam_contract::rules;

use super::{
    local_now_ms, parse_ms, rfc3339, ExamError, ExamInfo, ExamList, ExamService, ExamSummary,
    Opening, StartBlock,
};
use crate::auth::AuthError;
use crate::owner::Owner;
use crate::reason::{Reason, Refusal};

impl ExamService {
    /// Learns the server's clock from a response's `Date` header.
    pub(super) fn observe_date(&self, response: &reqwest::Response) {
        self.observe_date_of(response.headers());
    }

    fn observe_date_of(&self, headers: &reqwest::header::HeaderMap) {
        let Some(date) = headers
            .get(reqwest::header::DATE)
            .and_then(|d| d.to_str().ok())
            .and_then(|d| httpdate::parse_http_date(d).ok())
        else {
            return;
        };
        let Ok(server) = date.duration_since(UNIX_EPOCH) else {
            return;
        };
        // The header has whole seconds: the middle of that second is the best guess.
        let server_ms = i64::try_from(server.as_millis()).unwrap_or(0) + 500;
        let wall = local_now_ms();
        let offset = server_ms - wall;
        {
            let mut clock = self.inner.clock.lock().unwrap_or_else(|p| p.into_inner());
            clock.0.learn(server_ms, wall, since_boot_ms());
            clock.1 = false;
        }
        let _ = self.inner.store.lock().execute(
            "INSERT INTO server_clock (id, offset_ms, seen_at) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET offset_ms = ?1, seen_at = ?2",
            params![offset, local_now_ms()],
        );
    }

    pub(super) fn url(&self, path: &str) -> Result<url::Url, ExamError> {
        self.inner.auth.server().join(path).map_err(|e| {
            tracing::warn!(path, error = %e, "cannot make a URL of the server address");
            ExamError::Offline(Reason::BadAddress)
        })
    }

    /// Reads the server's reply up to `max` bytes; one that is not the server's (a portal's
    /// page, a proxy's) is reported to the network monitor and read as "offline", and its
    /// `Date` is not believed.
    pub(super) async fn server_body(
        &self,
        response: reqwest::Response,
        max: usize,
    ) -> Result<Vec<u8>, ExamError> {
        let status = response.status();
        let headers = response.headers().clone();
        let body = Self::body(response, max).await?;
        if let Some(interception) = crate::http::judge(status, &headers, &body) {
            self.inner.auth.http().report_interception(&interception);
            return Err(ExamError::Offline(interception.reason()));
        }
        self.observe_date_of(&headers);
        Ok(body)
    }

    /// Reads a response body up to `max` bytes.
    async fn body(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, ExamError> {
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| ExamError::Offline(crate::http::describe(&e)))?
        {
            if body.len() + chunk.len() > max {
                return Err(ExamError::Offline(Reason::ReplyTooLarge {
                    limit: u32::try_from(max).unwrap_or(u32::MAX),
                }));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    pub(super) async fn refused(response: reqwest::Response) -> ExamError {
        let status = response.status().as_u16();
        let body = Self::body(response, 64 * 1024).await.unwrap_or_default();
        ExamError::Refused(Refusal::from_reply(
            Some(status),
            Some(&String::from_utf8_lossy(&body)),
            None,
        ))
    }

    /// The exams the student may take: from the server, or the list kept on this computer
    /// when the server cannot be reached (or sent a list that cannot be read).
    pub async fn list(&self) -> Result<ExamList, ExamError> {
        let owner = self.owner()?;
        let url = self.url("/v1/exams")?;
        let offline_reason = match self
            .inner
            .auth
            .send_authorized(|c| c.get(url.clone()))
            .await
        {
            Ok(response) if response.status().is_success() => {
                match self.server_body(response, 4 * 1024 * 1024).await {
                    Ok(body) => match serde_json::from_slice::<Vec<ExamInfo>>(&body) {
                        Ok(exams) => {
                            self.keep_list(&owner, &exams)?;
                            None
                        }
                        Err(e) => {
                            tracing::warn!(
                                line = e.line(),
                                column = e.column(),
                                error = %e,
                                "the exam list from the server cannot be read; showing the kept one"
                            );
                            Some(Reason::UnreadableReply { status: 200 })
                        }
                    },
                    Err(ExamError::Offline(reason)) => Some(reason),
                    Err(e) => return Err(e),
                }
            }
            Ok(response) => return Err(Self::refused(response).await),
            Err(AuthError::Offline(reason)) => Some(reason),
            Err(e) => return Err(e.into()),
        };
        let (exams, fetched_at) = self.kept_list(&owner)?;
        let now = self.server_now_ms();
        let changes_in_ms = exams
            .iter()
            .flat_map(|e| {
                [
                    parse_ms(&e.opens_at),
                    parse_ms(&e.closes_at),
                    e.download_from.as_deref().and_then(parse_ms),
                ]
            })
            .flatten()
            .filter(|t| *t > now)
            .min()
            .map(|t| (t - now) as f64);
        Ok(ExamList {
            exams,
            fetched_at: fetched_at.map(rfc3339),
            offline_reason,
            changes_in_ms,
        })
    }

    /// Why a new attempt of `exam` may not start now, by the shared rule
    /// ([`exam_contract::rules::may_start`]) on the server's clock; none for an exam with an
    /// attempt on this computer (it can always be reopened) or times that cannot be read.
    pub(super) fn start_block(&self, exam: &ExamSummary) -> Option<StartBlock> {
        if exam.active_attempt_id.is_some() {
            return None;
        }
        let opens = parse_ms(&exam.opens_at)?;
        let closes = parse_ms(&exam.closes_at)?;
        rules::may_start(self.server_now_ms(), opens, closes, exam.submitted)
            .err()
            .map(|refusal| match refusal {
                rules::StartRefusal::AlreadySubmitted => StartBlock::AlreadySubmitted,
                rules::StartRefusal::NotYetOpen { .. } => StartBlock::NotYetOpen {
                    opens_at: exam.opens_at.clone(),
                },
                rules::StartRefusal::Closed { .. } => StartBlock::Closed {
                    closes_at: exam.closes_at.clone(),
                },
            })
    }

    fn keep_list(&self, owner: &Owner, exams: &[ExamInfo]) -> Result<(), ExamError> {
        let now = local_now_ms();
        let mut conn = self.inner.store.lock();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.execute(
            "DELETE FROM exam_list WHERE username = ?1 AND (origin = ?2 OR origin IS NULL)",
            params![owner.student, owner.origin],
        )
        .map_err(|e| self.err(e))?;
        for (i, exam) in exams.iter().enumerate() {
            let summary = serde_json::to_string(exam).unwrap_or_default();
            tx.execute(
                "INSERT OR REPLACE INTO exam_list (username, exam_id, position, summary, fetched_at,
                                                   origin)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![owner.student, exam.id, i as i64, summary, now, owner.origin],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    pub(super) fn kept_list(
        &self,
        owner: &Owner,
    ) -> Result<(Vec<ExamSummary>, Option<i64>), ExamError> {
        let conn = self.inner.store.lock();
        let mut stmt = conn
            .prepare(
                "SELECT l.summary, l.fetched_at, p.version,
                        (SELECT a.attempt_id FROM attempts a
                          WHERE a.exam_id = l.exam_id AND a.username = l.username
                            AND a.origin = l.origin AND a.status IN ('in_progress', 'submitted')
                          ORDER BY a.rowid DESC LIMIT 1),
                        EXISTS (SELECT 1 FROM attempts a WHERE a.exam_id = l.exam_id
                                  AND a.username = l.username AND a.origin = l.origin
                                  AND a.status <> 'in_progress'),
                        EXISTS (SELECT 1 FROM opened_packages o WHERE o.exam_id = l.exam_id
                                  AND o.username = l.username AND o.origin = l.origin
                                  AND o.version = p.version)
                 FROM exam_list l LEFT JOIN exam_packages p ON p.exam_id = l.exam_id
                 WHERE l.origin = ?1 AND l.username = ?2 ORDER BY l.position",
            )
            .map_err(|e| self.err(e))?;
        let mut fetched = None;
        let rows = stmt
            .query_map(params![owner.origin, owner.student], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<u32>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, bool>(4)?,
                    r.get::<_, bool>(5)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let now = self.server_now_ms();
        let mut out = Vec::new();
        for row in rows {
            let (summary, fetched_at, downloaded, active, submitted, opened) =
                row.map_err(|e| self.err(e))?;
            fetched = Some(fetched_at);
            let Ok(info) = serde_json::from_str::<ExamInfo>(&summary) else {
                continue;
            };
            let opens_in_ms = parse_ms(&info.opens_at)
                .filter(|t| *t > now)
                .map(|t| (t - now) as f64);
            let mut summary = ExamSummary {
                update_available: downloaded.is_some_and(|v| v != info.version),
                downloaded_version: downloaded,
                active_attempt_id: active,
                submitted,
                id: info.id,
                title: info.title,
                version: info.version,
                opens_at: info.opens_at,
                closes_at: info.closes_at,
                duration_s: info.duration_s,
                question_count: info.question_count,
                start_block: None,
                sealed: info.sealed,
                download_from: info
                    .available_from
                    .filter(|from| parse_ms(from).is_some_and(|t| t > now)),
                opens_in_ms,
                opening: if info.sealed && !opened {
                    Opening::KeyOrStartCode
                } else {
                    Opening::Nothing
                },
                version_needed: super::VersionNeeded::of(info.min_client_version.as_deref()),
                min_client_version: info.min_client_version,
            };
            summary.start_block = self.start_block(&summary);
            out.push(summary);
        }
        Ok((out, fetched))
    }

    /// Downloads an exam's package for offline use (or confirms the one kept is current:
    /// `If-None-Match`). A package that fails the checks is refused and the one kept stays.
    /// A sealed package is kept as it came, its questions unreadable until the exam opens. A
    /// copy here that fails its checks (its readiness card says so) is fetched whole again:
    /// with its ETag the server would say it has not changed.
    pub async fn download(&self, exam_id: &str) -> Result<ExamSummary, ExamError> {
        let owner = self.owner()?;
        let revalidate = match self.kept(exam_id) {
            Ok(Kept::Sealed(sealed)) => sealed.check_seal().is_ok(),
            Err(ExamError::BadPackage(_)) => false,
            Ok(Kept::Open(_)) | Err(_) => true,
        };
        self.fetch_package(exam_id, revalidate).await?;
        let (exams, _) = self.kept_list(&owner)?;
        if let Some(summary) = exams.into_iter().find(|e| e.id == exam_id) {
            return Ok(summary);
        }
        // Not in the list kept here: what the package itself says.
        let kept = self.kept(exam_id)?;
        let (title, duration_s, question_count, sealed) = match &kept {
            Kept::Open(p) => (
                p.title.clone(),
                p.duration_s,
                u32::try_from(p.questions.len()).unwrap_or(u32::MAX),
                false,
            ),
            Kept::Sealed(s) => (s.title.clone(), s.duration_s, s.question_count, true),
        };
        Ok(ExamSummary {
            id: exam_id.to_string(),
            title,
            version: kept.version(),
            opens_at: String::new(),
            closes_at: String::new(),
            duration_s,
            question_count,
            downloaded_version: Some(kept.version()),
            update_available: false,
            active_attempt_id: None,
            submitted: false,
            start_block: None,
            sealed,
            download_from: None,
            opens_in_ms: None,
            opening: if sealed && self.opened_here(&owner, exam_id, kept.version())? {
                Opening::Nothing
            } else if sealed {
                Opening::KeyOrStartCode
            } else {
                Opening::Nothing
            },
            min_client_version: None,
            version_needed: None,
        })
    }
}
