//! Integration tests of exam-core: real files in temporary directories, the real reference
//! server over HTTP on 127.0.0.1, and the real OS keychain where the keychain is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod analytics;
mod auth;
mod config;
mod crash;
mod exam;
mod keychain;
mod network;
mod queue;
mod readiness;
mod real_networks;
mod rules;
mod sealed;
mod sealed_exam;
mod security;
mod shared_lab;
mod support;
mod sync;
