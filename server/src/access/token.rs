//! Token strings: `slw_<id>_<secret>`, the id in the clear so the server finds
//! the row without scanning, the secret 32 bytes from the OS RNG in base64url.
//! Only the secret's SHA-256 is stored; it is compared in constant time.

use std::fmt;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const PREFIX: &str = "slw_";

/// The secret part of a token as presented by a caller; hidden from `Debug`.
pub struct TokenSecret(String);

impl fmt::Debug for TokenSecret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("TokenSecret(<redacted>)")
    }
}

impl TokenSecret {
    /// The SHA-256 of the secret, as stored.
    pub fn hash(&self) -> Vec<u8> {
        Sha256::digest(self.0.as_bytes()).to_vec()
    }

    /// Whether the secret matches a stored hash, in constant time.
    pub fn matches(&self, stored_hash: &[u8]) -> bool {
        self.hash().ct_eq(stored_hash).into()
    }
}

/// Splits a presented token into its id and secret; `None` when it does not
/// have the shape of a Slipway token.
pub fn parse_token(text: &str) -> Option<(String, TokenSecret)> {
    let rest = text.trim().strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == 32 && id.bytes().all(|byte| byte.is_ascii_hexdigit());
    (id_ok && !secret.is_empty()).then(|| (id.to_owned(), TokenSecret(secret.to_owned())))
}

/// A freshly made token: its id, the full string to show once, and the hash to store.
pub struct NewToken {
    pub id: String,
    pub token: String,
    pub hash: Vec<u8>,
}

impl fmt::Debug for NewToken {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("NewToken")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl NewToken {
    /// A new token with 32 random bytes from the OS.
    pub fn generate() -> Result<NewToken, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        let secret = URL_SAFE_NO_PAD.encode(bytes);
        let id = uuid::Uuid::new_v4().simple().to_string();
        let token = format!("{PREFIX}{id}_{secret}");
        let hash = TokenSecret(secret).hash();
        Ok(NewToken { id, token, hash })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_token_parses_back_and_matches_its_hash() {
        let new = NewToken::generate().expect("rng");
        let (id, secret) = parse_token(&new.token).expect("parses");
        assert_eq!(id, new.id);
        assert!(secret.matches(&new.hash));
        let (_, wrong) = parse_token(&format!("slw_{}_x", new.id)).expect("parses");
        assert!(!wrong.matches(&new.hash));
        assert!(parse_token("Bearer nonsense").is_none());
        assert!(!format!("{secret:?}").contains(&new.token[37..]));
    }
}
