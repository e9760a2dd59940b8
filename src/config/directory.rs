//! `[directory]`: directory-backed authorization (LDAP, RFC 4511; Active Directory).
//!
//! After the certificate verified, the account it names is looked up in a directory: it must
//! exist and be enabled, and its groups become the rule match field `directory_group`. The
//! section is optional; absent, nothing is looked up. Search filters follow RFC 4515 (every
//! certificate value is escaped, see `directory/filter.rs`), URLs RFC 4516.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;

/// One URL or a list, tried in order (failover).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Urls {
    One(String),
    Many(Vec<String>),
}

impl Default for Urls {
    fn default() -> Self {
        Urls::Many(Vec::new())
    }
}

impl Urls {
    pub fn list(&self) -> Vec<String> {
        match self {
            Urls::One(u) => vec![u.clone()],
            Urls::Many(v) => v.clone(),
        }
    }
}

/// What to do when every URL fails.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnUnavailable {
    /// Refuse with `directory_unavailable` (unless a fresh cached answer exists).
    #[default]
    Reject,
    /// Also use an expired cached positive answer, however old.
    AcceptCached,
}

/// Built-in defaults for a directory product; each value can be overridden.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    ActiveDirectory,
}

/// Microsoft's strong certificate mapping (KB5014754): the certificate's SID against the
/// account's `objectSid`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SidBinding {
    #[default]
    Off,
    /// A certificate without a SID is refused.
    Required,
    /// Checked when the certificate carries one.
    IfPresent,
}

/// Active Directory: a user by userPrincipalName.
pub const AD_USER_FILTER: &str = "(userPrincipalName={san_upn})";
/// Active Directory: a machine (`host/` identity) by dNSHostName or servicePrincipalName.
pub const AD_MACHINE_FILTER: &str =
    "(|(dNSHostName={san_dns})(servicePrincipalName=host/{san_dns}))";
/// Active Directory: userAccountControl bit 2 (ACCOUNTDISABLE) clear
/// (LDAP_MATCHING_RULE_BIT_AND, 1.2.840.113556.1.4.803).
pub const AD_ENABLED_FILTER: &str = "(!(userAccountControl:1.2.840.113556.1.4.803:=2))";
/// Active Directory: nested groups through LDAP_MATCHING_RULE_IN_CHAIN.
pub const AD_GROUP_CHAIN_RULE: &str = "1.2.840.113556.1.4.1941";

/// The placeholders `user_filter` may contain.
pub const PLACEHOLDERS: &[&str] = &[
    "identity",
    "subject_cn",
    "san_email",
    "san_upn",
    "san_dns",
    "sid",
];

/// `[directory]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DirectoryConfig {
    /// `ldap://` or `ldaps://` URLs, tried in order.
    pub url: Urls,
    /// StartTLS (RFC 4511 §4.14) on `ldap://` URLs.
    pub start_tls: bool,
    /// Roots for the directory's certificate (LDAPS and StartTLS); unset: the system roots.
    pub ca_file: Option<PathBuf>,
    /// The service account; unset: anonymous searches.
    pub bind_dn: Option<String>,
    /// Its password: the file's first line. Never logged.
    pub bind_password_file: Option<PathBuf>,
    pub base_dn: String,
    /// Unset: the preset's (or an error without a preset).
    pub user_filter: Option<String>,
    /// Unset: the preset's, or every entry is enabled.
    pub enabled_filter: Option<String>,
    /// Unset: the preset's, or `memberOf`.
    pub group_attribute: Option<String>,
    pub cache_secs: u64,
    pub negative_cache_secs: u64,
    /// Bounds each operation on each URL.
    pub timeout_ms: u64,
    pub on_unavailable: OnUnavailable,
    pub preset: Option<Preset>,
    /// Unset: `if_present` with the Active Directory preset, else `off`.
    pub sid_binding: Option<SidBinding>,
    /// Re-check live sessions every N seconds; 0: off.
    pub revalidate_secs: u64,
    /// Allow a plain `ldap://` URL to a non-loopback host without StartTLS.
    pub allow_plaintext: bool,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        DirectoryConfig {
            url: Urls::default(),
            start_tls: false,
            ca_file: None,
            bind_dn: None,
            bind_password_file: None,
            base_dn: String::new(),
            user_filter: None,
            enabled_filter: None,
            group_attribute: None,
            cache_secs: 300,
            negative_cache_secs: 30,
            timeout_ms: 2000,
            on_unavailable: OnUnavailable::Reject,
            preset: None,
            sid_binding: None,
            revalidate_secs: 0,
            allow_plaintext: false,
        }
    }
}

impl DirectoryConfig {
    /// The user filter in force (the knob, else the preset's).
    pub fn effective_user_filter(&self) -> Option<&str> {
        match (&self.user_filter, self.preset) {
            (Some(f), _) => Some(f),
            (None, Some(Preset::ActiveDirectory)) => Some(AD_USER_FILTER),
            (None, None) => None,
        }
    }

    /// The machine fallback filter (Active Directory preset with no `user_filter` of its own):
    /// used when the identity is `host/...` or the certificate has no UPN.
    pub fn machine_filter(&self) -> Option<&str> {
        match (&self.user_filter, self.preset) {
            (None, Some(Preset::ActiveDirectory)) => Some(AD_MACHINE_FILTER),
            _ => None,
        }
    }

    pub fn effective_enabled_filter(&self) -> Option<&str> {
        match (&self.enabled_filter, self.preset) {
            (Some(f), _) => Some(f),
            (None, Some(Preset::ActiveDirectory)) => Some(AD_ENABLED_FILTER),
            (None, None) => None,
        }
    }

    pub fn effective_group_attribute(&self) -> &str {
        self.group_attribute.as_deref().unwrap_or("memberOf")
    }

    /// Nested groups through LDAP_MATCHING_RULE_IN_CHAIN: with the Active Directory preset when
    /// `group_attribute` keeps its default.
    pub fn nested_groups(&self) -> bool {
        self.preset == Some(Preset::ActiveDirectory) && self.group_attribute.is_none()
    }

    pub fn effective_sid_binding(&self) -> SidBinding {
        match (self.sid_binding, self.preset) {
            (Some(s), _) => s,
            (None, Some(Preset::ActiveDirectory)) => SidBinding::IfPresent,
            (None, None) => SidBinding::Off,
        }
    }

    /// Checks that need no file access.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let urls = self.url.list();
        if urls.is_empty() {
            return Err(ConfigError::invalid(
                "directory.url",
                "[directory] needs at least one ldap:// or ldaps:// URL",
            ));
        }
        for url in &urls {
            let parsed = parse_url(url).map_err(|e| ConfigError::invalid("directory.url", e))?;
            if !parsed.tls && !self.start_tls && !self.allow_plaintext && !parsed.loopback {
                return Err(ConfigError::invalid(
                    "directory.url",
                    format!(
                        "{url}: plain ldap:// to a non-loopback host would send the bind \
                         password in clear; use ldaps://, start_tls = true, or \
                         allow_plaintext = true"
                    ),
                ));
            }
        }
        if self.base_dn.trim().is_empty() {
            return Err(ConfigError::invalid("directory.base_dn", "is required"));
        }
        let Some(filter) = self.effective_user_filter() else {
            return Err(ConfigError::invalid(
                "directory.user_filter",
                "is required (or preset = \"active_directory\")",
            ));
        };
        check_filter_template("directory.user_filter", filter)?;
        if self
            .effective_enabled_filter()
            .is_some_and(|f| !(f.starts_with('(') && f.ends_with(')')))
        {
            return Err(ConfigError::invalid(
                "directory.enabled_filter",
                "must be a parenthesized LDAP filter (RFC 4515)",
            ));
        }
        if self.bind_dn.is_some() != self.bind_password_file.is_some() {
            return Err(ConfigError::invalid(
                "directory.bind_password_file",
                "bind_dn and bind_password_file go together",
            ));
        }
        if self.timeout_ms == 0 {
            return Err(ConfigError::invalid(
                "directory.timeout_ms",
                "must be at least 1",
            ));
        }
        let attr = self.effective_group_attribute();
        if attr.is_empty()
            || !attr
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(ConfigError::invalid(
                "directory.group_attribute",
                "must be an attribute name",
            ));
        }
        for (key, value) in [
            ("directory.cache_secs", self.cache_secs),
            ("directory.negative_cache_secs", self.negative_cache_secs),
            ("directory.timeout_ms", self.timeout_ms / 1000),
            ("directory.revalidate_secs", self.revalidate_secs),
        ] {
            if value > super::MAX_DURATION_SECS {
                return Err(ConfigError::invalid(
                    key,
                    format!(
                        "is longer than a year ({} s), the most allowed",
                        super::MAX_DURATION_SECS
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The parts of an LDAP URL (RFC 4516) the client needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapUrl {
    /// `ldaps://`.
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// The host is a loopback address or `localhost`.
    pub loopback: bool,
}

/// Parses `ldap[s]://host[:port][/]` (no DN, attributes or extensions: base_dn and the filter
/// have knobs of their own).
pub fn parse_url(url: &str) -> Result<LdapUrl, String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("ldaps://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("ldap://") {
        (false, r)
    } else {
        return Err(format!("{url}: not an ldap:// or ldaps:// URL"));
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains('/') || authority.contains('?') {
        return Err(format!("{url}: only ldap[s]://host[:port] is accepted"));
    }
    let default_port = if tls { 636 } else { 389 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{url}: unclosed ["))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| format!("{url}: bad port"))?,
            None if after.is_empty() => default_port,
            None => return Err(format!("{url}: bad authority")),
        };
        (h.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse().map_err(|_| format!("{url}: bad port"))?,
            ),
            None => (authority.to_string(), default_port),
        }
    };
    if host.is_empty() {
        return Err(format!("{url}: no host"));
    }
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    Ok(LdapUrl {
        tls,
        host,
        port,
        loopback,
    })
}

/// Balanced parentheses and only known placeholders.
fn check_filter_template(key: &str, filter: &str) -> Result<(), ConfigError> {
    let mut depth = 0i32;
    for c in filter.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            break;
        }
    }
    if depth != 0 || !filter.starts_with('(') {
        return Err(ConfigError::invalid(
            key,
            "must be a parenthesized LDAP filter with balanced parentheses (RFC 4515)",
        ));
    }
    let mut rest = filter;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(ConfigError::invalid(key, "unclosed {placeholder}"));
        };
        let name = &after[..close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(ConfigError::invalid(
                key,
                format!(
                    "unknown placeholder {{{name}}}; known: {}",
                    PLACEHOLDERS.join(", ")
                ),
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_for_test;

    const BASE: &str = "[directory]\nurl = \"ldap://127.0.0.1:3389\"\nbase_dn = \"dc=example,dc=org\"\nuser_filter = \"(uid={subject_cn})\"\n";

    #[test]
    fn absent_section_is_off() {
        assert!(load_for_test("").unwrap().directory.is_none());
    }

    #[test]
    fn every_knob_parses() {
        let c = load_for_test(
            "[directory]\nurl = [\"ldaps://dc1.example.org\", \"ldaps://dc2.example.org:3269\"]\n\
             start_tls = false\nca_file = \"/etc/ca.pem\"\nbind_dn = \"CN=radius,DC=example,DC=org\"\n\
             bind_password_file = \"/etc/pw\"\nbase_dn = \"DC=example,DC=org\"\n\
             user_filter = \"(userPrincipalName={san_upn})\"\n\
             enabled_filter = \"(!(userAccountControl:1.2.840.113556.1.4.803:=2))\"\n\
             group_attribute = \"memberOf\"\ncache_secs = 300\nnegative_cache_secs = 30\n\
             timeout_ms = 2000\non_unavailable = \"accept_cached\"\npreset = \"active_directory\"\n\
             sid_binding = \"required\"\nrevalidate_secs = 600\nallow_plaintext = false\n",
        )
        .unwrap();
        let d = c.directory.unwrap();
        assert_eq!(d.url.list().len(), 2);
        assert_eq!(d.on_unavailable, OnUnavailable::AcceptCached);
        assert_eq!(d.effective_sid_binding(), SidBinding::Required);
        assert_eq!(d.revalidate_secs, 600);
    }

    #[test]
    fn unknown_knob_is_refused() {
        let err = load_for_test(&format!("{BASE}bogus = 1\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn plaintext_to_remote_host_is_refused_unless_allowed() {
        let text = BASE.replace("127.0.0.1:3389", "dc1.example.org");
        let err = load_for_test(&text).unwrap_err().to_string();
        assert!(
            err.contains("directory.url") && err.contains("in clear"),
            "{err}"
        );
        assert!(load_for_test(&format!("{text}allow_plaintext = true\n")).is_ok());
        assert!(load_for_test(&format!("{text}start_tls = true\n")).is_ok());
        assert!(load_for_test(&text.replace("ldap://", "ldaps://")).is_ok());
        // Loopback is fine in clear.
        assert!(load_for_test(BASE).is_ok());
        assert!(load_for_test(&BASE.replace("127.0.0.1", "[::1]")).is_ok());
    }

    #[test]
    fn bad_templates_are_refused() {
        for (bad, key) in [
            ("(uid={nope})", "user_filter"),
            ("(uid={subject_cn}", "user_filter"),
            ("uid={subject_cn}", "user_filter"),
        ] {
            let text = BASE.replace("(uid={subject_cn})", bad);
            let err = load_for_test(&text).unwrap_err().to_string();
            assert!(err.contains(key), "{bad}: {err}");
        }
        let err = load_for_test(&BASE.replace("ldap://", "http://"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("directory.url"), "{err}");
        let err = load_for_test(&format!("{BASE}bind_dn = \"cn=x\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bind_password_file"), "{err}");
        let err = load_for_test(&format!("{BASE}timeout_ms = 0\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("directory.timeout_ms"), "{err}");
    }

    #[test]
    fn preset_fills_what_is_unset() {
        let c = load_for_test(
            "[directory]\nurl = \"ldaps://dc1.example.org\"\nbase_dn = \"DC=example,DC=org\"\n\
             preset = \"active_directory\"\n",
        )
        .unwrap();
        let d = c.directory.unwrap();
        assert_eq!(d.effective_user_filter(), Some(AD_USER_FILTER));
        assert_eq!(d.machine_filter(), Some(AD_MACHINE_FILTER));
        assert_eq!(d.effective_enabled_filter(), Some(AD_ENABLED_FILTER));
        assert_eq!(d.effective_sid_binding(), SidBinding::IfPresent);
        assert_eq!(d.effective_group_attribute(), "memberOf");
    }

    #[test]
    fn urls_parse() {
        let u = parse_url("ldaps://dc1.example.org").unwrap();
        assert_eq!((u.tls, u.port, u.loopback), (true, 636, false));
        let u = parse_url("ldap://[::1]:3389/").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.loopback), ("::1", 3389, true));
        assert!(parse_url("ldap://").is_err());
        assert!(parse_url("ldap://h:x").is_err());
        assert!(parse_url("ldap://h/dc=x").is_err());
    }
}
