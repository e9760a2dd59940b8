//! `[identity]` and `[authorize]` with its `[[authorize.rule]]` tables: the shapes only. The
//! rule compiler (`authz`) gives them meaning: field names, patterns, dictionary attributes.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `[identity]`: binding the EAP identity (RFC 3748 §5.1 Identity response) to the certificate.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// Certificate fields the identity may equal (any of): "cn", "san_email", "san_dns",
    /// "san_upn", "san_uri". Empty or `["none"]`: no field comparison.
    pub match_fields: Vec<String>,
    /// Templates such as `"host/{san_dns}"`: the identity may also equal one expansion. Each
    /// placeholder ({cn} {san_email} {san_dns} {san_upn} {san_uri}) stands for any one value of
    /// that field.
    pub templates: Vec<String>,
    /// Compare exactly; by default the comparison ignores case.
    pub case_sensitive: bool,
}

/// `[authorize]` and its `[[authorize.rule]]` tables.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AuthorizeConfig {
    /// "accept" or "reject" when no rule matches. Unset: "accept" when there are no rules (every
    /// verified certificate is accepted), "reject" as soon as there is one (fail closed).
    pub default: Option<String>,
    /// Put the stable reject reason in a Reply-Message of the Access-Reject.
    pub reply_message: bool,
    #[serde(rename = "rule")]
    pub rules: Vec<RuleConfig>,
}

/// One `[[authorize.rule]]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Shown in logs, and in the reject detail.
    pub name: String,
    /// Conditions, all of which must hold: field name -> pattern, or a list of patterns (any of).
    #[serde(default)]
    pub r#match: BTreeMap<String, OneOrList>,
    /// "accept" (default) or "reject".
    #[serde(default)]
    pub action: Option<String>,
    /// Reply attributes by dictionary name; a list sends the attribute once per element.
    #[serde(default)]
    pub reply: BTreeMap<String, OneOrList>,
    /// RFC 2868 tag (0..=31) for the tunnel attributes in `reply`; default 0.
    #[serde(default)]
    pub tag: Option<u8>,
}

/// A TOML string or integer.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Scalar {
    Int(i64),
    Text(String),
}

/// One value or a list of them.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum OneOrList {
    One(Scalar),
    Many(Vec<Scalar>),
}

impl OneOrList {
    pub fn items(&self) -> &[Scalar] {
        match self {
            OneOrList::One(s) => std::slice::from_ref(s),
            OneOrList::Many(v) => v,
        }
    }
}

impl Scalar {
    pub fn text(&self) -> String {
        match self {
            Scalar::Int(i) => i.to_string(),
            Scalar::Text(t) => t.clone(),
        }
    }
}
