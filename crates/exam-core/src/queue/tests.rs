use std::sync::atomic::Ordering;

use serde_json::json;

use super::*;
use crate::testing::ManualClock;

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    clock: Arc<ManualClock>,
    queue: Queue,
}

fn fixture(limits: Limits) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exam-desktop.db");
    let clock = Arc::new(ManualClock::default());
    clock.0.store(1_000_000, Ordering::SeqCst);
    let queue =
        Queue::open_with(Arc::new(Store::open(&path).unwrap()), limits, clock.clone()).unwrap();
    Fixture {
        _dir: dir,
        path,
        clock,
        queue,
    }
}

impl Fixture {
    fn reopen(&mut self) {
        self.queue = Queue::open_with(
            Arc::new(Store::open(&self.path).unwrap()),
            Limits::default(),
            self.clock.clone(),
        )
        .unwrap();
    }
}

/// Undoes migrations 9 (fair time), 8 (outages reported), 7 (security reports), 6 (sealed packages), 5 (retry
/// clock) and 4 (owners), as a database of schema 3 was.
fn rewind_to_schema_3(queue: &Queue) {
    let conn = queue.store().lock();
    conn.execute_batch(
        "DROP TABLE app_downtime; ALTER TABLE attempts DROP COLUMN alive_at_ms;
         DROP INDEX outages_unreported; ALTER TABLE outages DROP COLUMN reported;
         DROP TABLE security_reports; DROP TABLE activity_baselines;
         DROP TABLE opened_packages; DROP TABLE start_code_failures;
         ALTER TABLE exam_packages DROP COLUMN sealed;
         ALTER TABLE queue DROP COLUMN scheduled_at;
         DROP INDEX queue_owner_ready;
         ALTER TABLE queue DROP COLUMN origin; ALTER TABLE queue DROP COLUMN student;
         ALTER TABLE inbox DROP COLUMN origin; ALTER TABLE inbox DROP COLUMN student;
         ALTER TABLE attempts DROP COLUMN origin; ALTER TABLE exam_list DROP COLUMN origin;
         ALTER TABLE outages DROP COLUMN origin; ALTER TABLE outages DROP COLUMN student;",
    )
    .unwrap();
    conn.pragma_update(None, "user_version", 3).unwrap();
}

#[test]
fn work_kept_by_an_earlier_version_belongs_to_the_student_of_its_attempt() {
    let mut f = fixture(Limits::default());
    let a = crate::owner::Owner::new("https://exam.example", "student1");
    let b = crate::owner::Owner::new("https://exam.example", "student2");
    for (attempt, user) in [("a1", "student1"), ("b1", "student2")] {
        f.queue
            .store()
            .lock()
            .execute(
                "INSERT INTO attempts (attempt_id, exam_id, username, exam_version, started_at,
                                       deadline_at)
                 VALUES (?1, 'e', ?2, 1, 'x', 'y')",
                params![attempt, user],
            )
            .unwrap();
    }
    // Saved by the earlier version: no owner on the entries.
    let a_saves = [
        f.queue.enqueue(answer("a1", "q1", "A")).unwrap(),
        f.queue.enqueue(answer("a1", "q2", "A")).unwrap(),
    ];
    let b_save = f.queue.enqueue(answer("b1", "q1", "B")).unwrap();
    let orphan = f
        .queue
        .enqueue(NewEntry::telemetry(json!([{"id": "t"}])))
        .unwrap();
    f.queue.flush().unwrap();
    // One more save still in the inbox when the earlier version stopped.
    let in_inbox = f.queue.enqueue(answer("a1", "q3", "A")).unwrap();
    rewind_to_schema_3(&f.queue);
    f.reopen();
    assert!(f.queue.adopt_unowned("https://exam.example").unwrap() > 0);

    let for_a: Vec<i64> = f
        .queue
        .claim_for(&a, 10, u64::MAX)
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    let mut expected: Vec<i64> = a_saves.iter().map(|e| e.id).collect();
    expected.push(in_inbox.id);
    assert_eq!(for_a, expected);
    let for_b: Vec<i64> = f
        .queue
        .claim_for(&b, 10, u64::MAX)
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(for_b, vec![b_save.id]);
    // Telemetry of an earlier version belongs to nobody known: never sent for anyone, and
    // not counted as anyone's waiting work (telemetry is not work).
    let waiting = f.queue.waiting_by_owner().unwrap();
    assert!(
        waiting.iter().all(|(owner, _)| owner.is_some()),
        "{waiting:?}"
    );
    assert_eq!(f.queue.status_of(orphan.id).unwrap(), Some(Status::Pending));
}

#[test]
fn one_students_entries_are_claimed_only_for_that_student() {
    let f = fixture(Limits::default());
    let a = crate::owner::Owner::new("https://exam.example", "student1");
    let b = crate::owner::Owner::new("https://exam.example", "student2");
    let other_server = crate::owner::Owner::new("https://other.example", "student1");
    // One group with two owners is written as one inbox row per owner.
    let saved = f
        .queue
        .enqueue_many(vec![
            answer("a1", "q1", "A").owned_by(&a),
            answer("b1", "q1", "B").owned_by(&b),
            answer("a1", "q2", "A").owned_by(&a),
        ])
        .unwrap();
    assert_eq!(
        f.queue.pending_owners().unwrap(),
        vec![a.clone(), b.clone()]
    );
    let ids = |claimed: Vec<Claimed>| claimed.iter().map(|c| c.id).collect::<Vec<_>>();
    assert!(f
        .queue
        .claim_for(&other_server, 10, u64::MAX)
        .unwrap()
        .is_empty());
    assert_eq!(
        ids(f.queue.claim_for(&a, 10, u64::MAX).unwrap()),
        vec![saved[0].id, saved[2].id]
    );
    assert_eq!(
        ids(f.queue.claim_for(&b, 10, u64::MAX).unwrap()),
        vec![saved[1].id]
    );
    assert_eq!(f.queue.next_due_ms_for(&a).unwrap(), None);
    // Claimed (in flight): nobody has entries waiting to be sent any more.
    assert!(f.queue.pending_owners().unwrap().is_empty());
}

fn answer(attempt: &str, question: &str, value: &str) -> NewEntry {
    NewEntry::answer(attempt, question, json!(value), "2026-11-28T10:00:00Z")
}

fn done() -> Outcome {
    Outcome::Done {
        status: 200,
        body: "{}".into(),
    }
}

#[test]
fn a_stream_is_handed_out_in_order_and_one_stretch_at_a_time() {
    let f = fixture(Limits::default());
    let start = f
        .queue
        .enqueue(NewEntry::start_attempt("e1", "a1", "2026-11-28T10:00:00Z"))
        .unwrap();
    let q1 = f.queue.enqueue(answer("a1", "q1", "x")).unwrap();
    let q2 = f.queue.enqueue(answer("a1", "q2", "y")).unwrap();
    assert_eq!((start.seq, q1.seq, q2.seq), (1, 2, 3));
    // The answer bodies carry the stream's sequence number.
    let claimed = f.queue.claim(2).unwrap();
    assert_eq!(
        claimed.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![start.id, q1.id]
    );
    let body: serde_json::Value =
        serde_json::from_slice(claimed[1].body.as_ref().unwrap()).unwrap();
    assert_eq!(body["seq"], 2);
    assert_eq!(body["value"], "x");
    // While the stretch is in flight, the rest of the stream waits.
    assert!(f.queue.claim(10).unwrap().is_empty());
    f.queue
        .complete(&[(start.id, done()), (q1.id, done())])
        .unwrap();
    let next = f.queue.claim(10).unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].id, q2.id);
    assert_eq!(next[0].idempotency_key, q2.idempotency_key);
}

#[test]
fn across_streams_priority_then_age() {
    let f = fixture(Limits::default());
    let telemetry = f.queue.enqueue(NewEntry::telemetry(json!([]))).unwrap();
    let a = f.queue.enqueue(answer("a1", "q1", "x")).unwrap();
    let b = f
        .queue
        .enqueue(NewEntry::start_attempt("e1", "a2", "2026-11-28T10:00:00Z"))
        .unwrap();
    let order: Vec<i64> = f.queue.claim(10).unwrap().iter().map(|c| c.id).collect();
    assert_eq!(order, vec![b.id, a.id, telemetry.id]);
}

#[test]
fn a_failed_answer_waits_for_its_retry_without_holding_back_the_others() {
    let f = fixture(Limits::default());
    let a1 = f.queue.enqueue(answer("a1", "q1", "x")).unwrap();
    let a2 = f.queue.enqueue(answer("a1", "q2", "y")).unwrap();
    let b1 = f.queue.enqueue(answer("b", "q1", "z")).unwrap();
    let first = f.queue.claim(1).unwrap();
    assert_eq!(first[0].id, a1.id);
    f.queue
        .complete(&[(
            a1.id,
            Outcome::Retry {
                error: "connection reset".into(),
                retry_after: Some(Duration::from_secs(30)),
            },
        )])
        .unwrap();
    // a1 waits 30 s (Retry-After beats the 1 s backoff); the other answers go.
    let next: Vec<i64> = f.queue.claim(10).unwrap().iter().map(|c| c.id).collect();
    assert_eq!(next, vec![a2.id, b1.id]);
    f.clock.advance(Duration::from_secs(29));
    assert!(f.queue.claim(10).unwrap().is_empty(), "not due yet");
    f.clock.advance(Duration::from_secs(2));
    let next: Vec<i64> = f.queue.claim(10).unwrap().iter().map(|c| c.id).collect();
    assert_eq!(next, vec![a1.id]);
}

#[test]
fn a_clock_set_back_does_not_hold_back_delivery_for_as_long_as_it_jumped() {
    let f = fixture(Limits::default());
    f.clock.advance(Duration::from_secs(10 * 3600));
    let owner = Owner::new("http://127.0.0.1:8787", "student1");
    let a = f
        .queue
        .enqueue(answer("a1", "q1", "x").owned_by(&owner))
        .unwrap();
    let b = f
        .queue
        .enqueue(answer("a1", "q2", "y").owned_by(&owner))
        .unwrap();
    assert_eq!(f.queue.claim(1).unwrap()[0].id, a.id);
    f.queue
        .complete(&[(
            a.id,
            Outcome::Retry {
                error: "connection reset".into(),
                retry_after: Some(Duration::from_secs(30)),
            },
        )])
        .unwrap();
    // The clock is set back an hour: the retry scheduled 30 s ahead on the old clock, and
    // the save queued on it, are due now — not in an hour and 30 s.
    f.clock.set_back(Duration::from_secs(3600));
    assert_eq!(
        f.queue.next_due_ms_for(&owner).unwrap(),
        Some(f.clock.now_ms())
    );
    let mut ids: Vec<i64> = f.queue.claim(10).unwrap().iter().map(|c| c.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![a.id, b.id]);
    f.queue
        .complete(&[(
            a.id,
            Outcome::Retry {
                error: "connection reset".into(),
                retry_after: Some(Duration::from_secs(30)),
            },
        )])
        .unwrap();
    // Scheduled on the corrected clock, a retry waits its time again.
    assert!(f.queue.claim(10).unwrap().iter().all(|c| c.id != a.id));
    f.clock.advance(Duration::from_secs(31));
    assert!(f.queue.claim(10).unwrap().iter().any(|c| c.id == a.id));
}

#[test]
fn a_failed_barrier_holds_back_its_stream_and_a_barrier_waits_for_everything_before_it() {
    let f = fixture(Limits::default());
    let start = f
        .queue
        .enqueue(NewEntry::start_attempt("e1", "a1", "2026-11-28T10:00:00Z"))
        .unwrap();
    let q1 = f.queue.enqueue(answer("a1", "q1", "x")).unwrap();
    let first = f.queue.claim(1).unwrap();
    assert_eq!(first[0].id, start.id);
    f.queue
        .complete(&[(
            start.id,
            Outcome::Retry {
                error: "503".into(),
                retry_after: None,
            },
        )])
        .unwrap();
    assert!(
        f.queue.claim(10).unwrap().is_empty(),
        "no answer before its attempt exists"
    );
    f.clock.advance(Duration::from_secs(5));
    let both: Vec<i64> = f.queue.claim(10).unwrap().iter().map(|c| c.id).collect();
    assert_eq!(
        both,
        vec![start.id, q1.id],
        "the barrier first, in one request"
    );
    // A second barrier (high priority) waits for the answers before it.
    let mut submit = NewEntry::start_attempt("e1", "a1", "x");
    submit.kind = Kind::Submission;
    let submit = f.queue.enqueue(submit).unwrap();
    let q2 = f.queue.enqueue(answer("a1", "q2", "y")).unwrap();
    assert!(
        f.queue.claim(10).unwrap().is_empty(),
        "q1 is still in flight"
    );
    f.queue
        .complete(&[(start.id, done()), (q1.id, done())])
        .unwrap();
    let next: Vec<i64> = f.queue.claim(10).unwrap().iter().map(|c| c.id).collect();
    assert_eq!(
        next,
        vec![submit.id, q2.id],
        "the barrier first, what follows it after it in the same request"
    );
    f.queue
        .complete(&[(submit.id, done()), (q2.id, done())])
        .unwrap();
    // With the barrier in flight elsewhere, what follows waits.
    let q3 = f.queue.enqueue(answer("a1", "q3", "z")).unwrap();
    let mut again = NewEntry::start_attempt("e1", "a1", "x");
    again.kind = Kind::Submission;
    let again = f.queue.enqueue(again).unwrap();
    let q4 = f.queue.enqueue(answer("a1", "q4", "w")).unwrap();
    assert_eq!(f.queue.claim(1).unwrap()[0].id, q3.id);
    let next: Vec<i64> = f.queue.claim(10).unwrap().iter().map(|c| c.id).collect();
    assert!(
        next.is_empty(),
        "the barrier waits for q3, q4 waits for the barrier: {next:?}"
    );
    f.queue.complete(&[(q3.id, done())]).unwrap();
    let next: Vec<i64> = f.queue.claim(10).unwrap().iter().map(|c| c.id).collect();
    assert_eq!(next, vec![again.id, q4.id]);
}

#[test]
fn a_newer_save_of_the_same_answer_replaces_the_waiting_one_but_not_one_in_flight() {
    let f = fixture(Limits::default());
    let v1 = f.queue.enqueue(answer("a1", "q1", "v1")).unwrap();
    let v2 = f.queue.enqueue(answer("a1", "q1", "v2")).unwrap();
    assert_eq!(f.queue.status_of(v1.id).unwrap(), None, "superseded");
    assert_eq!(f.queue.counts().unwrap().coalesced, 1);
    let inflight = f.queue.claim(1).unwrap();
    assert_eq!(inflight[0].id, v2.id);
    let v3 = f.queue.enqueue(answer("a1", "q1", "v3")).unwrap();
    assert_eq!(
        f.queue.status_of(v2.id).unwrap(),
        Some(Status::InFlight),
        "the one in flight is left alone"
    );
    // One whose reply was lost may have been applied: it is sent again, not superseded.
    f.queue
        .complete(&[(
            v2.id,
            Outcome::Retry {
                error: "reset".into(),
                retry_after: None,
            },
        )])
        .unwrap();
    let v4 = f.queue.enqueue(answer("a1", "q1", "v4")).unwrap();
    assert_eq!(
        f.queue.counts().unwrap().coalesced,
        2,
        "v3 (never sent) goes, v2 stays"
    );
    assert_eq!(f.queue.status_of(v2.id).unwrap(), Some(Status::Pending));
    assert_eq!(f.queue.status_of(v3.id).unwrap(), None);
    f.clock.advance(Duration::from_secs(10));
    assert_eq!(f.queue.claim(1).unwrap()[0].id, v2.id);
    assert_eq!(f.queue.status_of(v2.id).unwrap(), Some(Status::InFlight));
    f.queue.complete(&[(v2.id, done())]).unwrap();
    let next = f.queue.claim(5).unwrap();
    assert_eq!(next[0].id, v4.id);
    assert!(v4.seq > v2.seq);
    let counts = f.queue.counts().unwrap();
    assert_eq!(counts.coalesced, 2);
}

#[test]
fn when_full_only_telemetry_is_evicted_and_answers_are_refused_clearly() {
    let f = fixture(Limits {
        max_entries: 3,
        max_bytes: u64::MAX,
    });
    let t1 = f.queue.enqueue(NewEntry::telemetry(json!([1]))).unwrap();
    let _t2 = f.queue.enqueue(NewEntry::telemetry(json!([2]))).unwrap();
    f.queue.enqueue(answer("a1", "q1", "x")).unwrap();
    // Full: the oldest telemetry makes room for an answer.
    let a2 = f.queue.enqueue(answer("a1", "q2", "y")).unwrap();
    assert_eq!(a2.evicted, 1);
    assert_eq!(f.queue.status_of(t1.id).unwrap(), None);
    f.queue.enqueue(answer("a1", "q3", "z")).unwrap();
    // Nothing evictable left: the answer is refused, nothing else changes.
    let error = f.queue.enqueue(answer("a1", "q4", "w")).unwrap_err();
    assert!(
        matches!(error, QueueError::Full { kind: "answer", .. }),
        "{error:?}"
    );
    assert!(error
        .to_string()
        .contains("storage for unsent work is full"));
    let counts = f.queue.counts().unwrap();
    assert_eq!((counts.pending, counts.evicted), (3, 2));
    // A delivered answer frees room.
    let claimed = f.queue.claim(1).unwrap();
    f.queue.complete(&[(claimed[0].id, done())]).unwrap();
    f.queue.enqueue(answer("a1", "q4", "w")).unwrap();
}

#[test]
fn the_byte_limit_counts_too() {
    let f = fixture(Limits {
        max_entries: 1000,
        max_bytes: 1000,
    });
    let big = "x".repeat(600);
    f.queue.enqueue(answer("a1", "q1", &big)).unwrap();
    let error = f.queue.enqueue(answer("a1", "q2", &big)).unwrap_err();
    assert!(matches!(error, QueueError::Full { .. }));
}

#[test]
fn dead_letters_are_kept_listed_exported_retryable_and_block_nothing() {
    let f = fixture(Limits::default());
    let bad = f.queue.enqueue(answer("a1", "nope", "x")).unwrap();
    let next = f.queue.enqueue(answer("a1", "q2", "y")).unwrap();
    let claimed = f.queue.claim(1).unwrap();
    assert_eq!(claimed[0].id, bad.id);
    f.queue
        .complete(&[(
            bad.id,
            Outcome::Dead {
                status: 422,
                body: r#"{"code":"unknown_question"}"#.into(),
                error: "unknown question".into(),
            },
        )])
        .unwrap();
    // The next entry of the stream is not blocked.
    assert_eq!(f.queue.claim(5).unwrap()[0].id, next.id);
    let letters = f.queue.dead_letters(10).unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].response_status, Some(422));
    assert!(letters[0]
        .response_body
        .as_deref()
        .unwrap()
        .contains("unknown_question"));
    assert!(letters[0]
        .body
        .as_deref()
        .unwrap()
        .contains("\"value\":\"x\""));
    let exported: serde_json::Value =
        serde_json::from_str(&f.queue.export_dead().unwrap()).unwrap();
    assert_eq!(exported[0]["path"], "/v1/attempts/a1/answers/nope");
    // Retried by hand: pending again, same idempotency key.
    f.queue.retry_dead(bad.id).unwrap();
    let again = f.queue.claim(5).unwrap();
    assert_eq!(again[0].idempotency_key, bad.idempotency_key);
    assert!(matches!(
        f.queue.retry_dead(9999),
        Err(QueueError::NoSuchEntry(9999))
    ));
}

#[test]
fn entries_in_flight_at_a_crash_are_pending_again_after_reopening() {
    let mut f = fixture(Limits::default());
    let a = f.queue.enqueue(answer("a1", "q1", "x")).unwrap();
    f.queue.claim(5).unwrap();
    assert_eq!(f.queue.status_of(a.id).unwrap(), Some(Status::InFlight));
    f.reopen();
    assert_eq!(f.queue.status_of(a.id).unwrap(), Some(Status::Pending));
    let again = f.queue.claim(5).unwrap();
    assert_eq!(again[0].idempotency_key, a.idempotency_key);
    // Sequence numbers continue after a reopen.
    let b = f.queue.enqueue(answer("a1", "q2", "y")).unwrap();
    assert_eq!(b.seq, a.seq + 1);
}

#[test]
fn released_entries_go_back_without_counting_an_attempt_and_done_ones_are_pruned() {
    let f = fixture(Limits::default());
    let a = f.queue.enqueue(answer("a1", "q1", "x")).unwrap();
    let c = f.queue.claim(1).unwrap();
    f.queue.complete(&[(c[0].id, Outcome::Release)]).unwrap();
    let c = f.queue.claim(1).unwrap();
    assert_eq!(c[0].attempts, 0);
    f.queue.complete(&[(a.id, done())]).unwrap();
    assert_eq!(f.queue.counts().unwrap().done, 1);
    assert_eq!(f.queue.prune_done(Duration::from_secs(60)).unwrap(), 0);
    f.clock.advance(Duration::from_secs(61));
    assert_eq!(f.queue.prune_done(Duration::from_secs(60)).unwrap(), 1);
    assert_eq!(f.queue.counts().unwrap().bytes, 0.0);
}

#[test]
fn sync_now_makes_waiting_entries_due() {
    let f = fixture(Limits::default());
    let a = f.queue.enqueue(answer("a1", "q1", "x")).unwrap();
    f.queue.claim(1).unwrap();
    f.queue
        .complete(&[(
            a.id,
            Outcome::Retry {
                error: "503".into(),
                retry_after: Some(Duration::from_secs(120)),
            },
        )])
        .unwrap();
    assert!(f.queue.claim(1).unwrap().is_empty());
    assert_eq!(f.queue.make_due_now().unwrap(), 1);
    assert_eq!(f.queue.claim(1).unwrap().len(), 1);
}

#[test]
fn a_claim_stops_before_its_bytes_pass_the_cap_but_always_hands_out_one() {
    let f = fixture(Limits::default());
    let big = "x".repeat(5000);
    for q in 0..4 {
        f.queue
            .enqueue(answer("a1", &format!("q{q}"), &big))
            .unwrap();
    }
    assert_eq!(f.queue.claim_up_to(10, 12_000).unwrap().len(), 2);
    assert_eq!(
        f.queue.claim_up_to(10, 100).unwrap().len(),
        1,
        "one, however big"
    );
}

#[test]
fn ids_are_never_reused_even_after_pruning_and_a_restart() {
    let mut f = fixture(Limits::default());
    let a = f.queue.enqueue(answer("a1", "q1", "x")).unwrap();
    let c = f.queue.claim(1).unwrap();
    f.queue.complete(&[(c[0].id, done())]).unwrap();
    f.clock.advance(Duration::from_secs(10));
    assert_eq!(f.queue.prune_done(Duration::from_secs(1)).unwrap(), 1);
    f.reopen();
    let b = f.queue.enqueue(answer("a1", "q2", "y")).unwrap();
    assert!(b.id > a.id, "{} after {}", b.id, a.id);
    assert!(b.seq > a.seq);
}

#[test]
fn answers_are_sealed_at_rest_and_opened_only_to_be_sent() {
    use crate::seal::AnswerKey;
    let mut f = fixture(Limits::default());
    let (key, encoded) = AnswerKey::generate();
    f.queue.set_sealer(Arc::new(key));
    let owner = Owner::new("http://127.0.0.1:8787", "student1");
    f.queue
        .enqueue(answer("a1", "q1", "bí mật của học sinh").owned_by(&owner))
        .unwrap();
    f.queue
        .enqueue(NewEntry::telemetry(json!([{"type": "focus_lost"}])))
        .unwrap();
    let everywhere = |path: &std::path::Path| {
        let mut bytes = Vec::new();
        for suffix in ["", "-wal"] {
            let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
            bytes.extend(std::fs::read(file).unwrap_or_default());
        }
        bytes
    };
    let secret = "bí mật của học sinh".as_bytes();
    // In the inbox, then in the queue: never in the clear on disk.
    assert!(!everywhere(&f.path)
        .windows(secret.len())
        .any(|w| w == secret));
    f.queue.flush().unwrap();
    assert!(!everywhere(&f.path)
        .windows(secret.len())
        .any(|w| w == secret));
    // Telemetry is not an answer: left as it is.
    let claimed = f.queue.claim(10).unwrap();
    assert_eq!(claimed.len(), 2);
    let body: serde_json::Value =
        serde_json::from_slice(claimed[0].body.as_ref().unwrap()).unwrap();
    assert_eq!(body["value"], "bí mật của học sinh");
    f.queue
        .complete(&[(claimed[0].id, Outcome::Release), (claimed[1].id, done())])
        .unwrap();

    // Restarted without the key (the keychain not unlocked yet): the answer waits.
    f.reopen();
    assert!(f.queue.claim(10).unwrap().is_empty());
    assert_eq!(f.queue.counts().unwrap().pending, 1);
    // With the right key again it goes.
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(encoded.expose(), &mut bytes).unwrap();
    f.reopen();
    f.queue.set_sealer(Arc::new(AnswerKey::from_bytes(&bytes)));
    f.clock.advance(Duration::from_secs(61));
    let claimed = f.queue.claim(10).unwrap();
    assert_eq!(claimed.len(), 1);
    f.queue
        .complete(&[(claimed[0].id, Outcome::Release)])
        .unwrap();
    // With another key it cannot be opened: a dead letter that says why, kept.
    f.reopen();
    f.queue.set_sealer(Arc::new(AnswerKey::generate().0));
    assert!(f.queue.claim(10).unwrap().is_empty());
    let dead = f.queue.dead_letters(10).unwrap();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0]
            .error
            .as_deref()
            .unwrap()
            .contains("cannot be decrypted"),
        "{:?}",
        dead[0].error
    );
    assert!(dead[0].body.as_deref().unwrap().starts_with("<encrypted"));
}

/// Earlier builds made a portal's redirect or page a dead letter; opening the database
/// with this build puts such entries back to pending (same key), and leaves the server's
/// own refusals and entries that died without a reply alone.
#[test]
fn entries_refused_by_a_portal_or_proxy_in_earlier_builds_are_pending_again_after_upgrade() {
    let mut f = fixture(Limits::default());
    let replies: [(u16, &str); 5] = [
        (302, ""),
        (
            200,
            "<html><form>Sign in to the school network</form></html>",
        ),
        (403, "<h1>Blocked</h1>"),
        (
            409,
            r#"{"type":"about:blank","status":409,"code":"attempt_closed"}"#,
        ),
        (0, ""),
    ];
    let mut ids = Vec::new();
    for (i, (status, body)) in replies.iter().enumerate() {
        let entry = f
            .queue
            .enqueue(answer("a1", &format!("q{i}"), "x"))
            .unwrap();
        let claimed = f.queue.claim(1).unwrap();
        assert_eq!(claimed[0].id, entry.id);
        f.queue
            .complete(&[(
                entry.id,
                Outcome::Dead {
                    status: *status,
                    body: body.to_string(),
                    error: format!("refused by the server ({status})"),
                },
            )])
            .unwrap();
        if *status == 0 {
            // Died without any reply (e.g. a body that could not be opened).
            f.queue
                .store()
                .lock()
                .execute(
                    "UPDATE queue SET response_status = NULL WHERE id = ?1",
                    params![entry.id],
                )
                .unwrap();
        }
        ids.push(entry);
    }
    assert_eq!(f.queue.counts().unwrap().dead, 5);
    // As a database of the previous schema (migration 3 changes no table, so rewinding the
    // version, with the later migrations undone, is exactly what an earlier build left).
    f.queue.flush().unwrap();
    rewind_to_schema_3(&f.queue);
    f.queue
        .store()
        .lock()
        .pragma_update(None, "user_version", 2)
        .unwrap();
    f.reopen();
    let statuses: Vec<Status> = ids
        .iter()
        .map(|e| f.queue.status_of(e.id).unwrap().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            Status::Pending,
            Status::Pending,
            Status::Pending,
            Status::Dead,
            Status::Dead
        ]
    );
    let again = f.queue.claim(10).unwrap();
    assert_eq!(again.len(), 3);
    for (claimed, entry) in again.iter().zip(&ids) {
        assert_eq!(claimed.idempotency_key, entry.idempotency_key);
        assert_eq!(claimed.attempts, 0);
    }
}
