//! `SESSIOND_WEBHOOK_URLS` and `SESSIOND_WEBHOOK_SECRET`, parsed and
//! checked: the endpoints, the event types each wants, and the signing key.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use reqwest::Url;
use sha2::{Digest, Sha256};

use crate::config::Settings;
use crate::domain::event::EventType;

use super::signature::Signer;

pub const URLS_VAR: &str = "SESSIOND_WEBHOOK_URLS";
pub const SECRET_VAR: &str = "SESSIOND_WEBHOOK_SECRET";

/// The prefix of a Standard Webhooks secret.
const SECRET_PREFIX: &str = "whsec_";

/// The shortest key accepted, in bytes (Standard Webhooks: 24 to 64).
pub const MIN_KEY_BYTES: usize = 24;

/// One configured endpoint.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// `ep_` and the first 12 hex digits of the SHA-256 of the URL: the
    /// endpoint's row in `webhook_endpoints` and its metrics label. Stable
    /// across restarts and the same on every instance, and it reveals
    /// nothing of the URL's path, query or credentials.
    pub id: String,
    pub url: Url,
    /// The event types it wants; `None` for every type.
    pub types: Option<Vec<EventType>>,
}

impl Endpoint {
    /// Whether the endpoint wants events of this type (by its wire name).
    pub fn wants(&self, kind: &str) -> bool {
        match &self.types {
            None => true,
            Some(types) => types.iter().any(|t| t.as_str() == kind),
        }
    }

    /// The wire names of the types it wants; `None` for every type.
    pub fn type_names(&self) -> Option<Vec<String>> {
        self.types
            .as_ref()
            .map(|types| types.iter().map(|t| t.as_str().to_owned()).collect())
    }

    /// Where it is, for logs: scheme, host and port only.
    pub fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }
}

/// The webhook settings, checked.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    pub endpoints: Vec<Endpoint>,
    pub signer: Signer,
}

impl WebhookConfig {
    /// The settings' endpoints and key; `Ok(None)` when no endpoint is
    /// configured. Errors name the variable at fault.
    pub fn from_settings(settings: &Settings) -> Result<Option<Self>, String> {
        let endpoints = parse_endpoints(&settings.webhook_urls)?;
        let secret = settings.webhook_secret.as_ref().map(|s| s.expose());
        let signer = match secret {
            Some(secret) => Some(parse_secret(secret)?),
            None => None,
        };
        if endpoints.is_empty() {
            return Ok(None);
        }
        let signer = signer.ok_or_else(|| {
            format!(
                "{SECRET_VAR} is required when {URLS_VAR} is set: \
                 `{SECRET_PREFIX}` followed by at least {MIN_KEY_BYTES} random bytes in base64 \
                 (for example `{SECRET_PREFIX}$(openssl rand -base64 32)`)"
            )
        })?;
        Ok(Some(WebhookConfig { endpoints, signer }))
    }
}

/// Checks the webhook settings, for `Settings::validate`.
pub fn validate(settings: &Settings) -> Result<(), String> {
    WebhookConfig::from_settings(settings).map(|_| ())
}

/// `url [type …]; url [type …]; …`. Empty entries (a trailing `;`) are
/// ignored.
pub fn parse_endpoints(value: &str) -> Result<Vec<Endpoint>, String> {
    let mut endpoints: Vec<Endpoint> = Vec::new();
    for (index, entry) in value.split(';').enumerate() {
        let mut words = entry.split_whitespace();
        let Some(raw_url) = words.next() else {
            continue;
        };
        let number = index + 1;
        let url = parse_url(raw_url)
            .map_err(|why| format!("{URLS_VAR}: endpoint {number} ({}) {why}", redact(raw_url)))?;
        let mut types: Vec<EventType> = Vec::new();
        for word in words {
            let matched = parse_type(word).ok_or_else(|| {
                // A word that cannot be a type may be a URL, or part of one
                // (a space in its credentials): it is not shown.
                let plain = word
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.*-".contains(&b));
                let asked = if plain {
                    format!("`{word}`, which is no event type")
                } else {
                    "a word that is no event type and is not shown (it may be another URL: \
                     separate endpoints with `;`, and percent-encode spaces in credentials)"
                        .to_owned()
                };
                format!(
                    "{URLS_VAR}: endpoint {number} ({}) asks for {asked}; \
                     known types: {}, or a family such as `two_factor.*`",
                    redact(raw_url),
                    EventType::ALL.map(EventType::as_str).join(", ")
                )
            })?;
            for kind in matched {
                if !types.contains(&kind) {
                    types.push(kind);
                }
            }
        }
        if endpoints.iter().any(|e| e.url == url) {
            return Err(format!(
                "{URLS_VAR} lists {} more than once",
                redact(url.as_str())
            ));
        }
        // The order of `ALL`, whatever the order given.
        types.sort_by_key(|t| EventType::ALL.iter().position(|a| a == t));
        endpoints.push(Endpoint {
            id: endpoint_id(&url),
            types: (!types.is_empty() && types.len() < EventType::ALL.len()).then_some(types),
            url,
        });
    }
    Ok(endpoints)
}

fn parse_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("is not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "is not an http or https URL (scheme `{}`)",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    if url.fragment().is_some() {
        return Err("has a fragment (`#…`), which is never sent".into());
    }
    Ok(url)
}

/// An exact type name, `family.*`, or `*`: the types it names.
fn parse_type(word: &str) -> Option<Vec<EventType>> {
    if word == "*" {
        return Some(EventType::ALL.to_vec());
    }
    if let Some(family) = word.strip_suffix(".*") {
        let members: Vec<EventType> = EventType::ALL
            .into_iter()
            .filter(|t| t.as_str().split_once('.').map(|(f, _)| f) == Some(family))
            .collect();
        return (!members.is_empty()).then_some(members);
    }
    EventType::parse(word).map(|t| vec![t])
}

/// `whsec_<base64>`: the decoded bytes are the HMAC key.
pub fn parse_secret(secret: &str) -> Result<Signer, String> {
    let encoded = secret.trim().strip_prefix(SECRET_PREFIX).ok_or_else(|| {
        format!("{SECRET_VAR} must start with `{SECRET_PREFIX}` (the Standard Webhooks form `{SECRET_PREFIX}<base64>`)")
    })?;
    let key = STANDARD
        .decode(encoded)
        .or_else(|_| STANDARD_NO_PAD.decode(encoded))
        .map_err(|e| {
            format!("{SECRET_VAR}: the part after `{SECRET_PREFIX}` is not base64 ({e})")
        })?;
    if key.len() < MIN_KEY_BYTES {
        return Err(format!(
            "{SECRET_VAR} decodes to {} bytes; it must be at least {MIN_KEY_BYTES} \
             (for example `{SECRET_PREFIX}$(openssl rand -base64 32)`)",
            key.len()
        ));
    }
    Ok(Signer::new(key))
}

/// `ep_` and 12 hex digits of the URL's SHA-256.
pub fn endpoint_id(url: &Url) -> String {
    let digest = Sha256::digest(url.as_str().as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("ep_{hex}")
}

/// A URL as it may appear in a message: no credentials, query or fragment.
fn redact(raw: &str) -> String {
    let cut = raw.find(['?', '#']).unwrap_or(raw.len());
    let mut shown = raw[..cut].to_owned();
    if let Some(scheme_end) = shown.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = shown[rest_start..]
            .find('/')
            .map_or(shown.len(), |i| rest_start + i);
        if let Some(at) = shown[rest_start..authority_end].rfind('@') {
            shown.replace_range(rest_start..rest_start + at, "***");
        }
    }
    if cut < raw.len() {
        shown.push_str("?…");
    }
    format!("`{shown}`")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretString;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn settings(urls: &str, secret: Option<&str>) -> Settings {
        let mut settings = Settings::defaults();
        settings.webhook_urls = urls.into();
        settings.webhook_secret = secret.map(SecretString::new);
        settings
    }

    fn refused(urls: &str, secret: Option<&str>) -> String {
        WebhookConfig::from_settings(&settings(urls, secret)).expect_err("refused")
    }

    #[test]
    fn no_urls_means_no_webhooks() {
        assert!(WebhookConfig::from_settings(&settings("", None))
            .unwrap()
            .is_none());
        assert!(WebhookConfig::from_settings(&settings(" ; ", None))
            .unwrap()
            .is_none());
    }

    #[test]
    fn endpoints_with_and_without_filters() {
        let config = WebhookConfig::from_settings(&settings(
            "https://a.example/hook ; http://b.example:8080/in two_factor.* session.started;",
            Some(SECRET),
        ))
        .unwrap()
        .unwrap();
        let [a, b] = &config.endpoints[..] else {
            panic!("two endpoints: {:?}", config.endpoints);
        };
        assert!(a.types.is_none());
        assert!(a.wants("login.failed"));
        assert_eq!(
            b.type_names().unwrap(),
            [
                "session.started",
                "two_factor.succeeded",
                "two_factor.failed",
                "two_factor.locked",
                "two_factor.enrolled",
                "two_factor.disabled"
            ]
        );
        assert!(b.wants("two_factor.locked"));
        assert!(!b.wants("session.ended"));
        assert_eq!(b.origin(), "http://b.example:8080");
        assert_ne!(a.id, b.id);
        assert!(a.id.starts_with("ep_") && a.id.len() == 15, "{}", a.id);
    }

    #[test]
    fn every_family_and_star_mean_every_type() {
        let all = "session.* login.* two_factor.*";
        let [endpoint] = &parse_endpoints(&format!("https://a.example {all}")).unwrap()[..] else {
            panic!("one endpoint");
        };
        assert!(endpoint.types.is_none());
        let [endpoint] = &parse_endpoints("https://a.example *").unwrap()[..] else {
            panic!("one endpoint");
        };
        assert!(endpoint.types.is_none());
    }

    #[test]
    fn the_id_is_the_documented_digest() {
        // printf %s 'https://siem.example.com/in' | sha256sum | cut -c1-12
        let url = Url::parse("https://siem.example.com/in").unwrap();
        assert_eq!(endpoint_id(&url), "ep_d116798b02c4");
    }

    #[test]
    fn the_id_is_stable_and_hides_the_url() {
        let url = Url::parse("https://user:pw@a.example/hook?token=abc").unwrap();
        let id = endpoint_id(&url);
        assert_eq!(id, endpoint_id(&url.clone()));
        assert!(!id.contains("abc") && !id.contains("pw"));
    }

    #[test]
    fn bad_urls_are_refused_naming_the_variable() {
        for (urls, says) in [
            ("not a url", "is not a valid URL"),
            ("ftp://a.example/x", "not an http or https URL"),
            (
                "https://a.example/x session.started; mailto:x@y",
                "not an http",
            ),
            ("https://a.example/x#frag", "fragment"),
        ] {
            let message = refused(urls, Some(SECRET));
            assert!(message.starts_with(URLS_VAR), "{message}");
            assert!(message.contains(says), "{urls}: {message}");
        }
    }

    #[test]
    fn unknown_types_are_refused() {
        for word in ["session.nope", "nope.*", "session", "Session.Started"] {
            let message = refused(&format!("https://a.example {word}"), Some(SECRET));
            assert!(message.starts_with(URLS_VAR), "{message}");
            assert!(message.contains(&format!("`{word}`")), "{message}");
        }
    }

    #[test]
    fn duplicate_urls_are_refused() {
        let message = refused(
            "https://a.example/x; https://A.example:443/x login.failed",
            Some(SECRET),
        );
        assert!(message.starts_with(URLS_VAR), "{message}");
        assert!(message.contains("more than once"), "{message}");
    }

    #[test]
    fn messages_do_not_show_credentials_or_queries() {
        let message = refused(
            "https://user:hunter2@a.example/x?key=s3cret nope",
            Some(SECRET),
        );
        assert!(!message.contains("hunter2"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
        assert!(message.contains("a.example"), "{message}");
        // Two URLs separated by a space instead of `;`, and a space inside
        // credentials: the second part is not shown either.
        for urls in [
            "https://a.example/in?token=Q1SECRET https://bot:hunter2@b.example/hook?key=Q2SECRET",
            "http://us er:pa55word@c.example/x?token=Q3SECRET",
        ] {
            let message = refused(urls, Some(SECRET));
            for secret in ["hunter2", "pa55word", "Q1SECRET", "Q2SECRET", "Q3SECRET"] {
                assert!(!message.contains(secret), "{message}");
            }
            assert!(message.contains("separate endpoints with `;`"), "{message}");
        }
        let message = refused("https://a.example session.nope", Some(SECRET));
        assert!(
            message.contains("`session.nope`, which is no event type"),
            "{message}"
        );
    }

    #[test]
    fn the_secret_is_required_with_urls() {
        let message = refused("https://a.example", None);
        assert!(message.starts_with(SECRET_VAR), "{message}");
        assert!(message.contains(URLS_VAR), "{message}");
    }

    #[test]
    fn malformed_secrets_are_refused() {
        for (secret, says) in [
            (
                "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "must start with `whsec_`",
            ),
            ("whsec_not*base64!", "not base64"),
            ("whsec_c2hvcnQ=", "decodes to 5 bytes"),
        ] {
            let message = refused("https://a.example", Some(secret));
            assert!(message.starts_with(SECRET_VAR), "{message}");
            assert!(message.contains(says), "{secret}: {message}");
            // Even without URLs a malformed secret is a mistake.
            let message = refused("", Some(secret));
            assert!(message.starts_with(SECRET_VAR), "{message}");
        }
    }

    #[test]
    fn a_good_secret_is_its_decoded_bytes() {
        let signer = parse_secret(SECRET).unwrap();
        assert_eq!(signer.key_len(), 24);
    }
}
