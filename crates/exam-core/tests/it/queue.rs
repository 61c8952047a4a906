//! The queue's invariants under random sequences of saves, coalescing, failures, crashes and
//! restarts, on a real SQLite file: nothing is lost, a stream is handed out in order, answers
//! are never evicted, the quota holds.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use exam_core::queue::{inbox, Limits, NewEntry, Outcome, Queue, QueueError};
use exam_core::store::Store;
use exam_core::testing::ManualClock;
use proptest::prelude::*;
use serde_json::json;

#[derive(Debug, Clone)]
enum Op {
    Answer {
        attempt: u8,
        question: u8,
        value: u16,
    },
    Telemetry,
    /// A barrier (an attempt being created) in an attempt's stream.
    Barrier {
        attempt: u8,
    },
    Claim(u8),
    /// Completes the oldest claimed entries with these outcomes.
    Complete(Vec<u8>),
    Advance(u16),
    Crash,
    Prune,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..3, 0u8..4, any::<u16>()).prop_map(|(attempt, question, value)| Op::Answer { attempt, question, value }),
        2 => Just(Op::Telemetry),
        1 => (0u8..3).prop_map(|attempt| Op::Barrier { attempt }),
        3 => (1u8..6).prop_map(Op::Claim),
        3 => proptest::collection::vec(0u8..4, 1..5).prop_map(Op::Complete),
        1 => (0u16..5000).prop_map(Op::Advance),
        1 => Just(Op::Crash),
        1 => Just(Op::Prune),
    ]
}

struct Row {
    stream: String,
    seq: i64,
    status: String,
    kind: String,
    coalesce_key: Option<String>,
    value: Option<serde_json::Value>,
    next_attempt_at: i64,
    bytes: i64,
}

/// Every entry: the indexed queue and the saves still in the inbox (pending).
fn rows(queue: &Queue) -> HashMap<i64, Row> {
    let conn = queue.store().lock();
    let mut stmt = conn
        .prepare("SELECT id, stream, seq, status, kind, coalesce_key, body, next_attempt_at, bytes FROM queue")
        .unwrap();
    let value = |body: Option<&[u8]>| {
        body.map(|b| serde_json::from_slice::<serde_json::Value>(b).unwrap()["value"].clone())
    };
    let mut out: HashMap<i64, Row> = stmt
        .query_map([], |r| {
            let body: Option<Vec<u8>> = r.get(6)?;
            Ok((
                r.get(0)?,
                Row {
                    stream: r.get(1)?,
                    seq: r.get(2)?,
                    status: r.get(3)?,
                    kind: r.get(4)?,
                    coalesce_key: r.get(5)?,
                    value: value(body.as_deref()),
                    next_attempt_at: r.get(7)?,
                    bytes: r.get(8)?,
                },
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut stmt = conn
        .prepare("SELECT created_at, entries FROM inbox")
        .unwrap();
    let groups: Vec<(i64, Vec<inbox::InboxEntry>)> = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, inbox::decode(r.get_ref(1)?).unwrap()))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (created_at, entries) in groups {
        for e in entries {
            out.insert(
                e.id,
                Row {
                    stream: e.stream,
                    seq: e.seq,
                    status: "pending".into(),
                    kind: e.kind,
                    coalesce_key: e.coalesce_key,
                    value: value(e.body.as_deref()),
                    next_attempt_at: created_at,
                    bytes: i64::try_from(e.bytes).unwrap(),
                },
            );
        }
    }
    out
}

fn open(path: &std::path::Path, limits: Limits, clock: Arc<ManualClock>) -> Queue {
    Queue::open_with(Arc::new(Store::open(path).unwrap()), limits, clock).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold(ops in proptest::collection::vec(op(), 1..80)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let clock = Arc::new(ManualClock::default());
        clock.0.store(1_000_000, Ordering::SeqCst);
        let limits = Limits { max_entries: 12, max_bytes: 4000 };
        let mut queue = open(&path, limits, clock.clone());
        // The latest value saved for each answer: it must never be lost.
        let mut latest: BTreeMap<String, (i64, serde_json::Value)> = BTreeMap::new();
        // Every entry ever written: its answer key (None for telemetry) and whether it was
        // seen delivered (only then may it be pruned).
        let mut written: HashMap<i64, (Option<String>, bool)> = HashMap::new();
        let mut claimed: Vec<i64> = Vec::new();

        for op in ops {
            match op {
                Op::Answer { attempt, question, value } => {
                    let entry = NewEntry::answer(&format!("a{attempt}"), &format!("q{question}"), json!(value), "2026-11-28T10:00:00Z");
                    let key = entry.coalesce_key.clone().unwrap();
                    match queue.enqueue(entry) {
                        Ok(e) => {
                            latest.insert(key.clone(), (e.id, json!(value)));
                            written.insert(e.id, (Some(key), false));
                        }
                        // Refusing is allowed (the caller is told); losing is not.
                        Err(QueueError::Full { kind, .. }) => prop_assert_eq!(kind, "answer"),
                        Err(other) => prop_assert!(false, "unexpected error {other}"),
                    }
                }
                Op::Barrier { attempt } => {
                    if let Ok(e) = queue.enqueue(NewEntry::start_attempt("e", &format!("a{attempt}"), "2026-11-28T10:00:00Z")) {
                        written.insert(e.id, (None, false));
                    }
                }
                Op::Telemetry => {
                    if let Ok(e) = queue.enqueue(NewEntry::telemetry(json!([{"id": "x"}]))) {
                        written.insert(e.id, (None, false));
                    }
                }
                Op::Claim(n) => {
                    // Compare with the queue as the claim sees it (the inbox moved in).
                    queue.flush().unwrap();
                    let before = rows(&queue);
                    let now = clock.0.load(Ordering::SeqCst);
                    let got = queue.claim(usize::from(n)).unwrap();
                    prop_assert!(got.len() <= usize::from(n));
                    let ids: HashSet<i64> = got.iter().map(|c| c.id).collect();
                    for c in &got {
                        let row = &before[&c.id];
                        prop_assert_eq!(&row.status, "pending");
                        prop_assert!(row.next_attempt_at <= now);
                        // A barrier goes only with every open entry before it in its stream;
                        // any entry goes only with every open barrier before it.
                        let barrier = |r: &Row| r.kind != "answer" && r.kind != "telemetry";
                        for (id, other) in &before {
                            let open = other.status == "pending" || other.status == "in_flight";
                            if other.stream == row.stream && other.seq < row.seq && open
                                && (barrier(row) || barrier(other)) {
                                prop_assert!(ids.contains(id), "entry {} handed out before {} of its stream", c.id, id);
                            }
                        }
                    }
                    claimed.extend(ids);
                }
                Op::Complete(outcomes) => {
                    let mut results = Vec::new();
                    for o in outcomes {
                        if claimed.is_empty() { break; }
                        let id = claimed.remove(0);
                        let outcome = match o {
                            0 => Outcome::Done { status: 200, body: "{}".into() },
                            1 => Outcome::Retry { error: "reset".into(), retry_after: None },
                            2 => Outcome::Release,
                            _ => Outcome::Dead { status: 422, body: "{}".into(), error: "refused".into() },
                        };
                        results.push((id, outcome));
                    }
                    queue.complete(&results).unwrap();
                }
                Op::Advance(ms) => clock.advance(Duration::from_millis(u64::from(ms) * 100)),
                Op::Crash => {
                    drop(queue);
                    queue = open(&path, limits, clock.clone());
                    claimed.clear();
                    prop_assert!(rows(&queue).values().all(|r| r.status != "in_flight"));
                }
                Op::Prune => {
                    queue.prune_done(Duration::ZERO).unwrap();
                }
            }

            // Invariants after every step.
            let now_rows = rows(&queue);
            for (key, (id, value)) in &latest {
                match now_rows.get(id) {
                    Some(row) => prop_assert_eq!(row.value.as_ref(), Some(value), "{}", key),
                    // Only a delivered entry may be pruned.
                    None => prop_assert!(written[id].1, "the latest save of {} is gone", key),
                }
            }
            for (id, (key, delivered)) in &written {
                let Some(key) = key else { continue };
                if now_rows.contains_key(id) || *delivered { continue; }
                // An answer may leave only when a newer save of it superseded it.
                prop_assert!(latest[key].0 > *id, "answer {} of {} vanished", id, key);
            }
            let open: Vec<&Row> = now_rows.values().filter(|r| r.status != "done").collect();
            prop_assert!(open.len() as u64 <= limits.max_entries);
            prop_assert!(open.iter().map(|r| r.bytes as u64).sum::<u64>() <= limits.max_bytes);
            prop_assert!(now_rows.values().all(|r| r.kind != "answer" || r.coalesce_key.is_some()));
            for (id, row) in &now_rows {
                if row.status == "done" {
                    if let Some(w) = written.get_mut(id) { w.1 = true; }
                }
            }
        }
    }
}
