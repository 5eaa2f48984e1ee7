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

/// The longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 128;

/// A display name: 1 to 128 characters, none of them a control character
/// (it is printed in tables, logs and the dashboard, one line each).
pub fn display_name(raw: &str) -> Result<String, String> {
    let chars = raw.chars().count();
    if raw.trim().is_empty() || chars > MAX_DISPLAY_NAME_CHARS {
        return Err(format!(
            "the name must be 1 to {MAX_DISPLAY_NAME_CHARS} characters and not blank, got {chars}"
        ));
    }
    if raw.chars().any(char::is_control) {
        return Err(
            "the name must not contain control characters (line breaks, tabs, escapes)".into(),
        );
    }
    Ok(raw.to_owned())
}

/// A name a person typed, for a message: as it is when it is plain,
/// quoted and escaped when it is empty or holds spaces or control
/// characters, so the message shows exactly what was asked for.
pub fn shown(raw: &str) -> String {
    if !raw.is_empty() && !raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        raw.to_owned()
    } else {
        format!("{raw:?}")
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
    fn display_names_are_one_line_of_at_most_128_characters() {
        assert_eq!(display_name("Ada Lovelace").unwrap(), "Ada Lovelace");
        assert!(display_name(&"é".repeat(128)).is_ok());
        assert!(display_name(&"é".repeat(129)).is_err());
        assert!(display_name("").is_err());
        assert!(display_name("   ").is_err());
        assert!(display_name("Evil\nName").is_err());
        assert!(display_name("red\u{1b}[31m").is_err());
    }

    #[test]
    fn names_in_messages_are_quoted_when_they_are_not_plain() {
        assert_eq!(shown("bob"), "bob");
        assert_eq!(shown(""), "\"\"");
        assert_eq!(shown(" bob"), "\" bob\"");
        assert_eq!(shown("a\u{7}"), "\"a\\u{7}\"");
    }

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
