//! The reference server as the app's update server over real HTTP: nothing published (204),
//! a release for this platform with an absolute artifact address that downloads byte for
//! byte, IT's pin, a bad request as a problem, and a path that tries to leave the folder.

use reqwest::Method;

use crate::{config, TestServer};

#[tokio::test]
async fn releases_from_a_folder_in_the_updaters_dynamic_form() {
    let dir = tempfile::tempdir().unwrap();
    let updates = dir.path().join("updates");
    // Without a folder: nothing to offer.
    let plain = TestServer::start().await;
    let r = plain
        .request(Method::GET, "/updates/linux/x86_64/0.1.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // A bad request is one whatever the server publishes.
    let r = plain
        .request(Method::GET, "/updates/linux/x86_64/0.1.0?pin=abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    drop(plain);

    let server = TestServer::start_with(exam_server::Config {
        updates_dir: Some(updates.clone()),
        ..config(dir.path().join("server.db"))
    })
    .await;
    let get = |path: String| {
        let request = server.request(Method::GET, &path);
        async move { request.send().await.unwrap() }
    };
    assert_eq!(
        get("/updates/linux/x86_64/0.1.0".into()).await.status(),
        204
    );

    for (version, bytes) in [("0.1.1", b"one".as_slice()), ("0.2.0", b"two".as_slice())] {
        let release = updates.join("stable").join(version);
        std::fs::create_dir_all(&release).unwrap();
        std::fs::write(release.join("app.deb"), bytes).unwrap();
        std::fs::write(release.join("app.deb.sig"), format!("sig-{version}\n")).unwrap();
        std::fs::write(
            release.join("manifest.json"),
            format!(r#"{{"notes": "v{version}", "platforms": {{"linux-x86_64-deb": {{"url": "app.deb"}}}}}}"#),
        )
        .unwrap();
    }
    let r = get("/updates/linux/x86_64/0.1.0?channel=stable&bundle=deb".into()).await;
    assert_eq!(r.status(), 200);
    let release: serde_json::Value = r.json().await.unwrap();
    assert_eq!(release["version"], "0.2.0");
    assert_eq!(release["signature"], "sig-0.2.0");
    assert_eq!(release["notes"], "v0.2.0");
    let url = release["url"].as_str().unwrap();
    assert_eq!(
        url,
        format!("http://{}/updates/files/stable/0.2.0/app.deb", server.addr)
    );
    let artifact = server.http.get(url).send().await.unwrap();
    assert_eq!(artifact.status(), 200);
    assert_eq!(artifact.bytes().await.unwrap().as_ref(), b"two");

    // IT's pin; an install kind with no artifact; the version it runs.
    let pinned: serde_json::Value = get("/updates/linux/x86_64/0.1.0?pin=0.1.&bundle=deb".into())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pinned["version"], "0.1.1");
    assert_eq!(
        get("/updates/linux/x86_64/0.1.0?bundle=rpm".into())
            .await
            .status(),
        204
    );
    assert_eq!(
        get("/updates/linux/x86_64/0.2.0?bundle=deb".into())
            .await
            .status(),
        204
    );

    // Not a version; a channel that is not a name; a file outside the folder.
    let r = get("/updates/linux/x86_64/latest".into()).await;
    assert_eq!(r.status(), 422);
    let problem: serde_json::Value = r.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("latest"),
        "{problem}"
    );
    assert_eq!(
        get("/updates/linux/x86_64/0.1.0?channel=..%2F..".into())
            .await
            .status(),
        422
    );
    assert_eq!(
        get("/updates/files/stable/0.2.0/..%2Fmanifest.json".into())
            .await
            .status(),
        404
    );
    assert_eq!(
        get("/updates/files/stable/0.2.0/nothing.deb".into())
            .await
            .status(),
        404
    );
}
