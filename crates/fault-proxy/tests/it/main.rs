//! Integration tests of the fault proxy: real sockets, real (tiny) upstream servers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod faults;
mod latency;
mod lifecycle;
mod link;
mod portal;
mod support;
