//! Secret values: passed on to workloads, never shown.

use std::fmt;

/// What a secret looks like wherever it is shown.
pub const REDACTED: &str = "********";

/// A secret value (a token, a password). Its `Debug` and `Display` print
/// [`REDACTED`]; the value itself is only reached through [`Secret::expose`], so
/// that every place that reads it says so. It is deliberately not `Serialize`:
/// a serialised spec cannot carry it by accident.
#[derive(Clone, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the few places that hand it on (a workload's
    /// environment, the store).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact_and_expose_reveals() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret}"), REDACTED);
        assert_eq!(format!("{secret:?}"), REDACTED);
        assert_eq!(format!("{:?}", Some(&secret)), format!("Some({REDACTED})"));
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn a_map_of_secrets_debugs_without_values() {
        let map = std::collections::BTreeMap::from([("TOKEN".to_owned(), Secret::from("s3cr3t"))]);
        let shown = format!("{map:?}");
        assert!(shown.contains("TOKEN"));
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }

    #[test]
    fn deserialises_from_a_plain_string() {
        let secret: Secret = serde_json::from_str("\"abc\"").expect("a string");
        assert_eq!(secret.expose(), "abc");
    }
}
