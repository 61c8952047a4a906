//! Opening a sealed exam package of 1,000 questions: with the key the server releases, and with
//! the start code a proctor reads out (Argon2id with the server's parameters, then the same).
//! Sealed by the reference server's own code, opened by the app's.
//!
//! Budget: 1,000 questions with the key ≤ 50 ms; with a start code ≤ 1.5 s.
//! `cargo bench -p exam-core --bench sealed`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use base64::Engine as _;
use exam_core::exam::sealed::{ExamKey, SealedPackage};
use exam_server::seal::{self, KdfParams};

const QUESTIONS: usize = 1000;
const RUNS: usize = 7;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let b64 = base64::engine::general_purpose::STANDARD;
    let questions: Vec<serde_json::Value> = (0..QUESTIONS)
        .map(|i| match i % 4 {
            0 => serde_json::json!({"id": format!("q{i}"), "kind": "single",
                "prompt": format!("Question {i}: which of these is right? {}", "lorem ipsum ".repeat(10)),
                "options": [{"id": "a", "text": "one"}, {"id": "b", "text": "two"}, {"id": "c", "text": "three"}, {"id": "d", "text": "four"}]}),
            1 => serde_json::json!({"id": format!("q{i}"), "kind": "multiple",
                "prompt": format!("Question {i}: select all that apply."),
                "options": [{"id": "a", "text": "one"}, {"id": "b", "text": "two"}, {"id": "c", "text": "three"}]}),
            2 => serde_json::json!({"id": format!("q{i}"), "kind": "short", "prompt": format!("Question {i}: a word."), "max_length": 200}),
            _ => serde_json::json!({"id": format!("q{i}"), "kind": "essay", "prompt": format!("Question {i}: {}", "explain why ".repeat(20)), "max_length": 10000}),
        })
        .collect();
    let plain = serde_json::to_vec(&questions).unwrap();
    let params = KdfParams::DEFAULT;
    let code = seal::new_start_code();
    let salt: [u8; 16] = seal::random();
    let server_key = seal::derive_key(&code, &salt, params).unwrap();
    let nonce: [u8; 24] = seal::random();
    let ciphertext = seal::seal(&server_key, &nonce, "bench", 1, &plain).unwrap();
    let package = serde_json::json!({
        "id": "bench", "version": 1, "title": "Bench", "duration_s": 3600, "instructions": "",
        "question_count": QUESTIONS,
        "sealed": {"alg": "XChaCha20-Poly1305", "key_id": "k1", "nonce": b64.encode(nonce),
                   "ciphertext": b64.encode(&ciphertext),
                   "start_code": {"alg": "argon2id", "salt": b64.encode(salt),
                                  "m_kib": params.m_kib, "t": params.t, "p": params.p}}
    })
    .to_string();
    let key_text = b64.encode(server_key.0);

    let mut with_key = Vec::new();
    let mut with_code = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let sealed = SealedPackage::parse("bench", package.as_bytes()).unwrap();
        let key = ExamKey::from_base64("bench", &key_text).unwrap();
        let opened = sealed.open(&key).unwrap();
        with_key.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(opened.questions.len(), QUESTIONS);

        let started = Instant::now();
        let sealed = SealedPackage::parse("bench", package.as_bytes()).unwrap();
        let key = sealed.key_from_code(&seal::grouped(&code)).unwrap();
        let opened = sealed.open(&key).unwrap();
        with_code.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(opened.questions.len(), QUESTIONS);
    }
    let bytes = package.len();
    println!(
        "sealed package of {QUESTIONS} questions ({} KiB), median of {RUNS}:",
        bytes / 1024
    );
    println!(
        "  open with the key: {:.1} ms   (budget ≤ 50 ms)",
        median(with_key)
    );
    println!(
        "  open with the start code (Argon2id m={} KiB, t={}, p={}): {:.0} ms   (budget ≤ 1,500 ms)",
        params.m_kib,
        params.t,
        params.p,
        median(with_code.clone())
    );
    let per_guess_s = median(with_code) / 1000.0;
    let years = 2f64.powi(60) / 2.0 * per_guess_s / (365.25 * 24.0 * 3600.0);
    println!(
        "  guessing a 60-bit start code at this cost: on average {years:.1e} core-years (half of 2^60 tries, {} MiB each)",
        params.m_kib / 1024
    );
}
