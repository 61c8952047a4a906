//! A wrapper for secrets (tokens, passwords, keys) that cannot leak by accident.
//!
//! `Debug` and `Display` print `<redacted>`, and the type has no `Serialize`, so a secret
//! cannot reach a log line, an IPC payload or a file without an explicit
//! [`Secret::expose`] at the one place that needs the value.

use std::fmt;

/// A secret value. Read it with [`Secret::expose`]; everything else sees `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The value itself. Call it only where the secret is actually used (an HTTP header,
    /// the keychain), never to format or log it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let token = Secret::new(String::from("eyJhbGciOi.secret-token"));
        assert_eq!(format!("{token:?}"), "<redacted>");
        assert_eq!(format!("{token}"), "<redacted>");
        assert_eq!(format!("{:#?}", Some(&token)), "Some(\n    <redacted>,\n)");
        assert_eq!(token.expose(), "eyJhbGciOi.secret-token");
    }

    #[test]
    fn a_struct_holding_a_secret_debugs_without_it() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Tokens {
            user: &'static str,
            refresh: Secret<&'static str>,
        }
        let tokens = Tokens {
            user: "student1",
            refresh: Secret::new("r-123456"),
        };
        let printed = format!("{tokens:?}");
        assert!(printed.contains("student1"));
        assert!(!printed.contains("r-123456"), "{printed}");
    }
}
