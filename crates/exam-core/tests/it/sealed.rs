//! Sealed exam packages against the real reference server: the package as it comes opens with
//! the key the server releases once the exam is open, and with the start code a proctor reads
//! out — and with nothing else.

use base64::Engine as _;
use exam_core::exam::sealed::{ExamKey, Refused, SealedPackage};

use std::sync::Arc;

use exam_core::auth::AuthConfig;
use exam_core::bus::EventBus;

use crate::support::{manager, password, start_code, MemoryStore, Server};

/// A student's access token, from the app's own sign-in.
async fn student_token(server: &Server) -> String {
    let m = manager(
        AuthConfig::new(server.url()),
        Arc::new(MemoryStore::default()),
        EventBus::default(),
    );
    m.sign_in("student1", password()).await.unwrap();
    m.access_token().await.unwrap().expose().clone()
}

async fn package_bytes(server: &Server, token: &str, exam: &str) -> Vec<u8> {
    let response = reqwest::Client::new()
        .get(format!("{}v1/exams/{exam}/package", server.url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_package_opens_with_the_released_key_or_the_start_code_and_nothing_else() {
    let server = Server::start(900).await;
    let token = student_token(&server).await;
    let bytes = package_bytes(&server, &token, "demo-sealed-open").await;
    assert!(exam_core::exam::sealed::is_sealed(&bytes));
    let sealed = SealedPackage::parse("demo-sealed-open", &bytes).unwrap();

    // Online: the key the server releases while the exam is open.
    let reply: serde_json::Value = reqwest::Client::new()
        .post(format!("{}v1/exams/demo-sealed-open/key", server.url()))
        .bearer_auth(&token)
        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["key_id"], sealed.sealed.key_id.as_str());
    let key = ExamKey::from_base64("demo-sealed-open", reply["key"].as_str().unwrap()).unwrap();
    let online = sealed.open(&key).unwrap();
    assert_eq!(online.questions.len(), sealed.question_count as usize);

    // Offline: the proctor's start code, typed as people type it.
    let code = start_code(&server, "demo-sealed-open").await;
    let typed = format!(" {} ", code.to_lowercase());
    let offline = sealed.open(&sealed.key_from_code(&typed).unwrap()).unwrap();
    assert_eq!(offline, online);

    // A wrong code, another exam's code: the package does not open.
    let wrong = sealed.key_from_code("AAAA-BBBB-CCCC").unwrap();
    assert_eq!(sealed.open(&wrong), Err(Refused::DoesNotOpen));
    let other = start_code(&server, "demo-sealed-soon").await;
    assert_eq!(
        sealed.open(&sealed.key_from_code(&other).unwrap()),
        Err(Refused::DoesNotOpen)
    );
    // Altered ciphertext, or the package claiming another version: does not open.
    let mut altered = sealed.clone();
    let mut bytes = base64::engine::general_purpose::STANDARD
        .decode(&altered.sealed.ciphertext)
        .unwrap();
    bytes[3] ^= 0x01;
    altered.sealed.ciphertext = base64::engine::general_purpose::STANDARD.encode(&bytes);
    assert_eq!(altered.open(&key), Err(Refused::DoesNotOpen));
    let mut relabelled = sealed.clone();
    relabelled.version += 1;
    assert_eq!(relabelled.open(&key), Err(Refused::DoesNotOpen));
    // A package for another exam is refused with the exam named.
    let error = SealedPackage::parse(
        "demo-sealed-soon",
        &package_bytes(&server, &token, "demo-sealed-open").await,
    )
    .unwrap_err();
    assert!(error.to_string().contains("demo-sealed-soon"), "{error}");
    assert!(error.reason.contains("demo-sealed-open"), "{error}");
}

#[test]
fn a_package_that_asks_for_absurd_argon2id_parameters_is_refused_with_what_it_asked() {
    let text = serde_json::json!({
        "id": "x", "version": 1, "title": "t", "duration_s": 60, "instructions": "", "question_count": 1,
        "sealed": {"alg": "XChaCha20-Poly1305", "key_id": "k", "nonce": "", "ciphertext": "",
                   "start_code": {"alg": "argon2id", "salt": "", "m_kib": 64 * 1024 * 1024, "t": 3, "p": 1}}
    })
    .to_string();
    let error = SealedPackage::parse("x", text.as_bytes()).unwrap_err();
    assert!(error.reason.contains("KiB"), "{error}");
}
