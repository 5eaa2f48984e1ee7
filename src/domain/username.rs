//! Usernames: 1–64 bytes, no control characters, unique regardless of case.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username {
    display: String,
    key: String,
}

impl Username {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() || raw.len() > 64 {
            return Err(format!(
                "username must be 1 to 64 bytes, got {} bytes",
                raw.len()
            ));
        }
        if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err("username must not contain spaces or control characters".into());
        }
        Ok(Username {
            display: raw.to_owned(),
            key: raw.to_lowercase(),
        })
    }

    /// The spelling the user chose.
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The case-folded form that the unique index holds.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

/// The lookup key for any string a client sends as a username.
pub fn lookup_key(raw: &str) -> String {
    raw.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_1_to_64_bytes_and_folds_case() {
        let name = Username::parse("Funke.Olasupo").unwrap();
        assert_eq!(name.as_str(), "Funke.Olasupo");
        assert_eq!(name.key(), "funke.olasupo");
        assert!(Username::parse(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn refuses_empty_long_and_spaced_names() {
        for bad in ["", &"a".repeat(65), "a b", "tab\there", "nul\0"] {
            assert!(Username::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
