//! Two-factor codes: RFC 6238 TOTP (SHA-1, 6 digits, 30 s, ±1 step) and
//! single-use backup codes.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, TOTP};

use super::token::random_string;

pub const STEP_SECONDS: u64 = 30;
const ISSUER: &str = "sessiond";
const BACKUP_ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";
const BACKUP_CODE_LEN: usize = 10;
pub const BACKUP_CODE_COUNT: usize = 10;

/// What a client sent as a second factor. `Debug` never prints the code.
#[derive(Clone, PartialEq, Eq)]
pub enum TwoFactorCode {
    Totp(String),
    Backup(String),
}

impl TwoFactorCode {
    /// Six digits are a TOTP code; ten characters of the backup alphabet
    /// (dashes and spaces ignored, any case) are a backup code.
    pub fn parse(raw: &str) -> Option<Self> {
        let trimmed = raw.trim();
        if trimmed.len() == 6 && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            return Some(TwoFactorCode::Totp(trimmed.to_owned()));
        }
        let normalized: String = trimmed
            .chars()
            .filter(|c| *c != '-' && *c != ' ')
            .flat_map(char::to_lowercase)
            .collect();
        let is_backup = normalized.len() == BACKUP_CODE_LEN
            && normalized.bytes().all(|b| BACKUP_ALPHABET.contains(&b));
        is_backup.then_some(TwoFactorCode::Backup(normalized))
    }
}

impl fmt::Debug for TwoFactorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TwoFactorCode::Totp(_) => f.write_str("Totp(***)"),
            TwoFactorCode::Backup(_) => f.write_str("Backup(***)"),
        }
    }
}

/// A fresh 160-bit TOTP secret.
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; 20];
    OsRng.fill_bytes(&mut secret);
    secret
}

fn totp(secret: &[u8], account: &str) -> Option<TOTP> {
    // The otpauth label may not contain ':'.
    let account = account.replace(':', "_");
    TOTP::new(
        Algorithm::SHA1,
        6,
        0,
        STEP_SECONDS,
        secret.to_vec(),
        Some(ISSUER.to_owned()),
        account,
    )
    .ok()
}

/// What `users.2fa.enableTOTP` hands the user.
pub struct Enrollment {
    pub secret_base32: String,
    pub url: String,
    pub qrcode: String,
}

pub fn enrollment(secret: &[u8], account: &str) -> Option<Enrollment> {
    let totp = totp(secret, account)?;
    let png = totp.get_qr_base64().ok()?;
    Some(Enrollment {
        secret_base32: totp.get_secret_base32(),
        url: totp.get_url(),
        qrcode: format!("data:image/png;base64,{png}"),
    })
}

/// The time step `unix_seconds` falls in.
pub fn step_at(unix_seconds: i64) -> i64 {
    unix_seconds.max(0) / STEP_SECONDS as i64
}

/// The code for one time step (tests and the CLI use this too).
pub fn code_for_step(secret: &[u8], step: i64) -> Option<String> {
    let time = u64::try_from(step).ok()?.checked_mul(STEP_SECONDS)?;
    Some(totp(secret, "x")?.generate(time))
}

/// The step (current, previous or next) whose code is `code`, compared in
/// constant time. The caller still has to check the step was not used before.
pub fn matching_step(secret: &[u8], code: &str, unix_seconds: i64) -> Option<i64> {
    let totp = totp(secret, "x")?;
    let current = step_at(unix_seconds);
    [current - 1, current, current + 1]
        .into_iter()
        .filter(|step| *step >= 0)
        .find(|step| totp.check(code, *step as u64 * STEP_SECONDS))
}

/// Ten fresh backup codes, shown as `xxxxx-xxxxx`.
pub fn new_backup_codes() -> Vec<String> {
    (0..BACKUP_CODE_COUNT)
        .map(|_| {
            let code = random_string(BACKUP_ALPHABET, BACKUP_CODE_LEN);
            format!("{}-{}", &code[..5], &code[5..])
        })
        .collect()
}

/// How a backup code is stored: SHA-256 over the owner and the normalized code.
pub fn backup_code_hash(user_guid: &str, code: &str) -> String {
    let normalized = match TwoFactorCode::parse(code) {
        Some(TwoFactorCode::Backup(normalized)) => normalized,
        _ => code.to_owned(),
    };
    STANDARD.encode(Sha256::digest(format!("{user_guid}:{normalized}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vector() {
        // RFC 6238 appendix B: T = 59 s, 8 digits "94287082"; 6 digits keep the tail.
        let secret = b"12345678901234567890";
        assert_eq!(code_for_step(secret, 1).unwrap(), "287082");
    }

    #[test]
    fn accepts_the_previous_current_and_next_step_only() {
        let secret = new_secret();
        let now = 1_700_000_000;
        let step = step_at(now);
        for offset in [-1, 0, 1] {
            let code = code_for_step(&secret, step + offset).unwrap();
            assert_eq!(matching_step(&secret, &code, now), Some(step + offset));
        }
        for offset in [-3, -2, 2, 3] {
            let code = code_for_step(&secret, step + offset).unwrap();
            let found = matching_step(&secret, &code, now);
            // Another step may collide by chance (1 in a million); it must not be this one.
            assert_ne!(found, Some(step + offset));
        }
    }

    #[test]
    fn parses_totp_and_backup_codes() {
        assert_eq!(
            TwoFactorCode::parse(" 123456 "),
            Some(TwoFactorCode::Totp("123456".into()))
        );
        assert_eq!(
            TwoFactorCode::parse("ABCDE-FGHJK"),
            Some(TwoFactorCode::Backup("abcdefghjk".into()))
        );
        for bad in ["", "12345", "1234567", "abcde-fghj1", "not a code"] {
            assert_eq!(TwoFactorCode::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn backup_codes_are_ten_distinct_parseable_codes() {
        let codes = new_backup_codes();
        assert_eq!(codes.len(), 10);
        for code in &codes {
            assert!(matches!(
                TwoFactorCode::parse(code),
                Some(TwoFactorCode::Backup(_))
            ));
        }
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);
    }

    #[test]
    fn backup_code_hash_ignores_formatting_but_not_the_owner() {
        assert_eq!(
            backup_code_hash("u", "abcde-fghjk"),
            backup_code_hash("u", "ABCDEFGHJK")
        );
        assert_ne!(
            backup_code_hash("u", "abcde-fghjk"),
            backup_code_hash("v", "abcde-fghjk")
        );
    }

    #[test]
    fn enrollment_gives_base32_an_otpauth_url_and_a_png_data_url() {
        let e = enrollment(&new_secret(), "alice").unwrap();
        assert_eq!(e.secret_base32.len(), 32);
        assert!(e.url.starts_with("otpauth://totp/sessiond:alice?"));
        assert!(e.qrcode.starts_with("data:image/png;base64,"));
    }

    #[test]
    fn debug_hides_codes() {
        let code = TwoFactorCode::parse("123456").unwrap();
        assert!(!format!("{code:?}").contains("123456"));
    }
}
