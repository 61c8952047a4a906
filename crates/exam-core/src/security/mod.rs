//! Device integrity for exam labs: what this computer checks ([`policy`]), what it sees
//! ([`device`]), the rules that turn that into findings with a reason code, evidence and a
//! confidence ([`findings`]), scores against a behaviour baseline ([`score`]), and the
//! worker that checks every two seconds, tells the windows and reports to the server
//! ([`monitor`]).
//!
//! The line this module holds: a finding never fails an honest student on a guess. Nothing
//! ends an exam in progress; before an attempt, only a program the policy refuses (remote
//! control, by default) stops the start, says which and how to fix it, and lets the start go
//! on as soon as it is closed. A virtual machine is information, never a block.

pub mod activity;
pub mod device;
pub mod findings;
pub mod monitor;
pub mod policy;
pub mod score;

pub use findings::{Code, Confidence, Finding, Severity};
pub use monitor::{SecurityMonitor, SecurityReport, SecuritySnapshot};
pub use policy::{BeforeStart, Category, SecurityPolicy};
