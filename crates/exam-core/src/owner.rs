//! Whose work it is. Exam-lab computers are shared: student after student signs in on one OS
//! account, so everything the core keeps for the server — queued requests, attempts and
//! their answers, exam lists, receipts, outage notes, dead letters — belongs to one student
//! of one server, and is only ever sent with that student's own credentials.

use std::fmt;

use serde::Serialize;

/// One student of one Exam Bank server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Owner {
    /// The server's origin (`https://exam.example:443` as `scheme://host[:port]`).
    pub origin: String,
    /// The student's username on that server.
    pub student: String,
}

impl Owner {
    pub fn new(origin: impl Into<String>, student: impl Into<String>) -> Self {
        Self {
            origin: origin.into(),
            student: student.into(),
        }
    }

    /// The owner of work for `student` on the server at `server`.
    pub fn of(server: &url::Url, student: &str) -> Self {
        Self::new(origin_of(server), student)
    }
}

/// A server URL's origin, as owners and keychain entries name it.
pub fn origin_of(server: &url::Url) -> String {
    server.origin().ascii_serialization()
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.student, self.origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_origin_leaves_out_the_path_and_keeps_the_port() {
        let url: url::Url = "http://127.0.0.1:8791/exam/".parse().unwrap();
        assert_eq!(
            Owner::of(&url, "student1"),
            Owner::new("http://127.0.0.1:8791", "student1")
        );
        let https: url::Url = "https://exam.example/".parse().unwrap();
        assert_eq!(origin_of(&https), "https://exam.example");
    }
}
