//! `CorsOrigin`: one origin allowed to call the API from a browser,
//! checked as the CORS middleware will read it.

/// One origin allowed to call the API cross-origin, as browsers send it in
/// `Origin`: `scheme://host[:port]`, nothing more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorsOrigin(String);

impl CorsOrigin {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for CorsOrigin {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let origin = raw.trim();
        let rest = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"))
            .ok_or_else(|| {
                format!("'{origin}' is not an origin: write scheme://host[:port], as in https://admin.example.com")
            })?;
        let plausible = !rest.is_empty()
            && rest.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
            });
        if !plausible {
            return Err(format!(
                "'{origin}' is not an origin: only scheme://host[:port], with no path, \
                 trailing slash or wildcard (there is no '*': list each origin)"
            ));
        }
        // What the CORS middleware will parse, checked here, so a bad value
        // is refused with a message instead of stopping the workers at start.
        let uri = origin
            .parse::<actix_web::http::Uri>()
            .map_err(|e| format!("'{origin}' is not an origin: {e}"))?;
        // After an IPv6 literal's `]`, or anywhere in a name, `:` starts the port.
        let after_host = rest.rsplit_once(']').map_or(rest, |(_, tail)| tail);
        let port_ok = after_host
            .split_once(':')
            .is_none_or(|(_, port)| port.parse::<u16>().is_ok_and(|p| p > 0));
        if uri.host().is_none_or(str::is_empty) || !port_ok {
            return Err(format!(
                "'{origin}' is not an origin: write scheme://host[:port], the port from 1 to 65535"
            ));
        }
        Ok(CorsOrigin(origin.to_ascii_lowercase()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_origins_are_exact_origins_only() {
        let origin: CorsOrigin = "https://Admin.example.com:8443".parse().unwrap();
        assert_eq!(origin.as_str(), "https://admin.example.com:8443");
        for bad in [
            "*",
            "https://*.example.com",
            "https://a.example/",
            "ftp://a",
            "a.example",
            "https://",
            "http://a:b:c",
            "http://a:99999",
            "http://a:",
            "http://:80",
        ] {
            assert!(bad.parse::<CorsOrigin>().is_err(), "{bad}");
        }
        for good in [
            "http://127.0.0.1:9",
            "http://[::1]:8080",
            "https://admin.example.com",
        ] {
            assert!(good.parse::<CorsOrigin>().is_ok(), "{good}");
        }
    }
}
