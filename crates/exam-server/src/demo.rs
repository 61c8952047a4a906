//! Demo data: students `student1` … `student30` (password `demo`), two unsealed exams open
//! now, and four sealed ones around their start (open, opening in minutes, opening tomorrow —
//! for an app newer than this one —, closed), so the client can be tried and tested end to end.

use chrono::Duration;
use serde_json::{json, Value};

use crate::Db;

pub const DEMO_PASSWORD: &str = "demo";
pub const STUDENTS: usize = 30;
pub const MIXED_EXAM: &str = "demo-mixed";
pub const ESSAY_EXAM: &str = "demo-essay";
/// Sealed, open now, available since yesterday.
pub const SEALED_OPEN_EXAM: &str = "demo-sealed-open";
/// Sealed, opens a few minutes after seeding (`--demo-opens-in`, 5 by default), available
/// since yesterday.
pub const SEALED_SOON_EXAM: &str = "demo-sealed-soon";
/// Sealed, opens tomorrow, available from seeding on; it needs an app newer than this one
/// ([`TOMORROW_MIN_CLIENT_VERSION`]), so the exam list and the fleet's readiness say so ahead.
pub const SEALED_TOMORROW_EXAM: &str = "demo-sealed-tomorrow";
/// The oldest app version that may take [`SEALED_TOMORROW_EXAM`]: one newer than this build.
pub const TOMORROW_MIN_CLIENT_VERSION: &str = "0.2.0";
/// Sealed and closed.
pub const SEALED_CLOSED_EXAM: &str = "demo-sealed-closed";

fn options(texts: &[&str]) -> Value {
    Value::Array(
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"id": format!("o{}", i + 1), "text": t}))
            .collect(),
    )
}

/// Twenty questions, five of each kind. Some prompts are hostile on purpose: the client must
/// show them as text, never run them.
fn mixed_questions() -> Value {
    let single = [
        ("What is 7 × 8?", vec!["54", "56", "58", "64"]),
        (
            "Which planet is closest to the Sun?",
            vec!["Venus", "Mercury", "Mars", "Earth"],
        ),
        (
            "Thủ đô của Việt Nam là gì?",
            vec!["Hà Nội", "Huế", "Đà Nẵng", "TP. Hồ Chí Minh"],
        ),
        (
            "Which gas do plants take in for photosynthesis?",
            vec!["Oxygen", "Nitrogen", "Carbon dioxide", "Helium"],
        ),
        (
            "<img src=x onerror=\"alert('pwned')\"> Which tag is safe to render as text?",
            vec![
                "<script>alert(1)</script>",
                "<b>bold</b>",
                "plain text",
                "all of them, as text",
            ],
        ),
    ];
    let multiple = [
        ("Select every prime number.", vec!["2", "4", "7", "9", "11"]),
        (
            "Which of these are mammals?",
            vec!["Whale", "Shark", "Bat", "Penguin"],
        ),
        (
            "Which are programming languages?",
            vec!["Rust", "HTML", "Python", "CSS"],
        ),
        ("Chọn các số chẵn.", vec!["1", "2", "3", "4"]),
        (
            "Which are renewable energy sources?",
            vec!["Solar", "Coal", "Wind", "Hydro"],
        ),
    ];
    let short = [
        "Name the chemical symbol for gold.",
        "Write the year the first person walked on the Moon.",
        "Viết một từ tiếng Việt có dấu ngã.",
        "What is the square root of 144?",
        "Type this exactly: <script>alert(\"x\")</script>",
    ];
    let essay = [
        "Explain why the sky is blue. Use your own words.",
        "Describe a time you solved a difficult problem.",
        "Hãy viết một đoạn văn ngắn về quê hương của bạn.",
        "Should homework be optional? Argue for one side.",
        "Summarise the water cycle.",
    ];
    let mut questions = Vec::new();
    let mut n = 0;
    let mut next_id = || {
        n += 1;
        format!("q{n:02}")
    };
    for i in 0..5 {
        let (prompt, opts) = &single[i];
        questions.push(
            json!({"id": next_id(), "kind": "single", "prompt": prompt, "options": options(opts)}),
        );
        let (prompt, opts) = &multiple[i];
        questions.push(json!({"id": next_id(), "kind": "multiple", "prompt": prompt, "options": options(opts)}));
        questions
            .push(json!({"id": next_id(), "kind": "short", "prompt": short[i], "max_length": 200}));
        questions.push(
            json!({"id": next_id(), "kind": "essay", "prompt": essay[i], "max_length": 5000}),
        );
    }
    Value::Array(questions)
}

/// A short question set for a sealed exam: the first `n` of the mixed exam's, with prompts
/// that name the exam, so a test can tell them apart from every other exam's.
fn sealed_questions(exam_id: &str, n: usize) -> Value {
    let mixed = mixed_questions();
    Value::Array(
        mixed
            .as_array()
            .into_iter()
            .flatten()
            .take(n)
            .map(|q| {
                let mut q = q.clone();
                if let Some(prompt) = q.get("prompt").and_then(Value::as_str) {
                    q["prompt"] = Value::String(format!("[{exam_id}] {prompt}"));
                }
                q
            })
            .collect(),
    )
}

fn essay_questions() -> Value {
    json!([
        {"id": "e1", "kind": "essay", "prompt": "Describe the causes of the First World War.", "max_length": 10000},
        {"id": "e2", "kind": "essay", "prompt": "Compare two poems you have studied this year.", "max_length": 10000},
        {"id": "e3", "kind": "essay", "prompt": "Trình bày suy nghĩ của bạn về vai trò của công nghệ trong giáo dục.", "max_length": 10000}
    ])
}

/// Adds what is missing; keeps what is there (answers from earlier demo runs survive).
pub fn seed(db: &Db, soon_s: u64) -> anyhow::Result<()> {
    // One hash for every demo student: it is demo data, and hashing is slow.
    let hash = crate::auth::hash_password(DEMO_PASSWORD)
        .map_err(|e| anyhow::anyhow!("cannot hash the demo password: {e}"))?;
    let now = crate::now();
    let opens = crate::rfc3339(now - Duration::days(1));
    let closes = crate::rfc3339(now + Duration::days(365));
    let conn = db.lock();
    for i in 1..=STUDENTS {
        conn.execute(
            "INSERT OR IGNORE INTO users (username, password_hash, created_at) VALUES (?1, ?2, ?3)",
            (format!("student{i}"), &hash, crate::rfc3339(now)),
        )?;
    }
    let exams = [
        (
            MIXED_EXAM,
            "General knowledge — practice exam",
            3600,
            "Answer every question. Your answers are saved as you type, even without a network.",
            mixed_questions(),
        ),
        (
            ESSAY_EXAM,
            "Essay writing",
            5400,
            "Write three essays. Take your time to plan each one.",
            essay_questions(),
        ),
    ];
    for (id, title, duration, instructions, questions) in exams {
        conn.execute(
            "INSERT OR IGNORE INTO exams (id, title, version, opens_at, closes_at, duration_s, instructions, questions)
             VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6, ?7)",
            (id, title, &opens, &closes, duration, instructions, questions.to_string()),
        )?;
    }
    let at = |d: Duration| crate::rfc3339(now + d);
    // (id, title, available_from, opens_at, closes_at, questions, min_client_version)
    let sealed = [
        (
            SEALED_OPEN_EXAM,
            "Sealed exam — open now",
            at(-Duration::days(1)),
            at(-Duration::hours(1)),
            closes.clone(),
            4,
            None,
        ),
        (
            SEALED_SOON_EXAM,
            "Sealed exam — opens soon",
            at(-Duration::days(1)),
            // At most a year ahead (a larger number is a typo, not a plan).
            at(Duration::seconds(
                i64::try_from(soon_s.min(365 * 86_400)).unwrap_or(300),
            )),
            at(Duration::days(1)),
            4,
            None,
        ),
        (
            SEALED_TOMORROW_EXAM,
            "Sealed exam — opens tomorrow",
            at(Duration::zero()),
            at(Duration::days(1)),
            at(Duration::days(2)),
            4,
            Some(TOMORROW_MIN_CLIENT_VERSION),
        ),
        (
            SEALED_CLOSED_EXAM,
            "Sealed exam — closed",
            at(-Duration::days(3)),
            at(-Duration::days(2)),
            at(-Duration::days(1)),
            2,
            None,
        ),
    ];
    for (id, title, available_from, opens_at, closes_at, n, min_version) in sealed {
        // The package itself is sealed when first asked for (Argon2id is slow on purpose).
        conn.execute(
            "INSERT OR IGNORE INTO exams (id, title, version, opens_at, closes_at, duration_s, instructions,
                                          questions, sealed, available_from, start_code,
                                          min_client_version)
             VALUES (?1, ?2, 1, ?3, ?4, 1800, ?5, ?6, 1, ?7, ?8, ?9)",
            (
                id,
                title,
                &opens_at,
                &closes_at,
                "The questions open with the start code your proctor announces, or online once the exam opens.",
                sealed_questions(id, n).to_string(),
                &available_from,
                crate::seal::new_start_code(),
                min_version,
            ),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_mixed_exam_has_twenty_questions_of_all_four_kinds() {
        let questions = super::mixed_questions();
        let questions = questions.as_array().unwrap();
        assert_eq!(questions.len(), 20);
        for kind in ["single", "multiple", "short", "essay"] {
            assert_eq!(
                questions.iter().filter(|q| q["kind"] == kind).count(),
                5,
                "{kind}"
            );
        }
        let ids: std::collections::HashSet<_> = questions
            .iter()
            .map(|q| q["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), 20);
    }
}
