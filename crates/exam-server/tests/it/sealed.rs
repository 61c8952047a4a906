//! Sealed exam packages (shared/API.md, "Sealed exam packages"): downloaded ahead, unreadable
//! until the exam opens, opened by the released key or by the proctor's start code.
//!
//! The packages are opened here the way a client would, from the wire format alone (argon2 and
//! chacha20poly1305 used directly, the associated data spelled out), not with the server's code.

use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{new_key, status_json, Student, TestServer};

const OPEN: &str = "demo-sealed-open";
const SOON: &str = "demo-sealed-soon";
const TOMORROW: &str = "demo-sealed-tomorrow";
const CLOSED: &str = "demo-sealed-closed";

fn b64(value: &Value) -> Vec<u8> {
    BASE64.decode(value.as_str().unwrap()).unwrap()
}

/// Argon2id(code without dashes, upper case; salt, m_kib, t, p) → 32 bytes, as the package says.
fn derive(code: &str, package: &Value) -> Vec<u8> {
    let kdf = &package["sealed"]["start_code"];
    assert_eq!(kdf["alg"], "argon2id");
    let normalised: String = code.replace('-', "").to_uppercase();
    let params = Params::new(
        kdf["m_kib"].as_u64().unwrap() as u32,
        kdf["t"].as_u64().unwrap() as u32,
        kdf["p"].as_u64().unwrap() as u32,
        Some(32),
    )
    .unwrap();
    let mut key = vec![0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(normalised.as_bytes(), &b64(&kdf["salt"]), &mut key)
        .unwrap();
    key
}

/// The questions of a sealed package, if `key` opens it.
fn open_with(package: &Value, key: &[u8]) -> Option<Value> {
    let sealed = &package["sealed"];
    assert_eq!(sealed["alg"], "XChaCha20-Poly1305");
    let nonce = b64(&sealed["nonce"]);
    assert_eq!(nonce.len(), 24);
    let aad = format!(
        "exam-package\0{}\0{}",
        package["id"].as_str().unwrap(),
        package["version"]
    );
    let plain = XChaCha20Poly1305::new_from_slice(key)
        .unwrap()
        .decrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &b64(&sealed["ciphertext"]),
                aad: aad.as_bytes(),
            },
        )
        .ok()?;
    Some(serde_json::from_slice(&plain).unwrap())
}

/// An exam's questions as the database holds them.
fn questions(server: &TestServer, exam: &str) -> Value {
    let conn = server.state.db.lock();
    let text: String = conn
        .query_row("SELECT questions FROM exams WHERE id = ?1", [exam], |r| {
            r.get(0)
        })
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn at(offset: chrono::Duration) -> String {
    exam_server::rfc3339(chrono::Utc::now() + offset)
}

/// Moves an exam's window (and `available_from`) in the database.
fn set_times(
    server: &TestServer,
    exam: &str,
    available_from: Option<String>,
    opens_at: String,
    closes_at: String,
) {
    server
        .state
        .db
        .lock()
        .execute(
            "UPDATE exams SET available_from = ?2, opens_at = ?3, closes_at = ?4 WHERE id = ?1",
            (exam, available_from, opens_at, closes_at),
        )
        .unwrap();
}

async fn package(student: &Student<'_>, exam: &str) -> (u16, Value, Option<String>) {
    let response = student
        .request(Method::GET, &format!("/v1/exams/{exam}/package"))
        .send()
        .await
        .unwrap();
    let etag = response
        .headers()
        .get("etag")
        .map(|e| e.to_str().unwrap().to_string());
    let (status, body) = status_json(response).await;
    (status, body, etag)
}

async fn key(student: &Student<'_>, exam: &str) -> (u16, Value) {
    student
        .send(Method::POST, &format!("/v1/exams/{exam}/key"), json!({}))
        .await
}

async fn start_code(server: &TestServer, exam: &str) -> Value {
    let (status, body) = server
        .admin(
            Method::GET,
            &format!("/v1/admin/exams/{exam}/start-code"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn audit(server: &TestServer, kind: &str) -> Vec<Value> {
    let (status, body) = server
        .admin(Method::GET, &format!("/v1/admin/audit?type={kind}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

#[tokio::test]
async fn the_list_says_which_exams_are_sealed_and_when_they_may_be_fetched() {
    let server = TestServer::start().await;
    let s = Student::login(&server, "student1").await;
    let (status, exams) = s.get("/v1/exams").await;
    assert_eq!(status, 200);
    let exam = |id: &str| {
        exams
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == id)
            .cloned()
    };
    for id in [OPEN, SOON, TOMORROW] {
        let e = exam(id).unwrap_or_else(|| panic!("{id} is listed"));
        assert_eq!(e["sealed"], true, "{id}");
        assert!(e["available_from"].as_str().unwrap() <= e["opens_at"].as_str().unwrap());
        assert!(e["question_count"].as_u64().unwrap() > 0);
    }
    assert!(exam(CLOSED).is_none(), "closed exams are not listed");
    let mixed = exam("demo-mixed").unwrap();
    assert_eq!(mixed["sealed"], false);
    assert_eq!(mixed["available_from"], mixed["opens_at"]);
    // The unsealed demo exams are as they were.
    let (status, package) = s.get("/v1/exams/demo-mixed/package").await;
    assert_eq!(status, 200);
    assert_eq!(package["questions"].as_array().unwrap().len(), 20);
}

#[tokio::test]
async fn the_key_is_released_only_while_the_exam_is_open_and_every_release_is_audited() {
    let server = TestServer::start().await;
    let s1 = Student::login(&server, "student1").await;
    let s2 = Student::login(&server, "student2").await;

    // Before: 403 exam_not_open with opens_at.
    let (status, body) = key(&s1, SOON).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "exam_not_open");
    assert!(body["opens_at"].is_string());
    let (status, body) = key(&s1, TOMORROW).await;
    assert_eq!(
        (status, body["code"].clone()),
        (403, json!("exam_not_open"))
    );

    // During: each student gets the same key, which names the package's key.
    let (status, k1) = key(&s1, OPEN).await;
    assert_eq!(status, 200, "{k1}");
    assert_eq!(b64(&k1["key"]).len(), 32);
    let (status, k2) = key(&s2, OPEN).await;
    assert_eq!(status, 200, "{k2}");
    assert_eq!(k1, k2);
    let (_, package, _) = package(&s1, OPEN).await;
    assert_eq!(package["sealed"]["key_id"], k1["key_id"]);

    // After: 403 exam_closed.
    let (status, body) = key(&s1, CLOSED).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "exam_closed");
    assert!(body["closes_at"].is_string());

    // The same exam through its window: before, during, after.
    set_times(
        &server,
        SOON,
        None,
        at(-chrono::Duration::minutes(1)),
        at(chrono::Duration::hours(1)),
    );
    let (status, body) = key(&s1, SOON).await;
    assert_eq!(status, 200, "{body}");
    set_times(
        &server,
        SOON,
        None,
        at(-chrono::Duration::hours(2)),
        at(-chrono::Duration::hours(1)),
    );
    assert_eq!(key(&s1, SOON).await.1["code"], "exam_closed");

    // An unsealed exam has no key; an unknown one is 404; the key is a student's.
    let (status, body) = key(&s1, "demo-mixed").await;
    assert_eq!(
        (status, body["code"].clone()),
        (409, json!("exam_not_sealed"))
    );
    assert_eq!(key(&s1, "nope").await.0, 404);
    let (status, _) = server
        .admin(Method::POST, &format!("/v1/exams/{OPEN}/key"), None)
        .await;
    assert_eq!(status, 403);
    let response = s1
        .request(Method::POST, &format!("/v1/exams/{OPEN}/key"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_json(response).await.1["code"],
        "idempotency_key_required"
    );

    let released = audit(&server, "exam_key_released").await;
    let users: Vec<&str> = released
        .iter()
        .map(|e| e["username"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["student1", "student2", "student1"], "newest first");
    let first = released.last().unwrap();
    assert_eq!(first["detail"]["exam_id"], OPEN);
    assert_eq!(first["detail"]["version"], 1);
    assert_eq!(released[0]["detail"]["exam_id"], SOON);
}

#[tokio::test]
async fn packages_are_refused_before_available_from() {
    let server = TestServer::start().await;
    let s = Student::login(&server, "student1").await;

    // Opens tomorrow, available now: the sealed form, with no questions in clear.
    let (status, body, etag) = package(&s, TOMORROW).await;
    assert_eq!(status, 200, "{body}");
    assert!(etag.is_some());
    assert!(body.get("questions").is_none());
    assert_eq!(body["question_count"], 4);

    // Available from tomorrow: 403 not_yet_available, saying when.
    let tomorrow = at(chrono::Duration::days(1));
    let opens = at(chrono::Duration::days(2));
    let closes = at(chrono::Duration::days(3));
    set_times(
        &server,
        TOMORROW,
        Some(tomorrow.clone()),
        opens.clone(),
        closes.clone(),
    );
    let (status, body, etag) = package(&s, TOMORROW).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "not_yet_available");
    assert_eq!(body["available_from"], tomorrow);
    assert_eq!(body["opens_at"], opens);
    assert!(etag.is_none());
    // No available_from: from the opening on.
    set_times(&server, TOMORROW, None, opens.clone(), closes.clone());
    let (status, body, _) = package(&s, TOMORROW).await;
    assert_eq!(
        (status, body["available_from"].clone()),
        (403, json!(opens))
    );
    let (_, exams) = s.get("/v1/exams").await;
    let listed = exams
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == TOMORROW)
        .unwrap();
    assert_eq!(listed["available_from"], opens);

    // An unsealed exam is never handed out before it opens, whatever available_from says.
    server
        .state
        .db
        .lock()
        .execute(
            "INSERT INTO exams (id, title, version, opens_at, closes_at, duration_s, instructions, questions, available_from)
             VALUES ('clear-later', 'Later', 1, ?1, ?2, 600, '', '[{\"id\":\"x\",\"kind\":\"essay\",\"prompt\":\"Secret prompt\"}]', ?3)",
            (&opens, &closes, at(-chrono::Duration::days(1))),
        )
        .unwrap();
    let (status, body, _) = package(&s, "clear-later").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "not_yet_available");
    assert_eq!(body["opens_at"], opens);
    assert_eq!(body["available_from"], opens);
    assert!(!body.to_string().contains("Secret prompt"));
}

#[tokio::test]
async fn a_sealed_package_opens_with_the_released_key_and_with_the_start_code_only() {
    let server = TestServer::start().await;
    let s1 = Student::login(&server, "student1").await;
    let s2 = Student::login(&server, "student2").await;
    let (status, package1, etag1) = package(&s1, OPEN).await;
    assert_eq!(status, 200, "{package1}");
    for field in ["title", "duration_s", "instructions"] {
        assert!(!package1[field].is_null(), "{field}");
    }
    assert_eq!(package1["version"], 1);
    let kdf = &package1["sealed"]["start_code"];
    assert_eq!(
        (kdf["m_kib"].clone(), kdf["t"].clone(), kdf["p"].clone()),
        (json!(65536), json!(3), json!(1))
    );
    // Sealed once: the same bytes and ETag for every student, and 304 for a match.
    let (_, package2, etag2) = package(&s2, OPEN).await;
    assert_eq!(package1, package2);
    assert_eq!(etag1, etag2);
    let etag = etag1.unwrap();
    let again = s2
        .request(Method::GET, &format!("/v1/exams/{OPEN}/package"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);

    let expected = questions(&server, OPEN);
    let (_, released) = key(&s1, OPEN).await;
    assert_eq!(
        open_with(&package1, &b64(&released["key"])),
        Some(expected.clone())
    );

    let code = start_code(&server, OPEN).await;
    assert_eq!(code["exam_id"], OPEN);
    assert_eq!(code["version"], 1);
    let code = code["start_code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 14, "{code}");
    let from_code = derive(&code, &package1);
    assert_eq!(from_code, b64(&released["key"]));
    assert_eq!(open_with(&package1, &from_code), Some(expected));
    // Lower case and without dashes is the same code.
    assert_eq!(
        derive(&code.to_lowercase().replace('-', ""), &package1),
        from_code
    );

    // Another exam's code does not open it, nor does the package open as another version.
    let other = start_code(&server, SOON).await;
    let other = other["start_code"].as_str().unwrap();
    assert_ne!(other, code);
    assert_eq!(open_with(&package1, &derive(other, &package1)), None);
    let mut relabelled = package1.clone();
    relabelled["version"] = json!(2);
    assert_eq!(open_with(&relabelled, &from_code), None);
    assert_eq!(audit(&server, "start_code_viewed").await.len(), 2);
}

/// No wrong start code opens a sealed package (each case runs the real Argon2id, so few).
#[test]
fn no_random_wrong_code_opens_a_package() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(TestServer::start());
    let student = runtime.block_on(Student::login(&server, "student1"));
    let (_, package, _) = runtime.block_on(package(&student, OPEN));
    let code = runtime.block_on(start_code(&server, OPEN));
    let right = code["start_code"].as_str().unwrap().replace('-', "");
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 6,
        ..ProptestConfig::default()
    });
    runner
        .run(&"[A-HJ-NP-Z2-9]{12}", |wrong| {
            prop_assume!(wrong != right);
            prop_assert_eq!(open_with(&package, &derive(&wrong, &package)), None);
            Ok(())
        })
        .unwrap();
}

#[tokio::test]
async fn rotating_the_start_code_reseals_and_is_refused_once_open() {
    let server = TestServer::start().await;
    let s = Student::login(&server, "student1").await;
    let (_, before, old_etag) = package(&s, SOON).await;
    let old_etag = old_etag.unwrap();
    let old = start_code(&server, SOON).await;

    let (status, rotated) = server
        .admin(
            Method::POST,
            &format!("/v1/admin/exams/{SOON}/start-code/rotate"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(rotated["version"], 2);
    assert_ne!(rotated["start_code"], old["start_code"]);
    assert_eq!(rotated["opens_at"], old["opens_at"]);
    assert_eq!(start_code(&server, SOON).await, rotated);

    let (status, after, new_etag) = package(&s, SOON).await;
    assert_eq!(status, 200);
    assert_eq!(after["version"], 2);
    assert_ne!(new_etag.unwrap(), old_etag);
    assert_ne!(after["sealed"]["key_id"], before["sealed"]["key_id"]);
    let stale = s
        .request(Method::GET, &format!("/v1/exams/{SOON}/package"))
        .header("If-None-Match", &old_etag)
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200, "the old ETag no longer matches");
    let (_, exams) = s.get("/v1/exams").await;
    assert!(exams
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["id"] == SOON && e["version"] == 2));

    let old_code = old["start_code"].as_str().unwrap();
    assert_eq!(open_with(&after, &derive(old_code, &after)), None);
    let new_code = rotated["start_code"].as_str().unwrap();
    assert_eq!(
        open_with(&after, &derive(new_code, &after)),
        Some(questions(&server, SOON))
    );

    // Too late once the exam is open; meaningless for an unsealed exam.
    for (exam, code) in [
        (OPEN, "exam_already_open"),
        ("demo-mixed", "exam_not_sealed"),
    ] {
        let (status, body) = server
            .admin(
                Method::POST,
                &format!("/v1/admin/exams/{exam}/start-code/rotate"),
                None,
            )
            .await;
        assert_eq!((status, body["code"].clone()), (409, json!(code)), "{exam}");
    }
    let (status, _) = server
        .admin(Method::GET, "/v1/admin/exams/nope/start-code", None)
        .await;
    assert_eq!(status, 404);
    // Start codes are for the admin token only.
    assert_eq!(
        s.get(&format!("/v1/admin/exams/{SOON}/start-code")).await.0,
        403
    );

    let rotations = audit(&server, "start_code_rotated").await;
    assert_eq!(rotations.len(), 1);
    assert_eq!(rotations[0]["detail"]["exam_id"], SOON);
    assert_eq!(rotations[0]["detail"]["version"], 2);
}

/// Everything a student can see of an exam that has not opened — the list, the package (body,
/// `ETag`, the 304 path), the key endpoint's error, an attempt's refusal — holds none of its
/// prompts, and the `ETag` is no hash of the clear package.
#[tokio::test]
async fn nothing_of_a_sealed_exam_is_readable_before_it_opens() {
    let server = TestServer::start().await;
    let s = Student::login(&server, "student1").await;
    let mut seen = String::new();
    let mut record = |what: &str, headers: &reqwest::header::HeaderMap, body: &str| {
        seen.push_str(what);
        for (name, value) in headers {
            seen.push_str(&format!("{name}: {}\n", value.to_str().unwrap_or("")));
        }
        seen.push_str(body);
        seen.push('\n');
    };
    for exam in [SOON, TOMORROW] {
        for (method, path, idempotent) in [
            (Method::GET, "/v1/exams".to_string(), false),
            (Method::GET, format!("/v1/exams/{exam}/package"), false),
            (Method::POST, format!("/v1/exams/{exam}/key"), true),
            (Method::POST, format!("/v1/exams/{exam}/attempts"), true),
        ] {
            let mut request = s.request(method, &path);
            if idempotent {
                request = request
                    .header("Idempotency-Key", new_key())
                    .json(&json!({}));
            }
            let response = request.send().await.unwrap();
            let headers = response.headers().clone();
            let body = response.text().await.unwrap();
            record(&path, &headers, &body);
        }
        let response = s
            .request(Method::GET, &format!("/v1/exams/{exam}/package"))
            .send()
            .await
            .unwrap();
        let etag = response.headers()["etag"].to_str().unwrap().to_string();
        let package: Value = response.json().await.unwrap();
        let not_modified = s
            .request(Method::GET, &format!("/v1/exams/{exam}/package"))
            .header("If-None-Match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(not_modified.status(), 304);
        let headers = not_modified.headers().clone();
        record("304", &headers, &not_modified.text().await.unwrap());

        // The ETag is not that of the clear package.
        let clear = json!({
            "id": package["id"], "version": package["version"], "title": package["title"],
            "duration_s": package["duration_s"], "instructions": package["instructions"],
            "questions": questions(&server, exam),
        });
        let clear_etag = format!(
            "\"{}\"",
            &hex::encode(Sha256::digest(clear.to_string().as_bytes()))[..32]
        );
        assert_ne!(etag, clear_etag);
    }
    assert!(seen.contains("exam_not_open"), "{seen}");
    for exam in [SOON, TOMORROW] {
        for question in questions(&server, exam).as_array().unwrap() {
            let prompt = question["prompt"].as_str().unwrap();
            assert!(
                !seen.contains(prompt),
                "`{prompt}` of {exam} is readable before it opens"
            );
            let escaped = serde_json::to_string(prompt).unwrap();
            assert!(!seen.contains(escaped.trim_matches('"')), "{prompt}");
            for option in question["options"].as_array().into_iter().flatten() {
                let text = option["text"].as_str().unwrap();
                // Short option texts ("2", "Rust") may appear anywhere by chance.
                if text.len() >= 8 {
                    assert!(!seen.contains(text), "option `{text}` of {exam}");
                }
            }
        }
    }
}
