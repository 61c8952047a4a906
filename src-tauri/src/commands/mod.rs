//! IPC commands: thin adapters that convert arguments, call the core and map errors.

pub mod analytics;
pub mod app;
pub mod auth;
pub mod exam;
pub mod security;
pub mod sync;
pub mod windows;
