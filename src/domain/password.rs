//! Passwords: argon2id hashes. Callers run these off the async executor.

use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use super::token::random_string;

/// Longest password accepted, so hashing cannot be used to burn CPU.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Shortest password the CLI sets.
pub const MIN_PASSWORD_CHARS: usize = 8;

pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Checks `password` against `stored`. With no stored hash (unknown user) it
/// verifies against a dummy hash anyway, so both answers take the same time.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    let candidate = stored.unwrap_or_else(|| dummy_hash());
    let Ok(parsed) = PasswordHash::new(candidate) else {
        return false;
    };
    let matches = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    matches && stored.is_some()
}

/// A hash of a random password with the same parameters as real ones.
/// Computing it early keeps the first failed login from being slower.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let throwaway = random_string(b"abcdefghijklmnopqrstuvwxyz0123456789", 32);
        hash(&throwaway).unwrap_or_default()
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
