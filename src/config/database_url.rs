//! `DatabaseUrl`: which store to open, printed without its password.

use std::fmt;
use std::path::PathBuf;

use super::SecretString;

/// Why a `postgres://` store is refused by a build without the cargo
/// feature `postgres` (`--no-default-features`), which has SQLite only.
pub const NO_POSTGRES: &str = "this build has no Postgres support; rebuild with the default \
     features (without --no-default-features), or use DATABASE_URL=sqlite://PATH";

/// Which store to open. Parsed from `DATABASE_URL`; a `postgres://` URL
/// parses in every build, and [`Settings::validate`](super::Settings::validate)
/// refuses it in one without Postgres.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Postgres(SecretString),
    Sqlite(PathBuf),
}

impl std::str::FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(DatabaseUrl::Postgres(SecretString::new(s)))
        } else if let Some(path) = s.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("sqlite:// needs a file path, as in sqlite://sessiond.db".into());
            }
            Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
        } else {
            Err("expected postgres://… or sqlite://PATH".into())
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Prints the store without its password, for logs and banners.
impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            DatabaseUrl::Postgres(url) => {
                let raw = url.expose();
                // postgres://user:password@host/db → postgres://user:***@host/db
                match (raw.find("://"), raw.rfind('@')) {
                    (Some(scheme), Some(at)) if at > scheme => {
                        let credentials = &raw[scheme + 3..at];
                        let user = credentials.split(':').next().unwrap_or_default();
                        let masked = if credentials.contains(':') {
                            ":***"
                        } else {
                            ""
                        };
                        write!(f, "{}{user}{masked}{}", &raw[..scheme + 3], &raw[at..])
                    }
                    _ => f.write_str(raw),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_url_prints_without_password() {
        let url: DatabaseUrl = "postgres://app:hunter2@db:5432/sessiond".parse().unwrap();
        assert_eq!(url.to_string(), "postgres://app:***@db:5432/sessiond");
        assert!(!format!("{url:?}").contains("hunter2"));
    }

    #[test]
    fn sqlite_url_needs_a_path_and_unknown_schemes_are_refused() {
        assert!("sqlite://".parse::<DatabaseUrl>().is_err());
        assert!("mysql://x".parse::<DatabaseUrl>().is_err());
        assert_eq!(
            "sqlite://a/b.db".parse::<DatabaseUrl>().unwrap(),
            DatabaseUrl::Sqlite(PathBuf::from("a/b.db"))
        );
    }
}
