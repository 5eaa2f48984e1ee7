//! Encryption at rest for TOTP secrets (XChaCha20-Poly1305), so that a
//! database dump alone does not reveal them. The key comes from
//! `SESSIOND_SECRET_KEY` or from a key file generated on first start.

use std::fs;
use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Encryption failed: XChaCha20-Poly1305 refuses only messages of more
/// than 256 GiB, so this is a bug, reported as one rather than hidden.
#[derive(Debug, thiserror::Error)]
#[error("encryption failed")]
pub struct SealError;

#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
    check: String,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the secret key must be 32 bytes in base64 (try `openssl rand -base64 32`)")]
    BadKey,
    #[error("cannot use key file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
}

impl SecretBox {
    pub fn from_base64(encoded: &str) -> Result<Self, KeyError> {
        let bytes = STANDARD
            .decode(encoded.trim())
            .map_err(|_| KeyError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| KeyError::BadKey)?;
        Ok(Self::from_key(key))
    }

    fn from_key(key: [u8; 32]) -> Self {
        let check = STANDARD.encode(Sha256::digest(
            [b"sessiond-key-check:".as_slice(), &key].concat(),
        ));
        SecretBox {
            cipher: XChaCha20Poly1305::new(&key.into()),
            check,
        }
    }

    /// Reads the key file, or creates it (mode 0600) with a new random key.
    /// Returns the box and whether the file was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), KeyError> {
        let file_error = |source| KeyError::File {
            path: path.display().to_string(),
            source,
        };
        match fs::read_to_string(path) {
            Ok(contents) => Ok((Self::from_base64(&contents)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                OsRng.fill_bytes(&mut key);
                let mut options = fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(path).map_err(file_error)?;
                writeln!(file, "{}", STANDARD.encode(key)).map_err(file_error)?;
                Ok((Self::from_key(key), true))
            }
            Err(e) => Err(file_error(e)),
        }
    }

    /// A fingerprint of the key, kept in the store to catch a mismatched key
    /// at start-up instead of at the first 2FA check.
    pub fn key_check(&self) -> &str {
        &self.check
    }

    /// Encrypts `plaintext`, bound to `context` (the owner's guid).
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<String, SealError> {
        Ok(STANDARD.encode(self.seal_bytes(plaintext, context)?))
    }

    /// `nonce || ciphertext`.
    fn seal_bytes(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; 24];
        OsRng.fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plaintext,
            aad: context.as_bytes(),
        };
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), payload)
            .map_err(|_| SealError)?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    /// Decrypts what `seal` produced; `None` if it was altered or the key is wrong.
    pub fn open(&self, sealed: &str, context: &str) -> Option<Vec<u8>> {
        self.open_bytes(&STANDARD.decode(sealed).ok()?, context)
    }

    /// `seal`, in URL-safe base64 without padding (for tokens in query strings).
    pub fn seal_url_safe(&self, plaintext: &[u8], context: &str) -> Result<String, SealError> {
        Ok(URL_SAFE_NO_PAD.encode(self.seal_bytes(plaintext, context)?))
    }

    pub fn open_url_safe(&self, sealed: &str, context: &str) -> Option<Vec<u8>> {
        self.open_bytes(&URL_SAFE_NO_PAD.decode(sealed).ok()?, context)
    }

    fn open_bytes(&self, bytes: &[u8], context: &str) -> Option<Vec<u8>> {
        if bytes.len() < 24 {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(24);
        let payload = Payload {
            msg: ciphertext,
            aad: context.as_bytes(),
        };
        self.cipher.decrypt(XNonce::from_slice(nonce), payload).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_box() -> SecretBox {
        SecretBox::from_key([7u8; 32])
    }

    #[test]
    fn sealed_secrets_open_only_in_their_context() {
        let secret_box = test_box();
        let sealed = secret_box.seal(b"JBSWY3DPEHPK3PXP", "user-1").unwrap();
        assert!(!sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_eq!(
            secret_box.open(&sealed, "user-1").unwrap(),
            b"JBSWY3DPEHPK3PXP"
        );
        assert!(secret_box.open(&sealed, "user-2").is_none());
    }

    #[test]
    fn another_key_cannot_open_it() {
        let sealed = test_box().seal(b"secret", "u").unwrap();
        let other = SecretBox::from_key([8u8; 32]);
        assert!(other.open(&sealed, "u").is_none());
        assert_ne!(other.key_check(), test_box().key_check());
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert!(SecretBox::from_base64("not base64!").is_err());
        assert!(SecretBox::from_base64(&STANDARD.encode([1u8; 16])).is_err());
        assert!(SecretBox::from_base64(&STANDARD.encode([1u8; 32])).is_ok());
    }

    #[test]
    fn the_key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        let (first, created) = SecretBox::load_or_create(&path).unwrap();
        assert!(created);
        let (second, created_again) = SecretBox::load_or_create(&path).unwrap();
        assert!(!created_again);
        assert_eq!(first.key_check(), second.key_check());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
