//! One answer key per student of each server, and no key left behind.
//!
//! Lab computers are shared: student after student uses one OS account, so one key for the
//! account would open everyone's answers for whoever sits down next. Each (server, student)
//! has a key of its own in the OS keychain (`<origin> answer-key <student>`); what the app
//! shows and sends of a student is opened with that student's key only.
//!
//! A key lives as long as its student's data needs it:
//! - made when the student first saves something here — and never while sealed data of
//!   theirs is already here (a key missing from the keychain, after a profile reset or before
//!   a roaming profile has loaded, is reported: [`SealError::KeyMissing`]; a new key would
//!   make the old data unreadable for good);
//! - kept while the student is signed in, has work waiting or refused here, or has an attempt
//!   here that is still in progress before its deadline (so they can come back to it);
//! - otherwise removed ([`AnswerKeys::retire`]) together with everything of theirs sealed
//!   under it and their attempts, answers and exam list on this computer: after a student
//!   left and their work was delivered, neither the disk nor the keychain holds anything
//!   that opens their answers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::params;

use crate::keychain::{KeychainError, SecretStore};
use crate::owner::Owner;
use crate::queue::Keys;
use crate::seal::{AnswerKey, SealError, Sealer, KEYCHAIN_ENTRY};
use crate::store::{Store, StoreError};

/// How long "this student has no key here" is believed before the keychain is asked again.
const MISSING_FOR: Duration = Duration::from_secs(5);

/// The keychain entry of `owner`'s answer key.
pub fn entry_of(owner: &Owner) -> String {
    format!("{} answer-key {}", owner.origin, owner.student)
}

enum Known {
    Key(Arc<AnswerKey>),
    Missing(Instant),
}

/// The answer keys of the students of this computer.
#[derive(Clone)]
pub struct AnswerKeys {
    inner: Arc<Inner>,
}

struct Inner {
    secrets: Arc<dyn SecretStore>,
    store: Arc<Store>,
    known: Mutex<HashMap<Owner, Known>>,
    /// Grows whenever a key is stored or forgotten: a "missing" learnt by a look that began
    /// before is not believed (the key may have been stored in between).
    generation: std::sync::atomic::AtomicU64,
}

/// What [`AnswerKeys::retire`] removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Retired {
    pub attempts: u64,
    pub answers: u64,
    pub queued_bodies: u64,
}

impl AnswerKeys {
    pub fn new(secrets: Arc<dyn SecretStore>, store: Arc<Store>) -> Self {
        Self {
            inner: Arc::new(Inner {
                secrets,
                store,
                known: Mutex::new(HashMap::new()),
                generation: std::sync::atomic::AtomicU64::new(0),
            }),
        }
    }

    /// A keychain call that gives up after [`crate::auth::KEYCHAIN_TIMEOUT`]: a keychain that
    /// hangs (a locked collection waiting for a prompt nobody sees) is an error to report,
    /// not a frozen exam screen. (The call itself finishes on its own thread.)
    fn keychain<T: Send + 'static>(
        &self,
        call: impl FnOnce(&dyn SecretStore) -> Result<T, KeychainError> + Send + 'static,
    ) -> Result<T, SealError> {
        let secrets = self.inner.secrets.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("keychain".into())
            .spawn(move || {
                let _ = tx.send(call(secrets.as_ref()));
            })
            .map_err(|e| SealError::Keychain(KeychainError::Unavailable(e.to_string())))?;
        match rx.recv_timeout(crate::auth::KEYCHAIN_TIMEOUT) {
            Ok(result) => Ok(result?),
            Err(_) => Err(SealError::Keychain(KeychainError::Unavailable(format!(
                "it did not answer within {} s",
                crate::auth::KEYCHAIN_TIMEOUT.as_secs()
            )))),
        }
    }

    fn generation(&self) -> u64 {
        self.inner
            .generation
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Forgets what was learnt of `owner`'s key (it was stored or removed just now).
    fn forget(&self, owner: &Owner) {
        self.inner
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.known().remove(owner);
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<Owner, Known>> {
        self.inner.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `owner`'s key when it is on this computer; never made here.
    pub fn existing(&self, owner: &Owner) -> Result<Option<Arc<AnswerKey>>, SealError> {
        match self.known().get(owner) {
            Some(Known::Key(key)) => return Ok(Some(key.clone())),
            Some(Known::Missing(since)) if since.elapsed() < MISSING_FOR => return Ok(None),
            _ => {}
        }
        let entry = entry_of(owner);
        let began = self.generation();
        let found = self
            .keychain(move |secrets| secrets.get(&entry))?
            .map(|stored| AnswerKey::decode(&stored).map(Arc::new))
            .transpose()?;
        let mut known = self.known();
        match &found {
            Some(key) => {
                known.insert(owner.clone(), Known::Key(key.clone()));
            }
            // Only if no key was stored or forgotten while the keychain was asked.
            None if self.generation() == began => {
                known.insert(owner.clone(), Known::Missing(Instant::now()));
            }
            None => {}
        }
        Ok(found)
    }

    /// The key to seal `owner`'s new data with: theirs, or a new one when nothing of theirs
    /// sealed is on this computer. With sealed data here and no key, [`SealError::KeyMissing`]
    /// — a new key would leave that data unreadable for good.
    pub fn for_sealing(&self, owner: &Owner) -> Result<Arc<AnswerKey>, SealError> {
        self.known().remove(owner); // asked for by the student: look again now
        if let Some(key) = self.existing(owner)? {
            return Ok(key);
        }
        let sealed = self
            .sealed_count(owner)
            .map_err(|e| SealError::Store(e.to_string()))?;
        if sealed > 0 {
            tracing::error!(
                sealed,
                "a student's answer key is missing from the OS keychain while answers sealed \
                 with it are on this computer; no new key is made and nothing is changed"
            );
            return Err(SealError::KeyMissing { sealed });
        }
        let (key, encoded) = AnswerKey::generate();
        let entry = entry_of(owner);
        self.keychain(move |secrets| secrets.set(&entry, &encoded))?;
        let key = Arc::new(key);
        self.forget(owner);
        self.known().insert(owner.clone(), Known::Key(key.clone()));
        tracing::info!("a new answer key for a student was stored in the OS keychain");
        Ok(key)
    }

    /// Forgets what was learnt of the keychain, so the next use asks it again (after IT
    /// restored a profile, say).
    pub fn recheck(&self) {
        self.inner
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.known()
            .retain(|_, known| matches!(known, Known::Key(_)));
    }

    /// How many values of `owner` sealed with their key are on this computer: saved answers
    /// and queued answer saves (waiting, in flight, refused, or sent but kept). Saves still
    /// in the inbox are not counted: every start moves them into the queue first.
    pub fn sealed_count(&self, owner: &Owner) -> Result<u64, StoreError> {
        let conn = self.inner.store.lock();
        conn.query_row(
            "SELECT
               (SELECT COUNT(*) FROM answers a JOIN attempts t ON t.attempt_id = a.attempt_id
                 WHERE t.origin = ?1 AND t.username = ?2 AND substr(a.value, 1, 1) = x'00')
             + (SELECT COUNT(*) FROM queue
                 WHERE origin = ?1 AND student = ?2 AND substr(body, 1, 1) = x'00')",
            params![owner.origin, owner.student],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| u64::try_from(n).unwrap_or(0))
        .map_err(|e| self.inner.store.error(e))
    }

    /// Whether `owner`'s data must stay on this computer (the caller knows they are not
    /// signed in): work waiting or refused, an attempt in progress before its deadline, or a
    /// submission whose receipt has not been read back yet.
    pub fn still_needed(&self, owner: &Owner, now_ms: i64) -> Result<bool, StoreError> {
        let now = crate::clock::rfc3339(now_ms);
        let conn = self.inner.store.lock();
        conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM queue WHERE origin = ?1 AND student = ?2
                              AND status IN ('pending', 'in_flight', 'dead'))
                 OR EXISTS (SELECT 1 FROM inbox WHERE origin = ?1 AND student = ?2)
                 OR EXISTS (SELECT 1 FROM attempts WHERE origin = ?1 AND username = ?2
                              AND ((status = 'in_progress' AND deadline_at > ?3)
                                   OR (status = 'submitted' AND receipt_id IS NULL
                                       AND submit_error IS NULL)))",
            params![owner.origin, owner.student, now],
            |r| r.get(0),
        )
        .map_err(|e| self.inner.store.error(e))
    }

    /// Everyone who has data on this computer.
    pub fn owners_with_data(&self) -> Result<Vec<Owner>, StoreError> {
        let conn = self.inner.store.lock();
        let mut stmt = conn
            .prepare(
                "SELECT origin, username FROM attempts WHERE origin IS NOT NULL
                 UNION SELECT origin, student FROM queue
                       WHERE origin IS NOT NULL AND student IS NOT NULL
                         AND (status <> 'done' OR body IS NOT NULL OR response_body IS NOT NULL)
                 UNION SELECT origin, username FROM exam_list WHERE origin IS NOT NULL
                 UNION SELECT origin, username FROM opened_packages",
            )
            .map_err(|e| self.inner.store.error(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Owner::new(r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.inner.store.error(e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| self.inner.store.error(e))
    }

    /// Removes `owner`'s key from the keychain and everything of theirs it opened from the
    /// database (attempts, answers, exam list, exam packages they opened, the bodies of sent
    /// saves) — in that order, so
    /// a failure in between leaves data without a key (unreadable: the point) rather than a
    /// key without a reason to exist. The caller has checked [`AnswerKeys::still_needed`].
    pub fn retire(&self, owner: &Owner) -> Result<Retired, SealError> {
        let entry = entry_of(owner);
        self.keychain(move |secrets| secrets.delete(&entry))?;
        self.forget(owner);
        let store_error =
            |e: rusqlite::Error| SealError::Store(self.inner.store.error(e).to_string());
        let mut conn = self.inner.store.lock();
        let tx = conn.transaction().map_err(store_error)?;
        let answers = tx
            .execute(
                "DELETE FROM answers WHERE attempt_id IN
                   (SELECT attempt_id FROM attempts WHERE origin = ?1 AND username = ?2)",
                params![owner.origin, owner.student],
            )
            .map_err(store_error)?;
        let attempts = tx
            .execute(
                "DELETE FROM attempts WHERE origin = ?1 AND username = ?2",
                params![owner.origin, owner.student],
            )
            .map_err(store_error)?;
        tx.execute(
            "DELETE FROM exam_list WHERE origin = ?1 AND username = ?2",
            params![owner.origin, owner.student],
        )
        .map_err(store_error)?;
        tx.execute(
            "DELETE FROM opened_packages WHERE origin = ?1 AND username = ?2",
            params![owner.origin, owner.student],
        )
        .map_err(store_error)?;
        let queued_bodies = tx
            .execute(
                "UPDATE queue SET body = NULL, response_body = NULL
                 WHERE origin = ?1 AND student = ?2 AND status = 'done'
                   AND (body IS NOT NULL OR response_body IS NOT NULL)",
                params![owner.origin, owner.student],
            )
            .map_err(store_error)?;
        tx.commit().map_err(store_error)?;
        let retired = Retired {
            attempts: attempts as u64,
            answers: answers as u64,
            queued_bodies: queued_bodies as u64,
        };
        tracing::info!(
            ?retired,
            "a student who left has nothing waiting here: their key and data are removed"
        );
        Ok(retired)
    }

    /// Retires `owner` unless their data is still needed; whether they were retired.
    pub fn retire_if_departed(&self, owner: &Owner, now_ms: i64) -> Result<bool, SealError> {
        if self
            .still_needed(owner, now_ms)
            .map_err(|e| SealError::Store(e.to_string()))?
        {
            return Ok(false);
        }
        self.retire(owner).map(|_| true)
    }

    /// Retires every student with data here who is not `signed_in` and whose data is no
    /// longer needed; how many were retired.
    pub fn retire_departed(
        &self,
        signed_in: Option<&Owner>,
        now_ms: i64,
    ) -> Result<u32, SealError> {
        let mut retired = 0;
        for owner in self
            .owners_with_data()
            .map_err(|e| SealError::Store(e.to_string()))?
        {
            if Some(&owner) != signed_in && self.retire_if_departed(&owner, now_ms)? {
                retired += 1;
            }
        }
        Ok(retired)
    }

    /// Earlier versions kept one key for every student of the OS account. The data sealed
    /// with it is kept readable: every student with such data gets a copy as their own key,
    /// then the shared entry is removed (or kept, if a copy could not be stored).
    pub fn adopt_legacy(&self) -> Result<(), SealError> {
        let Some(shared) = self.inner.secrets.get(KEYCHAIN_ENTRY)? else {
            return Ok(());
        };
        AnswerKey::decode(&shared)?;
        let owners = self
            .owners_with_data()
            .map_err(|e| SealError::Store(e.to_string()))?;
        for owner in &owners {
            let sealed = self
                .sealed_count(owner)
                .map_err(|e| SealError::Store(e.to_string()))?;
            if sealed > 0 && self.inner.secrets.get(&entry_of(owner))?.is_none() {
                self.inner.secrets.set(&entry_of(owner), &shared)?;
                // Whoever looked before now finds it.
                self.forget(owner);
            }
        }
        self.inner.secrets.delete(KEYCHAIN_ENTRY)?;
        tracing::info!(
            students = owners.len(),
            "the shared answer key of an earlier version was split into one key per student"
        );
        Ok(())
    }
}

impl Keys for AnswerKeys {
    fn sealer_to_seal(&self, owner: &Owner) -> Result<Arc<dyn Sealer>, SealError> {
        if let Some(Known::Key(key)) = self.known().get(owner) {
            return Ok(key.clone());
        }
        Ok(self.for_sealing(owner)?)
    }

    fn sealer_for(&self, owner: &Owner) -> Option<Arc<dyn Sealer>> {
        match self.existing(owner) {
            Ok(Some(key)) => Some(key),
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(%error, "cannot read a student's answer key");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    /// A keychain that never answers (a locked collection waiting for a prompt).
    struct Hangs;

    impl SecretStore for Hangs {
        fn get(&self, _key: &str) -> Result<Option<Secret<String>>, KeychainError> {
            std::thread::sleep(crate::auth::KEYCHAIN_TIMEOUT * 2);
            Ok(None)
        }
        fn set(&self, _key: &str, _value: &Secret<String>) -> Result<(), KeychainError> {
            std::thread::sleep(crate::auth::KEYCHAIN_TIMEOUT * 2);
            Ok(())
        }
        fn delete(&self, _key: &str) -> Result<(), KeychainError> {
            Ok(())
        }
    }

    #[test]
    fn a_keychain_that_never_answers_is_an_error_not_a_frozen_exam() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_in(dir.path()).unwrap());
        let keys = AnswerKeys::new(Arc::new(Hangs), store);
        let owner = Owner::new("https://exam.example", "student1");
        match keys.for_sealing(&owner) {
            Err(SealError::Keychain(error)) => {
                assert!(error.to_string().contains("did not answer"), "{error}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn keys_are_made_once_per_student_and_differ_between_students() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_in(dir.path()).unwrap());
        let secrets = Arc::new(crate::testing::MemoryStore::default());
        let keys = AnswerKeys::new(secrets.clone(), store);
        let a = Owner::new("https://exam.example", "student1");
        let b = Owner::new("https://exam.example", "student2");
        let sealed = keys.for_sealing(&a).unwrap().seal(b"ad", b"A's answer");
        assert_eq!(
            keys.for_sealing(&a).unwrap().open(b"ad", &sealed).unwrap(),
            b"A's answer"
        );
        assert!(keys.for_sealing(&b).unwrap().open(b"ad", &sealed).is_err());
        assert_eq!(
            secrets.keys(),
            vec![entry_of(&a), entry_of(&b)],
            "one entry per student, named for them"
        );
    }
}
