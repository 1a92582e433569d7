//! Typed ids. Both are 32 lowercase hex digits, random, so that a short prefix is
//! enough to tell two apart (as with Docker's container ids).

use std::fmt;

/// A malformed id in a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 32 lowercase hex digits")]
pub struct IdError;

macro_rules! typed_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A new random id.
            pub fn generate() -> Self {
                Self(uuid::Uuid::new_v4().simple().to_string())
            }

            /// Parses an id as clients send it.
            pub fn parse(text: &str) -> Result<Self, IdError> {
                let valid = text.len() == 32
                    && text.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'));
                if valid { Ok(Self(text.to_owned())) } else { Err(IdError) }
            }

            /// The id as stored and sent.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The first 12 digits, as people read them.
            pub fn short(&self) -> &str {
                &self.0[..12]
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(&self.0)
            }
        }
    };
}

typed_id!(
    /// Identifies a deployment.
    DeploymentId
);
typed_id!(
    /// Identifies a workload; stable across its restarts.
    WorkloadId
);
typed_id!(
    /// Identifies a node (a `slipway serve`); kept in its data directory, so
    /// stable across restarts of the same server.
    NodeId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back() {
        let id = WorkloadId::generate();
        assert_eq!(WorkloadId::parse(id.as_str()), Ok(id.clone()));
        assert_eq!(id.short().len(), 12);
    }

    #[test]
    fn malformed_ids_are_refused() {
        for text in [
            "",
            "abc",
            "../../etc/passwd",
            &"A".repeat(32),
            &"0".repeat(33),
        ] {
            assert_eq!(DeploymentId::parse(text), Err(IdError), "{text}");
        }
    }
}
