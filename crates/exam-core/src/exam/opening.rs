//! The packages kept on this computer, and opening a sealed one at the start of its exam.
//!
//! A sealed package is kept as it came (its questions ciphertext) from its download, days
//! ahead, until the exam opens. At the start it is opened in memory with the exam key — from
//! the server while the exam is open (a few seconds of network are enough), or from the start
//! code the proctor reads out in a room without a network — and the opened package is then
//! kept sealed with the student's own answer key ([`crate::keys`]): their attempt resumes
//! after a kill or a reboot with neither the network nor the code, and nobody else's key
//! opens it. The opened questions are never written in clear, logged or sent to a window
//! before the exam opens.
//!
//! Wrong start codes make the next try on this computer wait a little longer after the
//! first few ([`code_wait_ms`]): a typo costs nothing, guessing at the keyboard is slow.

use std::sync::Arc;

use rusqlite::{params, OptionalExtension};

use super::package::{self, Package};
use super::sealed::{ExamKey, Refused, SealedPackage};
use super::{local_now_ms, rfc3339, ExamError, ExamService};
use crate::owner::Owner;
use crate::queue::segment;
use crate::seal::Sealer;

/// Wrong start codes allowed on this computer before the next try has to wait.
const FREE_CODE_TRIES: i64 = 3;
/// The longest wait after wrong start codes.
const MAX_CODE_WAIT_MS: i64 = 30_000;

/// The package kept for an exam: in clear (an exam that was open when it was downloaded),
/// or sealed as it came.
pub(super) enum Kept {
    Open(Arc<Package>),
    Sealed(Arc<SealedPackage>),
}

impl Kept {
    pub(super) fn version(&self) -> u32 {
        match self {
            Self::Open(p) => p.version,
            Self::Sealed(s) => s.version,
        }
    }
}

/// Associated data of an opened package kept sealed: it opens only as this exam's version.
fn opened_ad(exam: &str, version: u32) -> Vec<u8> {
    format!("opened-package\0{exam}\0{version}").into_bytes()
}

/// How long the next start code must wait after `failures` wrong ones in a row, the last at
/// `last_at` (ms, this computer's clock), at `now`: nothing for the first few, then 2 s,
/// 4 s, 8 s … up to 30 s. A clock set back counts the whole wait from now.
pub fn code_wait_ms(failures: i64, last_at: i64, now: i64) -> i64 {
    if failures < FREE_CODE_TRIES {
        return 0;
    }
    let steps = u32::try_from(failures - FREE_CODE_TRIES + 1).unwrap_or(u32::MAX);
    let wait = 1000i64
        .checked_shl(steps.min(16))
        .unwrap_or(MAX_CODE_WAIT_MS)
        .min(MAX_CODE_WAIT_MS);
    if now < last_at {
        return wait;
    }
    (last_at + wait - now).max(0)
}

/// The key `POST /v1/exams/{id}/key` gives.
#[derive(serde::Deserialize)]
struct KeyReply {
    key_id: String,
    key: String,
}

impl ExamService {
    /// The package kept for `exam_id`, as it is on disk.
    pub(super) fn kept(&self, exam_id: &str) -> Result<Kept, ExamError> {
        let row: Option<(String, bool)> = self
            .inner
            .store
            .lock()
            .query_row(
                "SELECT package, sealed FROM exam_packages WHERE exam_id = ?1",
                params![exam_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let (text, sealed) = row.ok_or_else(|| ExamError::NotDownloaded(exam_id.to_string()))?;
        if sealed {
            return Ok(Kept::Sealed(Arc::new(SealedPackage::parse(
                exam_id,
                text.as_bytes(),
            )?)));
        }
        let package = Arc::new(Package::parse(exam_id, text.as_bytes())?);
        self.cache(None, package.clone());
        Ok(Kept::Open(package))
    }

    fn cached(&self, owner: Option<&Owner>, exam_id: &str, version: u32) -> Option<Arc<Package>> {
        self.inner
            .packages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(owner.cloned(), exam_id.to_string(), version))
            .cloned()
    }

    /// Forgets the opened sealed packages held in memory of everyone but `signed_in`: the
    /// questions of a student who left stay in this process no longer than on its disk.
    pub fn forget_opened_except(&self, signed_in: Option<&Owner>) {
        self.inner
            .packages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(owner, _, _), _| owner.is_none() || owner.as_ref() == signed_in);
    }

    /// Keeps an opened package in memory: one in clear for everyone (`owner` none), an
    /// opened sealed one for its student only.
    fn cache(&self, owner: Option<&Owner>, package: Arc<Package>) {
        self.inner
            .packages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                (owner.cloned(), package.id.clone(), package.version),
                package,
            );
    }

    /// The package `owner` takes `exam_id` with (a given version, or the one kept): in clear,
    /// or a sealed one they opened here. A sealed one not opened yet is
    /// [`ExamError::StartCodeNeeded`] — opening it is the start's business.
    pub(super) fn package(
        &self,
        owner: &Owner,
        exam_id: &str,
        version: Option<u32>,
    ) -> Result<Arc<Package>, ExamError> {
        if let Some(v) = version {
            if let Some(p) = self.cached(None, exam_id, v) {
                return Ok(p);
            }
            if let Some(p) = self.opened(owner, exam_id, v)? {
                return Ok(p);
            }
        }
        match self.kept(exam_id)? {
            Kept::Open(package) => {
                if version.is_some_and(|v| v != package.version) {
                    // Attempts are taken with the package they began with; a newer
                    // download replaced it. The questions are matched by id.
                    tracing::warn!(exam = exam_id, "attempt began with another package version");
                }
                Ok(package)
            }
            Kept::Sealed(sealed) => self.opened(owner, exam_id, sealed.version)?.ok_or_else(|| {
                ExamError::StartCodeNeeded {
                    exam_id: exam_id.to_string(),
                    title: sealed.title.clone(),
                }
            }),
        }
    }

    /// The sealed package of `exam_id` (version) as `owner` opened it here, if they did and
    /// their key opens it.
    fn opened(
        &self,
        owner: &Owner,
        exam_id: &str,
        version: u32,
    ) -> Result<Option<Arc<Package>>, ExamError> {
        if let Some(p) = self.cached(Some(owner), exam_id, version) {
            return Ok(Some(p));
        }
        let sealed: Option<Vec<u8>> = self
            .inner
            .store
            .lock()
            .query_row(
                "SELECT package FROM opened_packages
                 WHERE origin = ?1 AND username = ?2 AND exam_id = ?3 AND version = ?4",
                params![owner.origin, owner.student, exam_id, version],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let Some(key) = self.inner.keys.existing(owner)? else {
            tracing::warn!(
                exam = exam_id,
                "an opened exam package is kept here but the student's answer key is missing"
            );
            return Ok(None);
        };
        let package = match key
            .open(&opened_ad(exam_id, version), &sealed)
            .map_err(|e| e.to_string())
            .and_then(|plain| Package::parse(exam_id, &plain).map_err(|e| e.to_string()))
        {
            Ok(p) => Arc::new(p),
            Err(error) => {
                tracing::error!(exam = exam_id, %error, "an opened exam package kept here cannot be read");
                return Ok(None);
            }
        };
        self.cache(Some(owner), package.clone());
        Ok(Some(package))
    }

    /// Whether `owner` opened `exam_id` (version) here.
    pub(super) fn opened_here(
        &self,
        owner: &Owner,
        exam_id: &str,
        version: u32,
    ) -> Result<bool, ExamError> {
        self.inner
            .store
            .lock()
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM opened_packages
                 WHERE origin = ?1 AND username = ?2 AND exam_id = ?3 AND version = ?4)",
                params![owner.origin, owner.student, exam_id, version],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// Keeps `package`, just opened by `owner`, sealed with their answer key.
    fn keep_opened(&self, owner: &Owner, package: Arc<Package>) -> Result<(), ExamError> {
        let key = self.inner.keys.for_sealing(owner)?;
        let plain = serde_json::to_vec(package.as_ref())
            .map_err(|e| ExamError::Unexpected(format!("an opened package: {e}")))?;
        let sealed = key.seal(&opened_ad(&package.id, package.version), &plain);
        self.inner
            .store
            .lock()
            .execute(
                "INSERT OR REPLACE INTO opened_packages
                   (origin, username, exam_id, version, package, opened_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    owner.origin,
                    owner.student,
                    package.id,
                    package.version,
                    sealed,
                    rfc3339(self.server_now_ms())
                ],
            )
            .map_err(|e| self.err(e))?;
        self.cache(Some(owner), package);
        Ok(())
    }

    /// The package to start `exam_id` with: downloaded now if it is not here; a sealed one
    /// opened with the start `code` when one is given, else with the key from the server.
    pub(super) async fn ready_package(
        &self,
        owner: &Owner,
        exam_id: &str,
        code: Option<&str>,
    ) -> Result<Arc<Package>, ExamError> {
        let kept = match self.kept(exam_id) {
            Err(ExamError::NotDownloaded(_)) => {
                match self.download(exam_id).await {
                    Ok(_) => {}
                    Err(ExamError::Offline(_)) => {
                        return Err(ExamError::NotDownloaded(exam_id.to_string()))
                    }
                    Err(e) => return Err(e),
                }
                self.kept(exam_id)?
            }
            other => other?,
        };
        let sealed = match kept {
            Kept::Open(package) => return Ok(package),
            Kept::Sealed(sealed) => sealed,
        };
        if let Some(package) = self.opened(owner, exam_id, sealed.version)? {
            return Ok(package);
        }
        let package = match code {
            Some(code) => self.open_with_code(&sealed, code).await?,
            None => self.open_with_server_key(sealed).await?,
        };
        tracing::info!(
            exam = exam_id,
            version = package.version,
            "sealed exam package opened"
        );
        self.keep_opened(owner, package.clone())?;
        Ok(package)
    }

    /// Asks the server for the exam key (only given while the exam is open).
    async fn fetch_key(&self, exam_id: &str) -> Result<(String, ExamKey), ExamError> {
        let url = self.url(&format!("/v1/exams/{}/key", segment(exam_id)))?;
        let response = self
            .inner
            .auth
            .send_authorized(|c| {
                c.post(url.clone())
                    .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
            })
            .await?;
        if !response.status().is_success() {
            return Err(Self::refused(response).await);
        }
        let body = self.server_body(response, 64 * 1024).await?;
        let reply: KeyReply = serde_json::from_slice(&body).map_err(|e| {
            tracing::warn!(exam = exam_id, error = %e, "the exam key reply cannot be read");
            ExamError::Offline(crate::reason::Reason::UnreadableReply { status: 200 })
        })?;
        Ok((reply.key_id, ExamKey::from_base64(exam_id, &reply.key)?))
    }

    /// [`Self::fetch_key`], at the very opening: this computer's idea of the server's time
    /// (learnt from `Date` headers, whole seconds) may run up to a few seconds ahead, so an
    /// "exam not open" is asked again, a second apart, three times.
    async fn fetch_key_at_opening(&self, exam_id: &str) -> Result<(String, ExamKey), ExamError> {
        let mut tries = 0;
        loop {
            match self.fetch_key(exam_id).await {
                Err(ExamError::Refused(refusal))
                    if refusal.code.as_deref() == Some("exam_not_open") && tries < 3 =>
                {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                other => return other,
            }
        }
    }

    /// Opens `sealed` with the key from the server. A key for another version (the exam was
    /// sealed again: its start code changed) or a copy here that does not open is
    /// downloaded again, once. With the server out of reach: the start code is needed.
    async fn open_with_server_key(
        &self,
        mut sealed: Arc<SealedPackage>,
    ) -> Result<Arc<Package>, ExamError> {
        let exam_id = sealed.id.clone();
        for again in [false, true] {
            let (key_id, key) = match self.fetch_key_at_opening(&exam_id).await {
                Ok(key) => key,
                Err(ExamError::Offline(reason)) => {
                    tracing::info!(exam = %exam_id, %reason, "the exam key cannot be fetched; the start code is needed");
                    return Err(ExamError::StartCodeNeeded {
                        exam_id,
                        title: sealed.title.clone(),
                    });
                }
                Err(e) => return Err(e),
            };
            if key_id == sealed.sealed.key_id || again {
                match sealed.open(&key) {
                    Ok(package) => return Ok(Arc::new(package)),
                    Err(Refused::Bad(bad)) => return Err(bad.into()),
                    Err(Refused::DoesNotOpen) if again => {
                        tracing::error!(exam = %exam_id, "the exam package does not open with the key from the server");
                        return Err(ExamError::PackageDoesNotOpen {
                            exam_id,
                            title: sealed.title.clone(),
                        });
                    }
                    Err(Refused::DoesNotOpen) => {}
                }
            }
            if again {
                break;
            }
            tracing::warn!(exam = %exam_id, "the key from the server is for another copy of the package; downloading it again");
            match self.fetch_package(&exam_id, false).await {
                Ok(()) => {}
                Err(ExamError::Offline(_)) => {
                    return Err(ExamError::PackageDoesNotOpen {
                        exam_id,
                        title: sealed.title.clone(),
                    })
                }
                Err(e) => return Err(e),
            }
            sealed = match self.kept(&exam_id)? {
                Kept::Sealed(s) => s,
                Kept::Open(package) => return Ok(package),
            };
        }
        Err(ExamError::PackageDoesNotOpen {
            exam_id,
            title: sealed.title.clone(),
        })
    }

    /// Opens `sealed` with a start code, after the wait wrong codes earned on this computer.
    async fn open_with_code(
        &self,
        sealed: &Arc<SealedPackage>,
        code: &str,
    ) -> Result<Arc<Package>, ExamError> {
        let _one_at_a_time = self.inner.code_tries.lock().await;
        let (failures, last_at) = self.code_failures()?;
        let wait = code_wait_ms(failures, last_at, local_now_ms());
        if wait > 0 {
            return Err(ExamError::StartCodeWait {
                exam_id: sealed.id.clone(),
                retry_in_ms: u64::try_from(wait).unwrap_or(0),
            });
        }
        let (for_key, code) = (sealed.clone(), code.to_string());
        let key = tokio::task::spawn_blocking(move || for_key.key_from_code(&code))
            .await
            .map_err(|e| ExamError::Unexpected(format!("deriving the exam key: {e}")))??;
        match sealed.open(&key) {
            Ok(package) => {
                self.inner
                    .store
                    .lock()
                    .execute("DELETE FROM start_code_failures", [])
                    .map_err(|e| self.err(e))?;
                Ok(Arc::new(package))
            }
            Err(Refused::Bad(bad)) => Err(bad.into()),
            Err(Refused::DoesNotOpen) => {
                let now = local_now_ms();
                self.inner
                    .store
                    .lock()
                    .execute(
                        "INSERT INTO start_code_failures (id, failures, last_at) VALUES (1, 1, ?1)
                         ON CONFLICT (id) DO UPDATE SET failures = failures + 1, last_at = ?1",
                        params![now],
                    )
                    .map_err(|e| self.err(e))?;
                tracing::info!(exam = %sealed.id, failures = failures + 1, "a start code that does not open the exam was typed");
                Err(ExamError::StartCodeRefused {
                    exam_id: sealed.id.clone(),
                    title: sealed.title.clone(),
                    retry_in_ms: u64::try_from(code_wait_ms(failures + 1, now, now)).unwrap_or(0),
                })
            }
        }
    }

    /// Wrong start codes in a row on this computer, and when the last was typed.
    fn code_failures(&self) -> Result<(i64, i64), ExamError> {
        Ok(self
            .inner
            .store
            .lock()
            .query_row(
                "SELECT failures, last_at FROM start_code_failures WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?
            .unwrap_or((0, 0)))
    }

    /// Downloads `exam_id`'s package and keeps it unless it fails the checks (the one kept
    /// then stays). `revalidate`: ask with the kept ETag (`If-None-Match`), so an unchanged
    /// package is not sent again; without it the package is fetched whole (a copy here that
    /// does not open).
    pub(super) async fn fetch_package(
        &self,
        exam_id: &str,
        revalidate: bool,
    ) -> Result<(), ExamError> {
        let etag: Option<String> = if revalidate {
            self.inner
                .store
                .lock()
                .query_row(
                    "SELECT etag FROM exam_packages WHERE exam_id = ?1",
                    params![exam_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| self.err(e))?
                .flatten()
        } else {
            None
        };
        let url = self.url(&format!("/v1/exams/{}/package", segment(exam_id)))?;
        let response = self
            .inner
            .auth
            .send_authorized(|c| {
                let request = c.get(url.clone());
                match &etag {
                    Some(etag) => request.header(reqwest::header::IF_NONE_MATCH, etag),
                    None => request,
                }
            })
            .await?;
        let now = local_now_ms();
        if response.status() == reqwest::StatusCode::NOT_MODIFIED && etag.is_some() {
            self.observe_date(&response);
            self.inner
                .store
                .lock()
                .execute(
                    "UPDATE exam_packages SET checked_at = ?2 WHERE exam_id = ?1",
                    params![exam_id, now],
                )
                .map_err(|e| self.err(e))?;
            return Ok(());
        }
        if !response.status().is_success() {
            return Err(Self::refused(response).await);
        }
        let new_etag = response
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = self
            .server_body(response, package::MAX_PACKAGE_BYTES)
            .await?;
        // Checked before it is kept: a sealed one as far as it can be before it opens.
        let sealed = super::sealed::is_sealed(&body);
        let version = if sealed {
            SealedPackage::parse(exam_id, &body)?.version
        } else {
            Package::parse(exam_id, &body)?.version
        };
        let text = String::from_utf8_lossy(&body).into_owned();
        self.inner
            .store
            .lock()
            .execute(
                "INSERT INTO exam_packages (exam_id, version, etag, package, downloaded_at,
                                            checked_at, sealed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)
                 ON CONFLICT (exam_id) DO UPDATE SET version = ?2, etag = ?3, package = ?4,
                     downloaded_at = ?5, checked_at = ?5, sealed = ?6",
                params![exam_id, version, new_etag, text, now, sealed],
            )
            .map_err(|e| self.err(e))?;
        tracing::info!(exam = exam_id, version, sealed, "exam package downloaded");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::code_wait_ms;

    #[test]
    fn wrong_start_codes_cost_nothing_at_first_then_a_growing_wait_of_at_most_30_s() {
        let now = 1_000_000;
        assert_eq!(code_wait_ms(0, 0, now), 0);
        assert_eq!(code_wait_ms(2, now, now), 0);
        assert_eq!(code_wait_ms(3, now, now), 2_000);
        assert_eq!(code_wait_ms(4, now, now), 4_000);
        assert_eq!(code_wait_ms(5, now, now), 8_000);
        assert_eq!(code_wait_ms(7, now, now), 30_000);
        assert_eq!(code_wait_ms(1_000, now, now), 30_000);
        // The wait runs out.
        assert_eq!(code_wait_ms(4, now - 3_000, now), 1_000);
        assert_eq!(code_wait_ms(4, now - 9_000, now), 0);
        // A clock set back does not make it shorter, nor endless.
        assert_eq!(code_wait_ms(4, now + 3_600_000, now), 4_000);
    }
}
