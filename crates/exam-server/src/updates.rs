//! The reference server as the app's update server: releases read from a folder
//! (`--updates-dir`), answered in the updater's dynamic form — 204 when there is nothing for
//! this computer, 200 `{version, notes, pub_date, url, signature}` when there is — and the
//! artifacts served from the same folder.
//!
//! The folder holds one directory per channel and, in it, one per version:
//! ```text
//! updates/stable/0.2.0/manifest.json   {"notes": "…", "pub_date": "2026-12-01T08:00:00Z",
//!                                        "platforms": {"linux-x86_64-deb": {"url": "exam-desktop_0.2.0_amd64.deb"}}}
//! updates/stable/0.2.0/exam-desktop_0.2.0_amd64.deb
//! updates/stable/0.2.0/exam-desktop_0.2.0_amd64.deb.sig     (minisign, as `tauri build` writes it)
//! ```
//! (the manifest is the `platforms` part of the updater's static JSON; a platform may carry
//! its `signature` inline instead of the `.sig` file). The folder is read at each request, so
//! IT publishes a release by copying a directory, and withdraws one by removing it.
//!
//! Which release: the newest of the channel that starts with the computer's `pin` (IT's
//! version pin, e.g. `1.4.`) and is not the version it runs; an older one only when a pin
//! points at it (a rollback — the app itself still refuses it unless its policy allows a
//! downgrade). A platform is looked up as `{target}-{arch}-{bundle}` then `{target}-{arch}`,
//! the updater's own order.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use semver::Version;
use serde::Deserialize;

use crate::problem::ApiError;
use crate::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/updates/{target}/{arch}/{current}", get(latest))
        .route("/updates/files/{channel}/{version}/{file}", get(artifact))
}

#[derive(Debug, Deserialize)]
pub struct Ask {
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    pin: Option<String>,
    /// The kind of install asking (`deb`, `rpm`, `appimage`, `msi`, `nsis`, `app`).
    #[serde(default)]
    bundle: Option<String>,
}

/// What a computer asks for.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    pub channel: &'a str,
    pub current: &'a Version,
    pub pin: Option<&'a str>,
    pub target: &'a str,
    pub arch: &'a str,
    pub bundle: Option<&'a str>,
}

#[derive(Debug, Deserialize)]
struct Manifest {
    #[serde(default)]
    notes: Option<String>,
    #[serde(default)]
    pub_date: Option<String>,
    platforms: std::collections::BTreeMap<String, Platform>,
}

#[derive(Debug, Deserialize)]
struct Platform {
    url: String,
    #[serde(default)]
    signature: Option<String>,
}

/// What is wrong with a request's parameters, as the OpenAPI document states them: names of
/// letters, digits and `-`/`_` for the platform, a version of at most 64 characters, a channel
/// name, a pin of digits and dots (as IT's policy takes it), an install kind in lower case.
fn invalid(target: &str, arch: &str, current: &str, channel: &str, ask: &Ask) -> Option<String> {
    let name = |s: &str, max: usize| {
        !s.is_empty()
            && s.len() <= max
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if !name(target, 32) || !name(arch, 32) {
        return Some(format!("`{target}/{arch}` is not a platform"));
    }
    if current.len() > 64 {
        return Some("the version is longer than 64 characters".into());
    }
    if channel.len() > 64
        || !plain(channel)
        || !channel.starts_with(|c: char| c.is_ascii_alphanumeric())
    {
        return Some(format!("`{channel}` is not a channel name"));
    }
    if let Some(pin) = &ask.pin {
        if pin.len() > 32 || !pin.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return Some(format!(
                "`{pin}` is not a version pin (digits and dots, at most 32)"
            ));
        }
    }
    if let Some(bundle) = &ask.bundle {
        if bundle.len() > 16 || !bundle.chars().all(|c| c.is_ascii_lowercase()) {
            return Some(format!("`{bundle}` is not a kind of install"));
        }
    }
    None
}

/// A name that is one plain path segment (channels, versions, file names).
fn plain(segment: &str) -> bool {
    !segment.is_empty()
        && segment.len() <= 128
        && segment != "."
        && segment != ".."
        && segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'))
}

/// A path or query the extractors refuse (not UTF-8, a repeated parameter…) is a problem
/// like any other, not axum's plain-text rejection.
fn refused(error: impl std::fmt::Display) -> Response {
    ApiError::bad_request("invalid_query", error.to_string()).into_response()
}

async fn latest(
    State(state): State<Arc<AppState>>,
    path: Result<UrlPath<(String, String, String)>, PathRejection>,
    query: Result<Query<Ask>, QueryRejection>,
    headers: axum::http::HeaderMap,
) -> Response {
    let UrlPath((target, arch, current)) = match path {
        Ok(path) => path,
        Err(e) => return refused(e),
    };
    let Query(ask) = match query {
        Ok(query) => query,
        Err(e) => return refused(e),
    };
    // A bad request is one whatever the server publishes.
    let channel = ask.channel.clone().unwrap_or_else(|| "stable".into());
    if let Some(problem) = invalid(&target, &arch, &current, &channel, &ask) {
        return ApiError::validation(problem).into_response();
    }
    let current_text = current;
    let current = match Version::parse(&current_text) {
        Ok(v) => v,
        Err(e) => {
            return ApiError::validation(format!("`{current_text}` is not a version: {e}"))
                .into_response()
        }
    };
    let Some(dir) = state.config.updates_dir.clone() else {
        return StatusCode::NO_CONTENT.into_response();
    };
    let pin = ask.pin.filter(|p| !p.is_empty());
    // The artifact's address is absolute (the updater requires it), on the host the computer
    // reached — a proxy in front says which scheme.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https")
        .unwrap_or("http");
    let base = format!("{scheme}://{host}/updates/");
    let answer = tokio::task::spawn_blocking(move || {
        let asked = Asked {
            channel: &channel,
            current: &current,
            pin: pin.as_deref(),
            target: &target,
            arch: &arch,
            bundle: ask.bundle.as_deref(),
        };
        choose(&dir, &asked, &base)
    })
    .await;
    match answer {
        Ok(Ok(Some(body))) => axum::Json(body).into_response(),
        Ok(Ok(None)) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(problem)) => {
            tracing::error!(%problem, "an update release cannot be read");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "update_release_invalid",
                problem,
            )
            .into_response()
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The release for this computer as the updater's dynamic JSON, or none. A broken release
/// (its manifest unreadable, its signature missing) is an error naming the file, never
/// skipped silently: IT must see that what it published cannot be installed.
pub fn choose(
    dir: &Path,
    asked: &Asked<'_>,
    base: &str,
) -> Result<Option<serde_json::Value>, String> {
    let Asked {
        channel,
        current,
        pin,
        target,
        arch,
        bundle,
    } = *asked;
    let channel_dir = dir.join(channel);
    let Ok(entries) = std::fs::read_dir(&channel_dir) else {
        return Ok(None);
    };
    let mut versions: Vec<Version> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| Version::parse(&e.file_name().to_string_lossy()).ok())
        .filter(|v| v != current)
        .filter(|v| pin.is_none_or(|p| v.to_string().starts_with(p)))
        .collect();
    versions.sort();
    let Some(version) = versions.pop() else {
        return Ok(None);
    };
    // Without a pin only a newer version is offered; a pin may point back (a rollback).
    if pin.is_none() && &version < current {
        return Ok(None);
    }
    let release_dir = channel_dir.join(version.to_string());
    let manifest_path = release_dir.join("manifest.json");
    let text = std::fs::read_to_string(&manifest_path)
        .map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .map_err(|e| format!("{}: line {}: {e}", manifest_path.display(), e.line()))?;
    let keys = bundle
        .filter(|b| plain(b))
        .map(|b| format!("{target}-{arch}-{b}"))
        .into_iter()
        .chain(std::iter::once(format!("{target}-{arch}")));
    let Some(platform) = keys.into_iter().find_map(|k| manifest.platforms.get(&k)) else {
        return Ok(None);
    };
    if !plain(&platform.url) {
        return Err(format!(
            "{}: the url `{}` must be a file name in the release's folder",
            manifest_path.display(),
            platform.url
        ));
    }
    let signature = match &platform.signature {
        Some(s) => s.trim().to_string(),
        None => {
            let sig = release_dir.join(format!("{}.sig", platform.url));
            std::fs::read_to_string(&sig)
                .map_err(|e| format!("{}: the signature is missing: {e}", sig.display()))?
                .trim()
                .to_string()
        }
    };
    Ok(Some(serde_json::json!({
        "version": version.to_string(),
        "notes": manifest.notes,
        "pub_date": manifest.pub_date,
        "url": format!("{base}files/{channel}/{version}/{}", platform.url),
        "signature": signature,
    })))
}

async fn artifact(
    State(state): State<Arc<AppState>>,
    path: Result<UrlPath<(String, String, String)>, PathRejection>,
) -> Response {
    let UrlPath((channel, version, file)) = match path {
        Ok(path) => path,
        Err(e) => return refused(e),
    };
    let Some(dir) = state.config.updates_dir.clone() else {
        return ApiError::not_found("there is no update file: this server publishes no updates")
            .into_response();
    };
    if ![&channel, &version, &file].iter().all(|s| plain(s)) {
        return ApiError::not_found("there is no such update file").into_response();
    }
    let path: PathBuf = dir.join(&channel).join(&version).join(&file);
    match tokio::task::spawn_blocking(move || std::fs::read(&path))
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r)
    {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        Err(_) => ApiError::not_found(format!(
            "there is no update file {channel}/{version}/{file}"
        ))
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(dir: &Path, channel: &str, version: &str, platforms: serde_json::Value) {
        let d = dir.join(channel).join(version);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("manifest.json"),
            serde_json::json!({"notes": format!("v{version}"), "platforms": platforms}).to_string(),
        )
        .unwrap();
    }

    fn linux_any(current: &Version) -> Asked<'_> {
        Asked {
            channel: "stable",
            current,
            pin: None,
            target: "linux",
            arch: "x86_64",
            bundle: None,
        }
    }

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn the_newest_the_pin_allows_for_this_platform() {
        let dir = tempfile::tempdir().unwrap();
        let linux = |file: &str| {
            serde_json::json!({"linux-x86_64-deb": {"url": file, "signature": "sig-deb"},
                               "linux-x86_64": {"url": format!("{file}.AppImage"), "signature": "sig-any"}})
        };
        release(dir.path(), "stable", "1.4.2", linux("a_1.4.2.deb"));
        release(dir.path(), "stable", "1.4.3", linux("a_1.4.3.deb"));
        release(dir.path(), "stable", "1.5.0", linux("a_1.5.0.deb"));
        release(dir.path(), "stable", "1.3.9", linux("a_1.3.9.deb"));
        release(dir.path(), "beta", "1.6.0-beta.1", linux("b.deb"));
        let ask = |current: &str, pin: Option<&str>, channel: &str, bundle: Option<&str>| {
            let current = v(current);
            let asked = Asked {
                channel,
                current: &current,
                pin,
                target: "linux",
                arch: "x86_64",
                bundle,
            };
            choose(dir.path(), &asked, "http://h/updates/")
                .unwrap()
                .map(|j| {
                    (
                        j["version"].as_str().unwrap().to_string(),
                        j["signature"].as_str().unwrap().to_string(),
                    )
                })
        };
        let some = |version: &str, sig: &str| Some((version.to_string(), sig.to_string()));
        assert_eq!(
            ask("1.4.2", None, "stable", Some("deb")),
            some("1.5.0", "sig-deb")
        );
        assert_eq!(ask("1.4.2", None, "stable", None), some("1.5.0", "sig-any"));
        assert_eq!(
            ask("1.4.2", Some("1.4."), "stable", Some("deb")),
            some("1.4.3", "sig-deb")
        );
        assert_eq!(ask("1.5.0", None, "stable", Some("deb")), None);
        // A rollback pin points back; the app decides whether it may take it.
        assert_eq!(
            ask("1.4.2", Some("1.3."), "stable", Some("deb")),
            some("1.3.9", "sig-deb")
        );
        assert_eq!(
            ask("1.4.2", None, "beta", Some("deb")),
            some("1.6.0-beta.1", "sig-deb")
        );
        assert_eq!(ask("1.4.2", None, "nightly", Some("deb")), None);
        // No artifact for this platform: nothing to offer.
        assert_eq!(
            choose(
                dir.path(),
                &Asked {
                    target: "windows",
                    bundle: Some("msi"),
                    ..linux_any(&v("1.4.2"))
                },
                "http://h/updates/"
            )
            .unwrap(),
            None
        );
    }

    #[test]
    fn a_broken_release_is_an_error_naming_the_file() {
        let one = v("1.0.0");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("stable").join("2.0.0");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("manifest.json"), "{\"platforms\": ").unwrap();
        let error = choose(dir.path(), &linux_any(&one), "http://h/updates/").unwrap_err();
        assert!(
            error.contains("manifest.json") && error.contains("line"),
            "{error}"
        );

        std::fs::write(
            d.join("manifest.json"),
            r#"{"platforms": {"linux-x86_64": {"url": "a.AppImage"}}}"#,
        )
        .unwrap();
        let error = choose(dir.path(), &linux_any(&one), "http://h/updates/").unwrap_err();
        assert!(
            error.contains("a.AppImage.sig") && error.contains("signature"),
            "{error}"
        );
        std::fs::write(d.join("a.AppImage.sig"), "c2ln\n").unwrap();
        let ok = choose(dir.path(), &linux_any(&one), "http://h/updates/")
            .unwrap()
            .unwrap();
        assert_eq!(ok["signature"], "c2ln");
        assert_eq!(ok["url"], "http://h/updates/files/stable/2.0.0/a.AppImage");

        std::fs::write(
            d.join("manifest.json"),
            r#"{"platforms": {"linux-x86_64": {"url": "../../secret", "signature": "x"}}}"#,
        )
        .unwrap();
        let error = choose(dir.path(), &linux_any(&one), "http://h/updates/").unwrap_err();
        assert!(error.contains("must be a file name"), "{error}");
    }
}
