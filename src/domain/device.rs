//! The device a session was opened from, parsed from its User-Agent by woothee.

use woothee::parser::Parser;
use woothee::woothee::VALUE_UNKNOWN;

/// Longest User-Agent we parse; the rest is ignored.
const MAX_USER_AGENT_BYTES: usize = 1024;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Device {
    /// `browser`, `mobile`, `crawler`, `appliance` or `other`.
    pub kind: String,
    pub name: String,
    /// The first three parts of `long_version`.
    pub version: String,
    pub long_version: String,
    pub os_name: String,
    pub os_version: String,
    /// woothee's own category (`pc`, `smartphone`, `mobilephone`, …).
    pub category: String,
}

impl Device {
    /// What makes a device the same for new-device detection: the browser,
    /// the OS and the network (the /24 of an IPv4 address, the /48 of an
    /// IPv6 one), so a browser update or a new address from the same
    /// provider's block is not a new device, while another browser, another
    /// OS or another network is.
    pub fn key(&self, ip: &str) -> String {
        let network = match ip.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(v4)) => {
                let [a, b, c, _] = v4.octets();
                format!("{a}.{b}.{c}.0/24")
            }
            Ok(std::net::IpAddr::V6(v6)) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
            }
            Err(_) => ip.to_owned(),
        };
        format!("{}|{}|{}", self.name, self.os_name, network)
    }

    /// What a list `filter` matches a session against: device name, type and
    /// OS, then the session's id and the owner's guid, with no separator (as
    /// Rocket.Chat builds it: `ChromebrowserWindowsQoYYFw2t9oKks2niG…`).
    pub fn search_term(&self, session_id: &str, user_guid: &str) -> String {
        format!(
            "{}{}{}{session_id}{user_guid}",
            self.name, self.kind, self.os_name
        )
    }

    pub fn from_user_agent(user_agent: &str) -> Self {
        let mut end = user_agent.len().min(MAX_USER_AGENT_BYTES);
        while !user_agent.is_char_boundary(end) {
            end -= 1;
        }
        let Some(parsed) = Parser::new().parse(&user_agent[..end]) else {
            return Device::unknown();
        };
        let known = |value: &str| {
            if value == VALUE_UNKNOWN {
                String::new()
            } else {
                value.to_owned()
            }
        };
        let kind = match parsed.category {
            "pc" => "browser",
            "smartphone" | "mobilephone" => "mobile",
            "crawler" => "crawler",
            "appliance" => "appliance",
            _ => "other",
        };
        let long_version = known(parsed.version);
        // woothee says "Windows 10" / "NT 10.0"; the published examples say "Windows" / "10".
        let (os_name, os_version) = match parsed.os.strip_prefix("Windows ") {
            Some(release) if parsed.category == "pc" => ("Windows".to_owned(), release.to_owned()),
            _ => (known(parsed.os), known(&parsed.os_version)),
        };
        Device {
            kind: kind.to_owned(),
            name: known(parsed.name),
            version: first_three_parts(&long_version),
            long_version,
            os_name,
            os_version,
            category: known(parsed.category),
        }
    }

    fn unknown() -> Self {
        Device {
            kind: "other".into(),
            ..Device::default()
        }
    }

    /// The device name the admin API shows for smartphones (`iPhone`, `Android`).
    pub fn smartphone(&self) -> Option<&str> {
        (self.category == "smartphone" && !self.os_name.is_empty()).then_some(self.os_name.as_str())
    }
}

fn first_three_parts(version: &str) -> String {
    version.splitn(4, '.').take(3).collect::<Vec<_>>().join(".")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_search_term_is_built_as_rocket_chat_builds_it() {
        let device = Device {
            name: "Chrome".into(),
            kind: "browser".into(),
            os_name: "Windows".into(),
            ..Device::default()
        };
        assert_eq!(
            device.search_term("QoYYFw2t9oKks2niG", "rbAXPnMktTFbNpwtJ"),
            "ChromebrowserWindowsQoYYFw2t9oKks2niGrbAXPnMktTFbNpwtJ"
        );
    }

    use super::*;

    const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/113.0.0.0 Safari/537.36";
    const CHROME_ANDROID: &str = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/112.0.0.0 Mobile Safari/537.36";
    const FIREFOX_WINDOWS: &str =
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:109.0) Gecko/20100101 Firefox/112.0";
    const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.5 Mobile/15E148 Safari/604.1";

    #[test]
    fn desktop_chrome_matches_the_published_example() {
        let device = Device::from_user_agent(CHROME_WINDOWS);
        assert_eq!(
            device,
            Device {
                kind: "browser".into(),
                name: "Chrome".into(),
                version: "113.0.0".into(),
                long_version: "113.0.0.0".into(),
                os_name: "Windows".into(),
                os_version: "10".into(),
                category: "pc".into(),
            }
        );
        assert_eq!(device.smartphone(), None);
    }

    #[test]
    fn android_chrome_is_mobile() {
        let device = Device::from_user_agent(CHROME_ANDROID);
        assert_eq!(device.kind, "mobile");
        assert_eq!(
            (device.os_name.as_str(), device.os_version.as_str()),
            ("Android", "10")
        );
        assert_eq!(device.version, "112.0.0");
        assert_eq!(device.smartphone(), Some("Android"));
    }

    #[test]
    fn short_versions_are_kept_whole() {
        let device = Device::from_user_agent(FIREFOX_WINDOWS);
        assert_eq!(
            (device.version.as_str(), device.long_version.as_str()),
            ("112.0", "112.0")
        );
    }

    #[test]
    fn iphone_is_named_as_the_smartphone() {
        assert_eq!(
            Device::from_user_agent(SAFARI_IPHONE).smartphone(),
            Some("iPhone")
        );
    }

    #[test]
    fn unknown_agents_give_empty_strings_never_unknown() {
        for agent in ["", "???", &"x".repeat(5000)] {
            let device = Device::from_user_agent(agent);
            assert_eq!(device.kind, "other");
            assert!(!device.name.contains("UNKNOWN"));
            assert!(!device.os_name.contains("UNKNOWN"));
        }
    }
}
