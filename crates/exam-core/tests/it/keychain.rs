//! The real OS keychain (Secret Service on Linux): `make test` runs the tests under a
//! private D-Bus session with an unlocked gnome-keyring.

use std::process::Command;

use exam_core::keychain::{Keychain, OsKeychain, MAX_SECRET_BYTES};
use exam_core::secret::Secret;

fn service() -> String {
    format!("exam-desktop-tests-{}", uuid_like())
}

fn uuid_like() -> String {
    format!("{}-{:?}", std::process::id(), std::time::Instant::now())
        .replace(|c: char| !c.is_ascii_alphanumeric(), "")
}

fn require_session_bus() {
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "the keychain tests need a D-Bus session with an unlocked keyring: run them through `make test`"
    );
}

#[test]
fn an_8_kb_secret_round_trips_through_the_real_secret_service() {
    require_session_bus();
    let service = service();
    let keychain = Keychain::new(OsKeychain::new(&service));
    let value: String = (0..MAX_SECRET_BYTES)
        .map(|i| char::from(b'A' + (i % 26) as u8))
        .collect();
    keychain.set("token", &Secret::new(value.clone())).unwrap();
    assert_eq!(keychain.get("token").unwrap().unwrap().expose(), &value);

    // Not an in-memory stand-in: another process (secret-tool) finds the entry.
    let output = Command::new("secret-tool")
        .args(["lookup", "service", &service, "username", "token"])
        .output()
        .expect("secret-tool (apt-get install libsecret-tools)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stored = String::from_utf8_lossy(&output.stdout);
    assert!(
        stored.starts_with("1\n") && stored.ends_with(&value[value.len() - 100..]),
        "{}",
        &stored[..40.min(stored.len())]
    );

    keychain.delete("token").unwrap();
    assert!(keychain.get("token").unwrap().is_none());
    let gone = Command::new("secret-tool")
        .args(["lookup", "service", &service, "username", "token"])
        .output()
        .unwrap();
    assert!(!gone.status.success() || gone.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_stored_restored_after_a_restart_and_cleared_at_sign_out() {
    use std::sync::Arc;

    use exam_core::auth::{AuthConfig, AuthStatus};
    use exam_core::bus::EventBus;
    use exam_core::keychain::SecretStore;

    require_session_bus();
    let server = crate::support::Server::start(900).await;
    let service = service();
    let store = || -> Arc<dyn SecretStore> { Arc::new(Keychain::new(OsKeychain::new(&service))) };
    let first =
        crate::support::manager(AuthConfig::new(server.url()), store(), EventBus::default());
    first
        .sign_in("student3", crate::support::password())
        .await
        .unwrap();
    drop(first);

    // A new process would build everything anew: only the keychain carries the session.
    let restarted =
        crate::support::manager(AuthConfig::new(server.url()), store(), EventBus::default());
    assert!(restarted.restore().await.unwrap());
    assert_eq!(restarted.snapshot().user.as_deref(), Some("student3"));
    restarted.access_token().await.unwrap();

    let key = format!(
        "{} refresh-token student3",
        server.url().origin().ascii_serialization()
    );
    let found = Command::new("secret-tool")
        .args(["lookup", "service", &service, "username", &key])
        .output()
        .unwrap();
    assert!(found.status.success() && !found.stdout.is_empty());

    assert_eq!(restarted.sign_out().await.status, AuthStatus::SignedOut);
    let gone = Command::new("secret-tool")
        .args(["lookup", "service", &service, "username", &key])
        .output()
        .unwrap();
    assert!(
        gone.stdout.is_empty(),
        "the refresh token is gone from the keychain"
    );
    let fresh =
        crate::support::manager(AuthConfig::new(server.url()), store(), EventBus::default());
    assert!(!fresh.restore().await.unwrap());
}
