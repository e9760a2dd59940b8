//! Rule-based authorization: binding the EAP identity to the certificate, then first-match rules
//! that accept (with reply attributes such as a VLAN) or reject.
//!
//! Standards this module follows:
//! - RFC 5216 §5.2 (and RFC 9190 §5.2): the EAP-Response/Identity is not protected and need not
//!   name the certificate; a server that wants them bound must compare the identity with the
//!   certificate's subject or subjectAltName itself. `[identity]` does that.
//! - RFC 5280 §4.1.2.4/§4.1.2.6 (issuer and subject DNs), §4.2.1.4 (certificate policies),
//!   §4.2.1.6 (subjectAltName: rfc822Name, dNSName, uniformResourceIdentifier, otherName). The
//!   Microsoft User Principal Name is the otherName with type-id 1.3.6.1.4.1.311.20.2.3 whose
//!   `[0] EXPLICIT` value is a UTF8String.
//! - RFC 2865 §5 (attribute values: integer = 4 octets network order, at most 253 octets per
//!   value; §5.26 Vendor-Specific), RFC 2865 §5.41 (NAS-Port-Type values).
//! - RFC 2868 §3.1/§3.2 (Tunnel-Type, Tunnel-Medium-Type: Tag octet then a 3-octet value; an
//!   unused Tag MUST be 0x00) and §3.6 (Tunnel-Private-Group-ID: a Tag octet 0x01..=0x1F is a
//!   tag, an octet above 0x1F is the first octet of the string).
//! - RFC 3580 §3.31: VLAN assignment with Tunnel-Type = VLAN (13), Tunnel-Medium-Type = IEEE-802
//!   (6), Tunnel-Private-Group-ID = the VLAN ID as text; with a single tunnel the tag is zero.
//!
//! Tag encoding chosen (configurable per rule with `tag = N`, 0..=31, default 0): tagged
//! integers always carry the tag octet (0x00 when unused, as RFC 2868 §3.1 requires). Tagged
//! strings carry the tag octet only when the tag is 1..=31; with tag 0 the octet is left out, as
//! FreeRADIUS does, because a first octet above 0x1F is unambiguously string data — unless the
//! string itself starts with an octet <= 0x1F, in which case a 0x00 octet is put in front so the
//! NAS does not mistake the first character for a tag.
//!
//! Evaluation, once per conversation after the chain verified: the identity binding first
//! (reject `identity_mismatch`), then the rules in order; the first rule whose conditions all
//! hold decides (`rule_reject`, or accept with its reply attributes). When none matches, the
//! default applies (accept, or reject `no_matching_rule`). All text comparisons of rule patterns
//! are case-insensitive; a value that is not UTF-8 never matches.
//!
//! The match field `method` ("eap-tls" | "mab") says how the request authenticated. A MAC
//! Authentication Bypass request is matched only against rules that name `method = "mab"`
//! (there is no identity binding and `authorize.default` does not apply: the allow list decided
//! already), so adding MAB cannot widen what rules written for EAP-TLS grant; a rule for MAB
//! alone that matches on a certificate field is refused at load (it could never match).

use super::ReplyAttribute;
use super::evaluate::normalize_serial;
use super::glob::Glob;
use super::identity::{Binding, build_binding};
use crate::config::{AuthorizeConfig, Cidr, IdentityConfig, RuleConfig, Scalar};
use crate::radius::dictionary::{AttributeDef, Dictionary};
use crate::radius::value::{MAX_TAG, encode_value};

/// Largest attribute value (RFC 2865 §5: the Length octet counts Type and Length).
const MAX_VALUE: usize = 253;
/// A Vendor-Specific attribute spends 6 of those octets on Vendor-Id, Vendor-Type and
/// Vendor-Length (RFC 2865 §5.26).
const MAX_VENDOR_VALUE: usize = MAX_VALUE - 6;
/// Octets of reply attributes one rule may add. The Access-Accept also carries EAP-Success,
/// Message-Authenticator and the two MS-MPPE keys, and must stay under 4096 octets (RFC 2865 §3).
const MAX_RULE_REPLY_OCTETS: usize = 2048;
/// Microsoft's vendor id (RFC 2548 §2).
const VENDOR_MICROSOFT: u32 = 311;

// ---------------------------------------------------------------------------------------------
// Compiled policy
// ---------------------------------------------------------------------------------------------

/// Everything a rule can look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    SubjectCn,
    SubjectO,
    SubjectOu,
    Subject,
    IssuerCn,
    Issuer,
    SanEmail,
    SanDns,
    SanUpn,
    SanUri,
    PolicyOid,
    Serial,
    NasAddress,
    CalledStationId,
    CallingStationId,
    NasPortType,
    Identity,
    Method,
    /// `[directory] group_attribute` values of the account (`directory_group`).
    DirectoryGroup,
}

pub(super) const RULE_FIELDS: [(&str, Field); 19] = [
    ("subject_cn", Field::SubjectCn),
    ("subject_o", Field::SubjectO),
    ("subject_ou", Field::SubjectOu),
    ("subject", Field::Subject),
    ("issuer_cn", Field::IssuerCn),
    ("issuer", Field::Issuer),
    ("san_email", Field::SanEmail),
    ("san_dns", Field::SanDns),
    ("san_upn", Field::SanUpn),
    ("san_uri", Field::SanUri),
    ("policy_oid", Field::PolicyOid),
    ("serial", Field::Serial),
    ("nas_address", Field::NasAddress),
    ("called_station_id", Field::CalledStationId),
    ("calling_station_id", Field::CallingStationId),
    ("nas_port_type", Field::NasPortType),
    ("identity", Field::Identity),
    ("method", Field::Method),
    ("directory_group", Field::DirectoryGroup),
];

/// The certificate fields the identity may be bound to.
pub(super) const IDENTITY_FIELDS: [(&str, Field); 5] = [
    ("cn", Field::SubjectCn),
    ("san_email", Field::SanEmail),
    ("san_dns", Field::SanDns),
    ("san_upn", Field::SanUpn),
    ("san_uri", Field::SanUri),
];

impl Field {
    pub(super) fn needs_certificate(self) -> bool {
        !matches!(
            self,
            Field::Subject
                | Field::Issuer
                | Field::Serial
                | Field::NasAddress
                | Field::CalledStationId
                | Field::CallingStationId
                | Field::NasPortType
                | Field::Identity
                | Field::Method
                | Field::DirectoryGroup
        )
    }

    /// Fields only a certificate has (a MAB request never matches them).
    fn of_certificate(self) -> bool {
        self.needs_certificate() || matches!(self, Field::Subject | Field::Issuer | Field::Serial)
    }
}

#[derive(Debug, Clone)]
pub(super) enum Condition {
    Text(Field, Vec<Glob>),
    Nas(Vec<Cidr>),
    PortType(Vec<u32>),
    /// `method`: how the request authenticated ("eap-tls", "mab").
    Method(Vec<crate::authz::Method>),
    /// `directory_group`: patterns without a wildcard are DNs (kept normalized, RFC 4514),
    /// with one, case-insensitive text.
    DirectoryGroup(Vec<GroupPattern>),
}

/// One `directory_group` pattern, prepared once at load.
#[derive(Debug, Clone)]
pub(super) enum GroupPattern {
    Dn(String),
    Glob(Glob),
}

impl GroupPattern {
    fn new(pattern: &str) -> Self {
        if pattern.contains('*') || pattern.contains('?') {
            GroupPattern::Glob(Glob::new(pattern))
        } else {
            GroupPattern::Dn(crate::directory::filter::normalize_dn(pattern))
        }
    }

    pub(super) fn matches(&self, group: &str) -> bool {
        match self {
            GroupPattern::Dn(dn) => crate::directory::filter::normalize_dn(group) == *dn,
            GroupPattern::Glob(g) => g.matches(group),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) enum Action {
    Accept(Vec<ReplyAttribute>),
    Reject,
}

#[derive(Debug, Clone)]
pub(super) struct Rule {
    pub(super) name: String,
    pub(super) conditions: Vec<Condition>,
    pub(super) action: Action,
}

impl Rule {
    /// Whether the rule names `method` among its `method` values.
    pub(super) fn names(&self, method: crate::authz::Method) -> bool {
        self.conditions
            .iter()
            .any(|c| matches!(c, Condition::Method(ms) if ms.contains(&method)))
    }
}

/// `[identity]` or `[authorize]` does not compile; the message starts with the key
/// (`authorize.rule[2].reply.Tunnel-Typo: unknown attribute (not in the dictionary)`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(String);

impl From<String> for PolicyError {
    fn from(message: String) -> Self {
        PolicyError(message)
    }
}

impl From<&str> for PolicyError {
    fn from(message: &str) -> Self {
        PolicyError(message.to_string())
    }
}

/// The compiled `[identity]` and `[authorize]` sections.
#[derive(Debug, Clone)]
pub struct RulePolicy {
    pub(super) binding: Option<Binding>,
    pub(super) rules: Vec<Rule>,
    pub(super) default_accept: bool,
    pub(super) reply_message: bool,
    /// Whether anything looks inside the leaf certificate (else it is not parsed again).
    pub(super) needs_certificate: bool,
}

impl RulePolicy {
    /// Compiles the configuration against the dictionary. Every error names its key, e.g.
    /// `authorize.rule[2].reply.Tunnel-Typo: unknown attribute (not in the dictionary)`.
    pub fn build(
        identity: &IdentityConfig,
        authz: &AuthorizeConfig,
        dict: &Dictionary,
    ) -> Result<RulePolicy, PolicyError> {
        let binding = build_binding(identity)?;
        let default_accept = match authz.default.as_deref().map(str::to_ascii_lowercase) {
            None => authz.rules.is_empty(),
            Some(d) if d == "accept" => true,
            Some(d) if d == "reject" => false,
            Some(d) => {
                return Err(format!(
                    "authorize.default: {d:?} is neither \"accept\" nor \"reject\""
                )
                .into());
            }
        };
        let mut rules: Vec<Rule> = Vec::with_capacity(authz.rules.len());
        for (i, rc) in authz.rules.iter().enumerate() {
            let rule = build_rule(i, rc, dict)?;
            if rules.iter().any(|r| r.name == rule.name) {
                return Err(format!(
                    "authorize.rule[{i}].name: {:?} is used by an earlier rule",
                    rule.name
                )
                .into());
            }
            rules.push(rule);
        }
        let needs_certificate = binding.is_some()
            || rules.iter().any(|r| {
                r.conditions
                    .iter()
                    .any(|c| matches!(c, Condition::Text(f, _) if f.needs_certificate()))
            });
        Ok(RulePolicy {
            binding,
            rules,
            default_accept,
            reply_message: authz.reply_message,
            needs_certificate,
        })
    }

    /// The Reply-Message text for an Access-Reject, when `authorize.reply_message` is on. It
    /// carries only the stable reason, never the detail (rule names, certificate contents),
    /// because the NAS may show it to the user.
    pub fn reply_message(&self, reason: &str) -> Option<String> {
        self.reply_message
            .then(|| format!("Access rejected: {reason}"))
    }

    /// Number of configured rules, for the startup log line.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }
}

fn build_rule(i: usize, rc: &RuleConfig, dict: &Dictionary) -> Result<Rule, PolicyError> {
    let at = format!("authorize.rule[{i}]");
    if rc.name.trim().is_empty() {
        return Err(format!("{at}.name: must not be empty").into());
    }
    let mut conditions = Vec::with_capacity(rc.r#match.len());
    for (key, patterns) in &rc.r#match {
        let here = format!("{at}.match.{key}");
        let field = RULE_FIELDS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(key))
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                let known: Vec<&str> = RULE_FIELDS.iter().map(|(n, _)| *n).collect();
                format!("{here}: unknown field (use {})", known.join(", "))
            })?;
        let items = patterns.items();
        if items.is_empty() {
            return Err(format!("{here}: an empty list matches nothing").into());
        }
        conditions.push(build_condition(&here, field, items, dict)?);
    }
    let only_mab = conditions.iter().any(|c| {
        matches!(c, Condition::Method(ms) if ms.iter().all(|m| *m == crate::authz::Method::Mab))
    });
    if only_mab
        && let Some(Condition::Text(field, _)) = conditions
            .iter()
            .find(|c| matches!(c, Condition::Text(f, _) if f.of_certificate()))
    {
        let name = RULE_FIELDS
            .iter()
            .find(|(_, f)| f == field)
            .map_or("?", |(n, _)| *n);
        return Err(format!(
            "{at}.match.{name}: a certificate field never matches a MAB request (method = \"mab\" has no certificate)"
        )
        .into());
    }
    let reject = match rc.action.as_deref().map(str::to_ascii_lowercase) {
        None => false,
        Some(a) if a == "accept" => false,
        Some(a) if a == "reject" => true,
        Some(a) => {
            return Err(format!("{at}.action: {a:?} is neither \"accept\" nor \"reject\"").into());
        }
    };
    let tag = rc.tag.unwrap_or(0);
    if tag > MAX_TAG {
        return Err(
            format!("{at}.tag: {tag} is not an RFC 2868 tag (0 for none, or 1..=31)").into(),
        );
    }
    let action = if reject {
        if !rc.reply.is_empty() {
            return Err(format!(
                "{at}.reply: a rule with action = \"reject\" sends no reply attributes"
            )
            .into());
        }
        Action::Reject
    } else {
        let mut attributes = Vec::new();
        let mut octets = 0usize;
        for (name, values) in &rc.reply {
            let here = format!("{at}.reply.{name}");
            let def = reply_attribute(&here, name, dict)?;
            if values.items().is_empty() {
                return Err(format!("{here}: an empty list sends nothing").into());
            }
            for v in values.items() {
                let value = encode_value(def, v, tag, dict).map_err(|m| format!("{here}: {m}"))?;
                let max = if def.vendor.is_some() {
                    MAX_VENDOR_VALUE
                } else {
                    MAX_VALUE
                };
                if value.len() > max {
                    return Err(format!(
                        "{here}: the value is {} octets long, at most {max} fit in one attribute",
                        value.len()
                    )
                    .into());
                }
                octets += value.len() + if def.vendor.is_some() { 8 } else { 2 };
                attributes.push(ReplyAttribute {
                    vendor: def.vendor,
                    typ: u8::try_from(def.number).map_err(|_| {
                        format!(
                            "{here}: attribute number {} does not fit in one octet",
                            def.number
                        )
                    })?,
                    value,
                });
            }
        }
        if octets > MAX_RULE_REPLY_OCTETS {
            return Err(format!(
                "{at}.reply: {octets} octets of attributes, more than the {MAX_RULE_REPLY_OCTETS} \
                 that leave room for the EAP and key attributes in the Access-Accept"
            )
            .into());
        }
        Action::Accept(attributes)
    };
    Ok(Rule {
        name: rc.name.clone(),
        conditions,
        action,
    })
}

fn build_condition(
    here: &str,
    field: Field,
    items: &[Scalar],
    dict: &Dictionary,
) -> Result<Condition, PolicyError> {
    match field {
        Field::NasAddress => items
            .iter()
            .map(|s| Cidr::parse(&s.text()).map_err(|m| format!("{here}: {m}")))
            .collect::<Result<_, String>>()
            .map(Condition::Nas)
            .map_err(PolicyError::from),
        Field::NasPortType => items
            .iter()
            .map(|s| match s {
                Scalar::Int(i) => u32::try_from(*i)
                    .map_err(|_| format!("{here}: {i} is not a NAS-Port-Type number")),
                Scalar::Text(t) => dict
                    .value("NAS-Port-Type", t)
                    .or_else(|| t.trim().parse().ok())
                    .ok_or_else(|| {
                        format!("{here}: {t:?} is not a NAS-Port-Type VALUE name in the dictionary")
                    }),
            })
            .collect::<Result<_, String>>()
            .map(Condition::PortType)
            .map_err(PolicyError::from),
        Field::Method => items
            .iter()
            .map(|s| {
                let t = s.text();
                match t.to_ascii_lowercase().as_str() {
                    "eap-tls" => Ok(crate::authz::Method::EapTls),
                    "mab" => Ok(crate::authz::Method::Mab),
                    _ => Err(format!("{here}: {t:?} is neither \"eap-tls\" nor \"mab\"")),
                }
            })
            .collect::<Result<_, String>>()
            .map(Condition::Method)
            .map_err(PolicyError::from),
        Field::DirectoryGroup => Ok(Condition::DirectoryGroup(
            items.iter().map(|s| GroupPattern::new(&s.text())).collect(),
        )),
        Field::Serial => Ok(Condition::Text(
            field,
            items
                .iter()
                .map(|s| Glob::new(&normalize_serial(&s.text())))
                .collect(),
        )),
        _ => Ok(Condition::Text(
            field,
            items.iter().map(|s| Glob::new(&s.text())).collect(),
        )),
    }
}

/// The dictionary entry of a reply attribute, refusing the ones the server must own.
fn reply_attribute<'d>(
    here: &str,
    name: &str,
    dict: &'d Dictionary,
) -> Result<&'d AttributeDef, PolicyError> {
    let def = dict
        .attribute(name)
        .ok_or_else(|| format!("{here}: unknown attribute (not in the dictionary)"))?;
    // The server builds these itself: EAP-Message and Message-Authenticator (RFC 3579 §3),
    // State (RFC 2865 §5.24), Proxy-State (copied from the request, §5.33), User-Name, and the
    // MS-MPPE attributes (RFC 2548 §2.4) that carry the session keys.
    let owned = match def.vendor {
        None => matches!(def.number, 1 | 24 | 33 | 79 | 80),
        Some(VENDOR_MICROSOFT) => matches!(def.number, 7 | 8 | 16 | 17),
        Some(_) => false,
    };
    if owned || def.name.to_ascii_lowercase().starts_with("ms-mppe-") {
        return Err(format!(
            "{here}: {} is set by the server and cannot be set by a rule",
            def.name
        )
        .into());
    }
    // A hidden attribute (User-Password, Tunnel-Password, ...) would go out in clear text.
    if def.encrypt != 0 {
        return Err(format!(
            "{here}: {} must be encrypted on the wire, which rules do not support",
            def.name
        )
        .into());
    }
    Ok(def)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::OnceLock;

    use super::*;
    use crate::authz::{Decision, Grant, Policy, RequestInfo};
    use crate::tls::VerifiedPeer;
    use crate::x509::facts::decode_upn;
    use certradius_pki as pki;

    /// The `[identity]` / `[authorize]` snippet proposed for config/example.toml.
    const EXAMPLE: &str = r#"
# ---------------------------------------------------------------------------------------------
# [identity]: binding the EAP identity to the certificate.
# The EAP-Response/Identity a supplicant sends (the outer User-Name) is not protected by TLS and
# need not name the certificate at all (RFC 5216 §5.2). With this section, the identity must
# equal a value of the verified certificate, or the peer is rejected (reason identity_mismatch).
# Leave match_fields and templates empty to skip the check.
# ---------------------------------------------------------------------------------------------
[identity]
# Certificate fields the identity may equal; any one value of any listed field is enough.
#   "cn"        subject commonName
#   "san_email" subjectAltName rfc822Name
#   "san_dns"   subjectAltName dNSName
#   "san_upn"   subjectAltName otherName User Principal Name (Windows user/machine certs)
#   "san_uri"   subjectAltName uniformResourceIdentifier
# [] or ["none"] (the default) turns the field comparison off.
match_fields = ["cn", "san_email", "san_upn"]
# The identity may instead equal one of these templates, each placeholder ({cn}, {san_email},
# {san_dns}, {san_upn}, {san_uri}) standing for any one value of that field. Windows machine
# authentication sends "host/" followed by the computer's DNS name. Default: [].
templates = ["host/{san_dns}"]
# false (the default): compare ignoring case; true: exactly.
case_sensitive = false

# ---------------------------------------------------------------------------------------------
# [authorize]: who gets on, and onto which network.
# Rules are tried in order after the certificate chain verified and the identity binding held;
# the first rule whose conditions ALL hold decides. A rule accepts (sending its reply attributes
# to the NAS in the Access-Accept) or rejects (reason rule_reject). When none matches, `default`
# applies (reason no_matching_rule when it rejects).
# ---------------------------------------------------------------------------------------------
[authorize]
# "accept" or "reject" when no rule matches. When unset: "accept" if there are no rules at all
# (every verified certificate gets on, with no reply attributes), "reject" as soon as there is one.
default = "reject"
# true: put the reject reason (e.g. "Access rejected: no_matching_rule", never the rule name or
# certificate details) in a Reply-Message of the Access-Reject. Default false.
reply_message = false

# Each [[authorize.rule]] has:
#   name    (required) unique; appears in the log line and in the reject detail.
#   action  "accept" (default) or "reject".
#   [authorize.rule.match]  conditions, all of which must hold (none: the rule matches everyone).
#     A value is a pattern, or a list of patterns of which any one may match. Patterns compare
#     ignoring case; '*' matches any run of characters, '?' exactly one. Fields:
#       subject_cn, subject_o, subject_ou   subject commonName / organization / organizationalUnit
#       subject, issuer                      whole DN as logged, e.g. "O=certradius test, CN=alice@certradius.test"
#       issuer_cn                            issuer commonName
#       san_email, san_dns, san_upn, san_uri subjectAltName values
#       policy_oid                           a certificatePolicies OID, dotted ("1.3.6.1.4.1.99999.1.2")
#       serial                               hex; ':' and leading zeros ignored ("01:23:ab" = "123AB")
#       identity                             the EAP identity
#       nas_address                          the NAS's source IP: address or CIDR ("10.1.0.0/16")
#       called_station_id                    e.g. "*:eduroam" (RFC 3580: "AP-MAC:SSID")
#       calling_station_id                   the supplicant's MAC as the NAS sends it
#       nas_port_type                        number or dictionary name: "Ethernet" (15), "Wireless-802.11" (19)
#   [authorize.rule.reply]  (accept rules only) attributes by dictionary name, each a string or
#     an integer, or a list to send the attribute several times. Integer attributes take a number
#     or a dictionary VALUE name; octets attributes take text or "0x" hex. The server's own
#     attributes (EAP-Message, Message-Authenticator, State, Proxy-State, User-Name, MS-MPPE-*)
#     and encrypted ones (Tunnel-Password) cannot be set. At most 253 octets per value.
#   tag     RFC 2868 tag, 0..=31, for the tunnel attributes (Tunnel-Type, Tunnel-Medium-Type,
#     Tunnel-Private-Group-Id, ...). Default 0: one VLAN, as RFC 3580 §3.31 recommends. Tunnel-Type
#     and Tunnel-Medium-Type always carry the tag octet; Tunnel-Private-Group-Id carries it only
#     when the tag is 1..=31.

# A lost laptop: reject its certificate before any accept rule sees it.
[[authorize.rule]]
name = "lost-laptop"
action = "reject"
[authorize.rule.match]
serial = "7f:00:00:00:00:00:00:01"

# Domain machines: VLAN 200 (RFC 3580 §3.31 dynamic VLAN assignment).
[[authorize.rule]]
name = "machines"
[authorize.rule.match]
subject_cn = "host/*"
issuer_cn = "certradius Test Intermediate CA"
[authorize.rule.reply]
Tunnel-Type = "VLAN"
Tunnel-Medium-Type = "IEEE-802"
Tunnel-Private-Group-Id = "200"

# Guests only on the guest SSID, wherever their certificate came from.
[[authorize.rule]]
name = "guests"
[authorize.rule.match]
subject_ou = "Guests"
called_station_id = "*:guest"
[authorize.rule.reply]
Tunnel-Type = "VLAN"
Tunnel-Medium-Type = "IEEE-802"
Tunnel-Private-Group-Id = "300"
Session-Timeout = 3600

# Staff: VLAN 100, re-authenticate every 8 hours (Termination-Action RADIUS-Request, RFC 3580).
[[authorize.rule]]
name = "staff"
[authorize.rule.match]
subject_cn = ["*@certradius.test"]
# nas_address = ["10.1.0.0/16", "2001:db8:1::/48"]
# nas_port_type = ["Ethernet", "Wireless-802.11"]
[authorize.rule.reply]
Tunnel-Type = "VLAN"
Tunnel-Medium-Type = "IEEE-802"
Tunnel-Private-Group-Id = "100"
Session-Timeout = 28800
Termination-Action = "RADIUS-Request"
Class = "staff"
Filter-Id = "staff"
"#;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Wrapper {
        #[serde(default)]
        identity: IdentityConfig,
        #[serde(default)]
        authorize: AuthorizeConfig,
    }

    /// Reads TOML exactly as the server does, through the `config` crate.
    fn parse(text: &str) -> Result<Wrapper, String> {
        config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize::<Wrapper>())
            .map_err(|e| e.to_string())
    }

    /// The shipped example's rules compile (the config layer itself knows nothing of rules).
    #[test]
    fn example_config_rules_build() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
        let cfg = crate::config::Config::load_with_env(Some(&path), false).unwrap();
        let policy = RulePolicy::build(&cfg.identity, &cfg.authorize, dict()).unwrap();
        assert!(policy.rule_count() >= 3);
    }

    fn dict() -> &'static Dictionary {
        static D: OnceLock<Dictionary> = OnceLock::new();
        D.get_or_init(Dictionary::embedded)
    }

    fn build(text: &str) -> Result<RulePolicy, String> {
        let w = parse(text)?;
        RulePolicy::build(&w.identity, &w.authorize, dict()).map_err(|e| e.to_string())
    }

    fn policy(text: &str) -> RulePolicy {
        build(text).unwrap()
    }

    fn build_err(text: &str) -> String {
        build(text).unwrap_err()
    }

    /// Client certificates of one generated test PKI, by `pki::CLIENT_NAMES` name.
    fn peer(name: &str) -> &'static VerifiedPeer {
        static P: OnceLock<HashMap<&'static str, VerifiedPeer>> = OnceLock::new();
        let peers = P.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            pki::generate(dir.path()).unwrap();
            let paths = pki::PkiPaths::new(dir.path());
            pki::CLIENT_NAMES
                .iter()
                .map(|n| {
                    let chain = crate::tls::load_certs("test", &paths.client_cert(n)).unwrap();
                    (*n, VerifiedPeer::for_test(chain).unwrap())
                })
                .collect()
        });
        &peers[name]
    }

    fn decide(p: &RulePolicy, who: &str, identity: &str, req: &RequestInfo<'_>) -> Decision {
        p.authorize(identity.as_bytes(), peer(who), req)
    }

    fn accepted(d: Decision) -> Grant {
        match d {
            Decision::Accept(g) => g,
            other => panic!("expected accept, got {other:?}"),
        }
    }

    fn rejected(d: Decision) -> (&'static str, String) {
        match d {
            Decision::Reject { reason, detail } => (reason.as_str(), detail),
            other => panic!("expected reject, got {other:?}"),
        }
    }

    fn attr(typ: u8, value: &[u8]) -> ReplyAttribute {
        ReplyAttribute {
            vendor: None,
            typ,
            value: value.to_vec(),
        }
    }

    const NO_REQ: RequestInfo<'static> = RequestInfo {
        method: crate::authz::Method::EapTls,
        nas: None,
        user_name: None,
        calling_station_id: None,
        called_station_id: None,
        nas_port_type: None,
        framed_mtu: None,
        directory_groups: None,
    };

    #[test]
    fn glob_patterns() {
        let m = |p: &str, t: &str| Glob::new(p).matches(t);
        assert!(m("*@staff.example.org", "Ann@STAFF.example.org"));
        assert!(!m("*@staff.example.org", "ann@staff.example.org.evil"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
        assert!(m("*", ""));
        assert!(m("", ""));
        assert!(!m("", "x"));
        assert!(m("exact", "EXACT"));
        assert!(m("**x", "x"));
        // Worst case stays fast: O(pattern × text).
        let long = "a".repeat(5000);
        assert!(!m("*a*a*a*a*a*b", &long));
    }

    #[test]
    fn serial_normalization() {
        assert_eq!(normalize_serial("00:AB:cd"), "abcd");
        assert_eq!(normalize_serial("0"), "0");
        assert_eq!(normalize_serial("00"), "0");
        assert_eq!(normalize_serial(""), "");
    }

    #[test]
    fn certificate_fields_are_read() {
        let alice = peer("rsa").leaf().rule_facts().unwrap();
        assert_eq!(alice.subject_cn, ["alice@certradius.test"]);
        assert_eq!(alice.subject_o, [pki::ORGANIZATION]);
        assert_eq!(alice.issuer_cn, [pki::INTERMEDIATE_CN]);
        assert_eq!(alice.san_email, ["alice@certradius.test"]);
        assert!(alice.san_upn.is_empty());
        let machine = peer("machine").leaf().rule_facts().unwrap();
        assert_eq!(machine.san_dns, ["laptop42.certradius.test"]);
        let carol = peer("upn").leaf().rule_facts().unwrap();
        assert_eq!(carol.san_upn, [pki::CLIENT_UPN]);
    }

    #[test]
    fn upn_decoding_rejects_malformed_values() {
        // [0] { UTF8String "a@b" }
        assert_eq!(decode_upn(b"\xa0\x05\x0c\x03a@b").unwrap(), "a@b");
        // Wrong inner type (IA5String), wrong outer tag, trailing garbage, truncation.
        assert!(decode_upn(b"\xa0\x05\x16\x03a@b").is_err());
        assert!(decode_upn(b"\xa1\x05\x0c\x03a@b").is_err());
        assert!(decode_upn(b"\xa0\x05\x0c\x03a@b\x00").is_err());
        assert!(decode_upn(b"\xa0\x05\x0c\x03a").is_err());
        assert!(decode_upn(b"").is_err());
    }

    #[test]
    fn identity_bound_to_san_email() {
        let p = policy("[identity]\nmatch_fields = [\"san_email\"]\n");
        accepted(decide(&p, "rsa", "alice@certradius.test", &NO_REQ));
        accepted(decide(&p, "rsa", "Alice@CertRadius.test", &NO_REQ));
        let (reason, detail) = rejected(decide(&p, "rsa", "bob@certradius.test", &NO_REQ));
        assert_eq!(reason, "identity_mismatch");
        assert!(detail.contains("bob@certradius.test"), "{detail}");
        assert!(detail.contains("san_email"), "{detail}");
        let (reason, _) = rejected(p.authorize(b"\xff\xfe", peer("rsa"), &NO_REQ));
        assert_eq!(reason, "identity_mismatch");
        let (reason, _) = rejected(decide(&p, "rsa", "", &NO_REQ));
        assert_eq!(reason, "identity_mismatch");
    }

    #[test]
    fn identity_case_sensitive() {
        let p = policy("[identity]\nmatch_fields = [\"cn\"]\ncase_sensitive = true\n");
        accepted(decide(&p, "rsa", "alice@certradius.test", &NO_REQ));
        let (reason, _) = rejected(decide(&p, "rsa", "ALICE@certradius.test", &NO_REQ));
        assert_eq!(reason, "identity_mismatch");
    }

    #[test]
    fn identity_machine_template() {
        let p = policy("[identity]\ntemplates = [\"host/{san_dns}\"]\n");
        accepted(decide(
            &p,
            "machine",
            "host/laptop42.certradius.test",
            &NO_REQ,
        ));
        accepted(decide(
            &p,
            "machine",
            "HOST/Laptop42.certradius.test",
            &NO_REQ,
        ));
        for wrong in [
            "laptop42.certradius.test",
            "host/laptop43.certradius.test",
            "host/",
        ] {
            let (reason, detail) = rejected(decide(&p, "machine", wrong, &NO_REQ));
            assert_eq!(reason, "identity_mismatch");
            assert!(detail.contains("host/{san_dns}"), "{detail}");
        }
        // alice has no dNSName, so no expansion exists.
        let (reason, _) = rejected(decide(&p, "rsa", "host/", &NO_REQ));
        assert_eq!(reason, "identity_mismatch");
    }

    #[test]
    fn identity_fields_or_templates() {
        let p = policy(
            "[identity]\nmatch_fields = [\"san_upn\", \"san_email\"]\ntemplates = [\"host/{san_dns}\", \"{cn}\"]\n",
        );
        accepted(decide(&p, "upn", pki::CLIENT_UPN, &NO_REQ));
        accepted(decide(
            &p,
            "machine",
            "host/laptop42.certradius.test",
            &NO_REQ,
        ));
        accepted(decide(
            &p,
            "machine",
            "host/laptop42.certradius.test",
            &NO_REQ,
        ));
        accepted(decide(&p, "ecdsa", "bob@certradius.test", &NO_REQ));
        let (reason, _) = rejected(decide(&p, "upn", "alice@certradius.test", &NO_REQ));
        assert_eq!(reason, "identity_mismatch");
    }

    #[test]
    fn no_binding_and_no_rules_accepts_everyone() {
        for text in ["", "[identity]\nmatch_fields = [\"none\"]\n"] {
            let p = policy(text);
            let g = accepted(decide(&p, "rsa", "anything", &NO_REQ));
            assert_eq!(g.rule.as_deref(), Some("default"));
            assert!(g.attributes.is_empty());
            assert!(!p.needs_certificate);
        }
    }

    const VLAN: &str = r#"
[authorize]
default = "reject"
[[authorize.rule]]
name = "staff-vlan"
match = { subject_cn = "*@certradius.test" }
reply = { "Tunnel-Type" = "VLAN", "Tunnel-Medium-Type" = "IEEE-802", "Tunnel-Private-Group-Id" = "100", "Session-Timeout" = 3600, "Class" = "staff", "Filter-Id" = "staff-acl" }
"#;

    #[test]
    fn vlan_grant_encoding() {
        let p = policy(VLAN);
        let g = accepted(decide(&p, "rsa", "alice@certradius.test", &NO_REQ));
        assert_eq!(g.rule.as_deref(), Some("staff-vlan"));
        let mut got = g.attributes;
        got.sort_by_key(|a| a.typ);
        assert_eq!(
            got,
            [
                attr(11, b"staff-acl"),
                attr(25, b"staff"),
                attr(27, &3600u32.to_be_bytes()),
                attr(64, &[0, 0, 0, 13]),
                attr(65, &[0, 0, 0, 6]),
                attr(81, b"100"),
            ]
        );
    }

    #[test]
    fn tagged_tunnel_attributes() {
        let p = policy(
            r#"
[[authorize.rule]]
name = "tagged"
tag = 1
reply = { "Tunnel-Type" = 13, "Tunnel-Medium-Type" = 6, "Tunnel-Private-Group-Id" = 200 }
"#,
        );
        let mut got = accepted(decide(&p, "rsa", "x", &NO_REQ)).attributes;
        got.sort_by_key(|a| a.typ);
        assert_eq!(
            got,
            [
                attr(64, &[1, 0, 0, 13]),
                attr(65, &[1, 0, 0, 6]),
                attr(81, b"\x01200"),
            ]
        );
        // Untagged string starting with a tag-like octet gets a 0x00 tag in front.
        let def = dict().attribute("Tunnel-Private-Group-Id").unwrap();
        assert_eq!(
            encode_value(def, &Scalar::Text("\u{1}x".into()), 0, dict()).unwrap(),
            b"\x00\x01x"
        );
        // A tagged integer has three octets for its value.
        let def = dict().attribute("Tunnel-Type").unwrap();
        assert!(encode_value(def, &Scalar::Int(0x0100_0000), 0, dict()).is_err());
    }

    #[test]
    fn other_value_types() {
        let p = policy(
            r#"
[[authorize.rule]]
name = "types"
reply = { "MS-Primary-DNS-Server" = "192.0.2.53", "Class" = ["0x0102ff", "second"], "Session-Timeout" = "600", "Service-Type" = "Framed-User", "NAS-IPv6-Address" = "2001:db8::1" }
"#,
        );
        let got = accepted(decide(&p, "rsa", "x", &NO_REQ)).attributes;
        assert!(got.contains(&ReplyAttribute {
            vendor: Some(311),
            typ: 28,
            value: vec![192, 0, 2, 53],
        }));
        assert!(got.contains(&attr(25, &[1, 2, 0xff])));
        assert!(got.contains(&attr(25, b"second")));
        assert!(got.contains(&attr(27, &600u32.to_be_bytes())));
        assert!(got.contains(&attr(6, &2u32.to_be_bytes())));
        let v6: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert!(got.contains(&attr(95, &v6.octets())));
    }

    /// `method` keeps MAB apart: only rules naming "mab" see a MAB request, and a rule naming
    /// only "mab" never sees an EAP-TLS one.
    /// `directory_group`: a DN pattern compares as a DN (case, spaces after separators), a
    /// wildcard pattern as text; no groups (no directory asked) never match.
    #[test]
    fn directory_group_matches_dns_and_wildcards() {
        let p = policy(
            "[authorize]\ndefault = \"reject\"\n\
             [[authorize.rule]]\nname = \"staff\"\n\
             [authorize.rule.match]\ndirectory_group = \"CN=WiFi-Staff, OU=Groups,DC=example,DC=org\"\n\
             [[authorize.rule]]\nname = \"any-wifi\"\n\
             [authorize.rule.match]\ndirectory_group = \"cn=wifi-*\"\n",
        );
        let with = |groups: &'static [String]| RequestInfo {
            directory_groups: Some(groups),
            ..NO_REQ
        };
        static STAFF: OnceLock<Vec<String>> = OnceLock::new();
        let staff = STAFF.get_or_init(|| {
            vec![
                "cn=other,ou=groups,dc=example,dc=org".into(),
                "cn=wifi-staff,ou=groups, dc=example, dc=org".into(),
            ]
        });
        let g = accepted(decide(&p, "rsa", "alice@certradius.test", &with(staff)));
        assert_eq!(g.rule.as_deref(), Some("staff"));
        static GUEST: OnceLock<Vec<String>> = OnceLock::new();
        let guest = GUEST.get_or_init(|| vec!["CN=WiFi-Guests,OU=Groups,DC=example,DC=org".into()]);
        let g = accepted(decide(&p, "rsa", "alice@certradius.test", &with(guest)));
        assert_eq!(g.rule.as_deref(), Some("any-wifi"));
        // A DN pattern is not a prefix or a substring.
        static NEAR: OnceLock<Vec<String>> = OnceLock::new();
        let near = NEAR.get_or_init(|| vec!["cn=wifi-staff2,ou=groups,dc=example,dc=org".into()]);
        let g = accepted(decide(&p, "rsa", "alice@certradius.test", &with(near)));
        assert_eq!(g.rule.as_deref(), Some("any-wifi"));
        assert_eq!(
            rejected(decide(&p, "rsa", "alice@certradius.test", &NO_REQ)).0,
            "no_matching_rule"
        );
    }

    #[test]
    fn method_keeps_mab_apart() {
        use crate::authz::Method;
        let p = policy(
            r#"
[authorize]
default = "accept"
[[authorize.rule]]
name = "lobby-printers"
match = { method = "mab", nas_address = "10.0.0.0/8" }
reply = { "Tunnel-Type" = "VLAN", "Tunnel-Medium-Type" = "IEEE-802", "Tunnel-Private-Group-Id" = "30" }
[[authorize.rule]]
name = "cameras-off"
match = { method = ["MAB"], calling_station_id = "aa-bb-cc-*" }
action = "reject"
[[authorize.rule]]
name = "everyone"
reply = { "Filter-Id" = "staff" }
[[authorize.rule]]
name = "both"
match = { method = ["eap-tls", "mab"], calling_station_id = "02-*" }
reply = { "Filter-Id" = "both" }
"#,
        );
        let mab = |nas: &str, calling: &'static [u8]| RequestInfo {
            method: Method::Mab,
            nas: Some(nas.parse().unwrap()),
            calling_station_id: Some(calling),
            ..Default::default()
        };
        let g = match p.authorize_mab(&mab("10.1.2.3", b"00-11-22-33-44-55")) {
            Some(Decision::Accept(g)) => g,
            other => panic!("{other:?}"),
        };
        assert_eq!(g.rule.as_deref(), Some("lobby-printers"));
        assert!(g.attributes.contains(&attr(81, b"30")));
        assert!(matches!(
            p.authorize_mab(&mab("192.0.2.1", b"aa-bb-cc-00-00-01")),
            Some(Decision::Reject { .. })
        ));
        // "everyone" names no method: it never matches MAB, and neither does the default.
        assert_eq!(
            p.authorize_mab(&mab("192.0.2.1", b"00-11-22-33-44-55")),
            None
        );
        let g = match p.authorize_mab(&mab("192.0.2.1", b"02-00-00-00-00-01")) {
            Some(Decision::Accept(g)) => g,
            other => panic!("{other:?}"),
        };
        assert_eq!(g.rule.as_deref(), Some("both"));
        // EAP-TLS never matches the MAB-only rules, whatever the request.
        let eap = RequestInfo {
            nas: Some("10.1.2.3".parse().unwrap()),
            calling_station_id: Some(b"aa-bb-cc-00-00-01"),
            ..Default::default()
        };
        let g = accepted(decide(&p, "rsa", "alice", &eap));
        assert_eq!(g.rule.as_deref(), Some("everyone"));
        // A policy without rules sends MAB nothing beyond the allow list.
        assert_eq!(policy("").authorize_mab(&mab("10.1.2.3", b"x")), None);
    }

    #[test]
    fn method_values_and_certificate_fields_are_checked() {
        let e = build_err("[[authorize.rule]]\nname = \"x\"\nmatch = { method = \"pap\" }\n");
        assert!(e.contains("authorize.rule[0].match.method"), "{e}");
        assert!(e.contains("\"eap-tls\""), "{e}");
        let e = build_err(
            "[[authorize.rule]]\nname = \"x\"\nmatch = { method = \"mab\", subject_cn = \"a\" }\n",
        );
        assert!(e.contains("match.subject_cn"), "{e}");
        assert!(e.contains("never matches a MAB request"), "{e}");
        // Both methods: a certificate field is fine (it matches EAP-TLS requests).
        build(
            "[[authorize.rule]]\nname = \"x\"\nmatch = { method = [\"mab\", \"eap-tls\"], serial = \"01\" }\n",
        )
        .unwrap();
    }

    #[test]
    fn first_matching_rule_decides() {
        let p = policy(
            r#"
[[authorize.rule]]
name = "block-bob"
match = { subject_cn = "bob@*" }
action = "reject"
[[authorize.rule]]
name = "everyone"
match = { subject_cn = ["alice@*", "host/*"] }
reply = { "Filter-Id" = "all" }
[[authorize.rule]]
name = "never-reached"
match = { subject_cn = "alice@certradius.test" }
"#,
        );
        let (reason, detail) = rejected(decide(&p, "ecdsa", "bob", &NO_REQ));
        assert_eq!(reason, "rule_reject");
        assert!(detail.contains("block-bob"), "{detail}");
        let g = accepted(decide(&p, "rsa", "alice", &NO_REQ));
        assert_eq!(g.rule.as_deref(), Some("everyone"));
        let g = accepted(decide(&p, "machine", "m", &NO_REQ));
        assert_eq!(g.rule.as_deref(), Some("everyone"));
        // Rules but no `default`: fail closed.
        let (reason, _) = rejected(decide(&p, "upn", "carol", &NO_REQ));
        assert_eq!(reason, "no_matching_rule");
    }

    #[test]
    fn all_conditions_must_hold() {
        let p = policy(
            r#"
[[authorize.rule]]
name = "alice-on-wifi"
match = { san_email = "alice@*", nas_port_type = "Wireless-802.11", nas_address = ["10.1.0.0/16", "2001:db8::/32"], called_station_id = "*:eduroam" }
"#,
        );
        let req = |nas: &str, port: u32, called: &'static [u8]| RequestInfo {
            nas: Some(nas.parse().unwrap()),
            nas_port_type: Some(port),
            called_station_id: Some(called),
            ..RequestInfo::default()
        };
        let ok = req("10.1.2.3", 19, b"00-11-22-33-44-55:eduroam");
        accepted(decide(&p, "rsa", "a", &ok));
        accepted(decide(
            &p,
            "rsa",
            "a",
            &req("2001:db8::7", 19, b"AA:EDUROAM"),
        ));
        accepted(decide(
            &p,
            "rsa",
            "a",
            &req("::ffff:10.1.0.1", 19, b"x:eduroam"),
        ));
        for bad in [
            req("192.0.2.1", 19, b"x:eduroam"),
            req("10.1.2.3", 15, b"x:eduroam"),
            req("10.1.2.3", 19, b"x:guest"),
            req("10.1.2.3", 19, b"\xff:eduroam"),
        ] {
            let (reason, _) = rejected(decide(&p, "rsa", "a", &bad));
            assert_eq!(reason, "no_matching_rule");
        }
        let (reason, _) = rejected(decide(&p, "ecdsa", "b", &ok));
        assert_eq!(reason, "no_matching_rule");
        // A request without the attribute never matches a condition on it.
        let (reason, _) = rejected(decide(&p, "rsa", "a", &NO_REQ));
        assert_eq!(reason, "no_matching_rule");
    }

    #[test]
    fn certificate_and_request_fields() {
        let alice = peer("rsa");
        let serial_colons = alice
            .serial
            .to_uppercase()
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(":");
        let text = format!(
            r#"
[authorize]
default = "reject"
[[authorize.rule]]
name = "by-serial"
match = {{ serial = "{serial_colons}" }}
[[authorize.rule]]
name = "by-issuer"
match = {{ issuer_cn = "{}", subject_o = "{}", identity = "host/*" }}
[[authorize.rule]]
name = "by-dn"
match = {{ subject = "*CN=carol@*", issuer = "*Intermediate*" }}
[[authorize.rule]]
name = "nas-port-number"
match = {{ nas_port_type = [15, "Ethernet"], calling_station_id = "02-00-*" }}
"#,
            pki::INTERMEDIATE_CN,
            pki::ORGANIZATION
        );
        let p = policy(&text);
        let rule = |who: &str, id: &str, req: &RequestInfo<'_>| {
            accepted(decide(&p, who, id, req)).rule.unwrap()
        };
        assert_eq!(rule("rsa", "x", &NO_REQ), "by-serial");
        assert_eq!(rule("machine", "host/laptop42", &NO_REQ), "by-issuer");
        assert_eq!(rule("upn", "carol", &NO_REQ), "by-dn");
        let eth = RequestInfo {
            nas_port_type: Some(15),
            calling_station_id: Some(b"02-00-00-00-00-01"),
            ..RequestInfo::default()
        };
        assert_eq!(rule("ecdsa", "bob", &eth), "nas-port-number");
        let (reason, _) = rejected(decide(&p, "ecdsa", "bob", &NO_REQ));
        assert_eq!(reason, "no_matching_rule");
    }

    #[test]
    fn config_errors_name_the_key() {
        let rule = |body: &str| format!("[[authorize.rule]]\nname = \"r\"\n{body}\n");
        let cases: Vec<(String, &str)> = vec![
            (
                rule("reply = { \"Tunnel-Typo\" = 13 }"),
                "authorize.rule[0].reply.Tunnel-Typo: unknown attribute (not in the dictionary)",
            ),
            (
                rule("match = { subjct_cn = \"x\" }"),
                "authorize.rule[0].match.subjct_cn: unknown field",
            ),
            (
                rule("reply = { \"Tunnel-Type\" = \"VLANN\" }"),
                "authorize.rule[0].reply.Tunnel-Type: \"VLANN\" is neither a number nor a VALUE name",
            ),
            (
                rule("reply = { \"Session-Timeout\" = -1 }"),
                "authorize.rule[0].reply.Session-Timeout: -1 is negative",
            ),
            (
                rule("match = { nas_port_type = \"Wifi\" }"),
                "authorize.rule[0].match.nas_port_type: \"Wifi\" is not a NAS-Port-Type VALUE",
            ),
            (
                rule("match = { nas_address = \"10.0.0.0/33\" }"),
                "authorize.rule[0].match.nas_address:",
            ),
            (
                rule("match = { nas_address = \"not-an-ip\" }"),
                "authorize.rule[0].match.nas_address:",
            ),
            (
                rule("match = { subject_cn = [] }"),
                "authorize.rule[0].match.subject_cn: an empty list",
            ),
            (
                rule(&format!(
                    "reply = {{ \"Filter-Id\" = \"{}\" }}",
                    "x".repeat(254)
                )),
                "authorize.rule[0].reply.Filter-Id: the value is 254 octets long",
            ),
            (
                rule(&format!(
                    "reply = {{ \"MS-RAS-Version\" = \"{}\" }}",
                    "x".repeat(248)
                )),
                "authorize.rule[0].reply.MS-RAS-Version: the value is 248 octets long",
            ),
            (
                rule("reply = { \"EAP-Message\" = \"0x00\" }"),
                "authorize.rule[0].reply.EAP-Message: EAP-Message is set by the server",
            ),
            (
                rule("reply = { \"Message-Authenticator\" = \"x\" }"),
                "authorize.rule[0].reply.Message-Authenticator:",
            ),
            (
                rule("reply = { \"State\" = \"x\" }"),
                "authorize.rule[0].reply.State:",
            ),
            (
                rule("reply = { \"MS-MPPE-Send-Key\" = \"x\" }"),
                "authorize.rule[0].reply.MS-MPPE-Send-Key:",
            ),
            (
                rule("reply = { \"MS-MPPE-Encryption-Policy\" = 1 }"),
                "authorize.rule[0].reply.MS-MPPE-Encryption-Policy:",
            ),
            (
                rule("reply = { \"Tunnel-Password\" = \"x\" }"),
                "authorize.rule[0].reply.Tunnel-Password: Tunnel-Password must be encrypted",
            ),
            (
                rule("reply = { \"Framed-IP-Address\" = \"2001:db8::1\" }"),
                "authorize.rule[0].reply.Framed-IP-Address: an IPv4 address is needed",
            ),
            (
                rule("reply = { \"Framed-IPv6-Prefix\" = \"2001:db8::/32\" }"),
                "authorize.rule[0].reply.Framed-IPv6-Prefix: attributes of type",
            ),
            (
                rule("reply = { \"Class\" = \"\" }"),
                "authorize.rule[0].reply.Class: an empty value",
            ),
            (
                rule("reply = { \"Class\" = \"0xabc\" }"),
                "authorize.rule[0].reply.Class: 0xabc: odd number",
            ),
            (
                rule("tag = 32"),
                "authorize.rule[0].tag: 32 is not an RFC 2868 tag",
            ),
            (
                rule("action = \"deny\""),
                "authorize.rule[0].action: \"deny\" is neither",
            ),
            (
                rule("action = \"reject\"\nreply = { \"Class\" = \"x\" }"),
                "authorize.rule[0].reply: a rule with action = \"reject\"",
            ),
            (
                "[[authorize.rule]]\nname = \" \"\n".into(),
                "authorize.rule[0].name: must not be empty",
            ),
            (
                "[[authorize.rule]]\nname = \"a\"\n[[authorize.rule]]\nname = \"a\"\n".into(),
                "authorize.rule[1].name: \"a\" is used by an earlier rule",
            ),
            (
                "[authorize]\ndefault = \"maybe\"\n".into(),
                "authorize.default: \"maybe\" is neither",
            ),
            (
                "[identity]\nmatch_fields = [\"cn\", \"email\"]\n".into(),
                "identity.match_fields[1]: unknown field \"email\"",
            ),
            (
                "[identity]\ntemplates = [\"host/{dns}\"]\n".into(),
                "identity.templates[0]: \"host/{dns}\": unknown placeholder {dns}",
            ),
            (
                "[identity]\ntemplates = [\"host/{san_dns\"]\n".into(),
                "identity.templates[0]: \"host/{san_dns\": '{' without '}'",
            ),
            (
                "[identity]\ntemplates = [\"x}\"]\n".into(),
                "identity.templates[0]: \"x}\": '}' without '{'",
            ),
            (
                "[identity]\ntemplates = [\"fixed\"]\n".into(),
                "identity.templates[0]: \"fixed\" has no placeholder",
            ),
        ];
        for (text, want) in cases {
            let err = build_err(&text);
            assert!(err.starts_with(want), "{text}\n got: {err}\nwant: {want}");
        }
        // Too many reply octets for one Access-Accept.
        let classes: Vec<String> = (0..10)
            .map(|_| format!("\"{}\"", "c".repeat(250)))
            .collect();
        let err = build_err(&rule(&format!(
            "reply = {{ \"Class\" = [{}] }}",
            classes.join(", ")
        )));
        assert!(
            err.starts_with("authorize.rule[0].reply: 2520 octets"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_refused_by_the_shapes() {
        for (text, key) in [
            (
                "[[authorize.rule]]\nname = \"r\"\nactoin = \"reject\"\n",
                "actoin",
            ),
            ("[authorize]\nreply_mesage = true\n", "reply_mesage"),
            ("[identity]\nmatch_field = [\"cn\"]\n", "match_field"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(key), "{err}");
        }
        // A rule without a name.
        assert!(parse("[[authorize.rule]]\naction = \"reject\"\n").is_err());
    }

    #[test]
    fn attribute_names_keep_or_ignore_case() {
        // The config crate keeps the case of TOML keys (it only lowercases environment
        // variables), and dictionary lookups ignore case, so both spellings work.
        let w = parse(VLAN).unwrap();
        let keys: Vec<&str> = w.authorize.rules[0]
            .reply
            .keys()
            .map(String::as_str)
            .collect();
        assert!(keys.contains(&"Tunnel-Type"), "{keys:?}");
        let lower = policy(
            "[[authorize.rule]]\nname = \"r\"\nreply = { \"tunnel-type\" = \"vlan\" }\nmatch = { SUBJECT_CN = \"*\" }\n",
        );
        let g = accepted(decide(&lower, "rsa", "x", &NO_REQ));
        assert_eq!(g.attributes, [attr(64, &[0, 0, 0, 13])]);
    }

    #[test]
    fn example_snippet_parses_and_works() {
        let w = parse(EXAMPLE).unwrap();
        assert_eq!(w.identity.match_fields, ["cn", "san_email", "san_upn"]);
        assert_eq!(w.authorize.default.as_deref(), Some("reject"));
        let p = RulePolicy::build(&w.identity, &w.authorize, dict()).unwrap();
        assert!(p.rule_count() >= 3);
        let g = accepted(decide(&p, "rsa", "alice@certradius.test", &NO_REQ));
        assert_eq!(g.rule.as_deref(), Some("staff"));
        assert!(g.attributes.contains(&attr(64, &[0, 0, 0, 13])));
        assert!(g.attributes.contains(&attr(81, b"100")));
        let g = accepted(decide(
            &p,
            "machine",
            "host/laptop42.certradius.test",
            &NO_REQ,
        ));
        assert_eq!(g.rule.as_deref(), Some("machines"));
        let (reason, _) = rejected(decide(&p, "rsa", "mallory@certradius.test", &NO_REQ));
        assert_eq!(reason, "identity_mismatch");
        assert_eq!(p.reply_message("identity_mismatch"), None);
        let on = policy("[authorize]\nreply_message = true\n");
        assert_eq!(
            on.reply_message("no_matching_rule").as_deref(),
            Some("Access rejected: no_matching_rule")
        );
    }
}
