//! Typed ids. Both are 32 lowercase hex digits, random, so that a short prefix is
//! enough to tell two apart (as with Docker's container ids).

use std::fmt;

/// A malformed id in a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 32 lowercase hex digits (or a hyphenated UUID)")]
pub struct IdError;

/// The 32 lowercase hex digits of `text`, given as they are or as a
/// hyphenated UUID (`8-4-4-4-12` digits, either case).
fn parse_hex_id(text: &str) -> Result<String, IdError> {
    let is_hex = |byte: u8| matches!(byte, b'0'..=b'9' | b'a'..=b'f');
    if text.len() == 32 && text.bytes().all(is_hex) {
        return Ok(text.to_owned());
    }
    let groups: Vec<&str> = text.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|group| group.len()).collect();
    if lengths != [8, 4, 4, 4, 12] {
        return Err(IdError);
    }
    let digits = groups.concat().to_ascii_lowercase();
    if digits.bytes().all(is_hex) {
        Ok(digits)
    } else {
        Err(IdError)
    }
}

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

            /// Parses an id as clients send it: 32 lowercase hex digits, or the
            /// same in the hyphenated UUID form (`8-4-4-4-12`, either case),
            /// which stands for the same id.
            pub fn parse(text: &str) -> Result<Self, IdError> {
                parse_hex_id(text).map(Self)
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
    fn hyphenated_uuids_stand_for_the_same_id() {
        let id = WorkloadId::generate();
        let text = id.as_str();
        let hyphenated = format!(
            "{}-{}-{}-{}-{}",
            &text[..8],
            &text[8..12],
            &text[12..16],
            &text[16..20],
            &text[20..]
        );
        assert_eq!(WorkloadId::parse(&hyphenated), Ok(id.clone()));
        assert_eq!(WorkloadId::parse(&hyphenated.to_uppercase()), Ok(id));
    }

    #[test]
    fn malformed_ids_are_refused() {
        for text in [
            "",
            "abc",
            "../../etc/passwd",
            &"A".repeat(32),
            &"0".repeat(33),
            "0123456-789a-bcde-f012-3456789abcdef",
            "0123456789ab-cdef-0123-4567-89abcdef",
            "g1234567-89ab-cdef-0123-456789abcdef",
            "+1234567-89ab-cdef-0123-456789abcdef",
        ] {
            assert_eq!(DeploymentId::parse(text), Err(IdError), "{text}");
        }
    }
}
