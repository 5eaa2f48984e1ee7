//! Auth tokens and session ids. A token is 32 bytes from the OS CSPRNG,
//! URL-safe base64; only its SHA-256 is ever stored.

use std::fmt;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};

/// The longest token we bother hashing; anything longer cannot be ours.
const MAX_TOKEN_LEN: usize = 256;

/// A raw auth token. `Debug` and `Display` never print it.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthToken(String);

impl AuthToken {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        AuthToken(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Accepts what a client sends; `None` for values that cannot be a token.
    pub fn parse(raw: &str) -> Option<Self> {
        let valid = !raw.is_empty()
            && raw.len() <= MAX_TOKEN_LEN
            && raw.bytes().all(|b| b.is_ascii_graphic());
        valid.then(|| AuthToken(raw.to_owned()))
    }

    /// The value handed to the client once, at login.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(STANDARD.encode(Sha256::digest(self.0.as_bytes())))
    }

    /// The first six characters, for display next to sessions that are not the caller's.
    pub fn hint(&self) -> String {
        self.0.chars().take(6).collect()
    }
}

impl fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthToken(***)")
    }
}

/// SHA-256 of a token, standard base64, as Meteor stores `hashedToken`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenHash(String);

impl TokenHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The characters of a `sessionId` (Meteor's id alphabet).
pub const SESSION_ID_ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz";

/// Characters in a `sessionId`.
const SESSION_ID_LEN: usize = 17;

/// A 17-character random id in Meteor's alphabet, like `QoYYFw2t9oKks2niG`.
pub fn new_session_id() -> String {
    session_id_from(&mut OsRng)
}

/// A session id drawn from `rng`. The seeder makes millions with a fast
/// seeded generator; the service always uses [`new_session_id`].
pub fn session_id_from<R: Rng + ?Sized>(rng: &mut R) -> String {
    random_string_from(rng, SESSION_ID_ALPHABET, SESSION_ID_LEN)
}

/// A random string over `alphabet`, from the OS CSPRNG.
pub fn random_string(alphabet: &[u8], len: usize) -> String {
    random_string_from(&mut OsRng, alphabet, len)
}

fn random_string_from<R: Rng + ?Sized>(rng: &mut R, alphabet: &[u8], len: usize) -> String {
    (0..len)
        .map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_43_url_safe_characters_and_unique() {
        let a = AuthToken::generate();
        let b = AuthToken::generate();
        assert_eq!(a.expose().len(), 43);
        assert!(a
            .expose()
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_ne!(a, b);
    }

    #[test]
    fn debug_never_shows_the_token() {
        let token = AuthToken::generate();
        assert!(!format!("{token:?}").contains(token.expose()));
    }

    #[test]
    fn hash_is_base64_sha256() {
        let token = AuthToken::parse("abc").unwrap();
        assert_eq!(
            token.hash().as_str(),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
    }

    #[test]
    fn parse_refuses_empty_long_and_non_printable_values() {
        assert!(AuthToken::parse("").is_none());
        assert!(AuthToken::parse(&"a".repeat(MAX_TOKEN_LEN + 1)).is_none());
        assert!(AuthToken::parse("a b").is_none());
        assert!(AuthToken::parse("é").is_none());
    }

    #[test]
    fn session_ids_have_17_characters_from_the_alphabet() {
        use rand::SeedableRng;
        let seeded = session_id_from(&mut rand::rngs::StdRng::seed_from_u64(7));
        for id in [new_session_id(), seeded] {
            assert_eq!(id.len(), 17, "{id}");
            assert!(id.bytes().all(|c| SESSION_ID_ALPHABET.contains(&c)), "{id}");
        }
    }
}
