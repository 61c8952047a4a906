//! Integration tests of exam-core: real files in temporary directories.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod config;
