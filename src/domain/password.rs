//! Passwords: argon2id hashes. Callers run these off the async executor,
//! and the server caps how many run at once (`limits::Hashing`).
//!
//! Each hash needs 19 MiB of working memory. Allocating it per login lets a
//! burst of logins leave the allocator holding gigabytes it never returns,
//! so the working memory is kept and reused: at most one buffer per hash
//! that ran at the same time as others, which the cap bounds.

use std::sync::{Mutex, OnceLock, PoisonError};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use super::token::random_string;

/// Longest password accepted, so hashing cannot be used to burn CPU.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Shortest password the CLI sets.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Working buffers kept for reuse; more concurrent hashes than this (the CLI
/// and tests never get there) allocate and free their own.
const KEPT_BUFFERS: usize = 16;

static BUFFERS: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());

/// Runs `f` with `blocks` blocks of argon2 working memory, reused across calls
/// and wiped after each, so no password-derived state stays behind.
fn with_working_memory<T>(blocks: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
    let mut buffer = BUFFERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop()
        .unwrap_or_default();
    if buffer.len() < blocks {
        buffer.resize(blocks, Block::new());
    }
    let result = f(&mut buffer[..blocks]);
    buffer.fill(Block::new());
    let mut kept = BUFFERS.lock().unwrap_or_else(PoisonError::into_inner);
    if kept.len() < KEPT_BUFFERS {
        kept.push(buffer);
    }
    result
}

/// Hashes `password` into `out` with the given parameters and raw salt.
fn derive(
    argon2: &Argon2<'_>,
    params: &Params,
    password: &str,
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    with_working_memory(params.block_count(), |blocks| {
        argon2.hash_password_into_with_memory(password.as_bytes(), salt, out, blocks)
    })
}

/// A new PHC-format argon2id hash (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    let params = Params::default();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut raw_salt = [0u8; 64];
    let raw_salt = salt.as_salt().decode_b64(&mut raw_salt)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    derive(&argon2, &params, password, raw_salt, &mut out)?;
    Ok(PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out)?),
    }
    .to_string())
}

/// Checks `password` against `stored`. With no stored hash (unknown user) it
/// verifies against a dummy hash anyway, so both answers take the same time.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    let candidate = stored.unwrap_or_else(|| dummy_hash());
    matches_hash(password, candidate) && stored.is_some()
}

/// Recomputes the hash with the stored parameters and compares the outputs
/// in constant time.
fn matches_hash(password: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut raw_salt = [0u8; 64];
    let Ok(raw_salt) = salt.decode_b64(&mut raw_salt) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    derive(&argon2, &params, password, raw_salt, &mut out).is_ok()
        && Output::new(&out).is_ok_and(|computed| computed == expected)
}

/// An argon2id hash, with today's parameters, of a random password that was
/// thrown away.
const FALLBACK_DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$LxpI165nAY1i/vcb7v+Hzg$zUTxBSfimkdjtvXZpHCUIyj0q3Vqc6FDOrw1Iu+Zh8g";

/// A hash of a random password with the same parameters as real ones.
/// Computing it early keeps the first failed login from being slower.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let throwaway = random_string(b"abcdefghijklmnopqrstuvwxyz0123456789", 32);
        // Hashing a fresh random password does not fail; should it, a fixed
        // hash of a password nobody knows keeps unknown users as slow as
        // known ones (an empty string would make them fail at once).
        hash(&throwaway).unwrap_or_else(|_| FALLBACK_DUMMY_HASH.to_owned())
    })
}

/// Rules for passwords that the service sets (CLI, generated admin password).
pub fn check_new(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "password must have at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!(
            "password must be at most {MAX_PASSWORD_BYTES} bytes"
        ));
    }
    Ok(())
}

/// A fresh random password for the first administrator.
pub fn generate() -> String {
    random_string(
        b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789",
        24,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_the_right_password_only() {
        let stored = hash("correct horse").unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify("correct horse", Some(&stored)));
        assert!(!verify("wrong horse", Some(&stored)));
    }

    #[test]
    fn hashes_made_by_the_argon2_crate_itself_still_verify() {
        use argon2::password_hash::PasswordHasher;
        let salt = SaltString::generate(&mut OsRng);
        let stored = Argon2::default()
            .hash_password(b"legacy password", &salt)
            .unwrap()
            .to_string();
        assert!(verify("legacy password", Some(&stored)));
        assert!(!verify("legacy passwore", Some(&stored)));
        // And ours verify with the crate's own verifier.
        use argon2::password_hash::PasswordVerifier;
        let ours = hash("new password").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"new password", &parsed)
            .is_ok());
    }

    #[test]
    fn hashes_with_other_parameters_verify_with_their_own() {
        use argon2::password_hash::PasswordHasher;
        let params = Params::new(8 * 1024, 1, 1, Some(32)).unwrap();
        let salt = SaltString::generate(&mut OsRng);
        let stored = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"small memory", &salt)
            .unwrap()
            .to_string();
        assert!(stored.contains("m=8192"));
        assert!(verify("small memory", Some(&stored)));
        assert!(!verify("small memorx", Some(&stored)));
    }

    #[test]
    fn the_dummy_hashes_cost_what_real_ones_do() {
        for dummy in [dummy_hash(), FALLBACK_DUMMY_HASH] {
            let parsed = PasswordHash::new(dummy).unwrap();
            let params = Params::try_from(&parsed).unwrap();
            let default = Params::default();
            assert_eq!(
                (params.m_cost(), params.t_cost(), params.p_cost()),
                (default.m_cost(), default.t_cost(), default.p_cost())
            );
            assert!(!verify("anything", Some(dummy)));
        }
    }

    #[test]
    fn garbage_never_verifies() {
        assert!(!verify("x", Some("")));
        assert!(!verify("x", Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$")));
        assert!(!verify("x", Some("plain text")));
    }

    #[test]
    fn an_unknown_user_never_verifies() {
        assert!(!verify("anything", None));
    }

    #[test]
    fn new_passwords_have_a_minimum_and_maximum_length() {
        assert!(check_new("short").is_err());
        assert!(check_new(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
        assert!(check_new("long enough").is_ok());
        assert!(check_new(&generate()).is_ok());
    }
}
