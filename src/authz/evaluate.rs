//! Evaluating the compiled rules for one authorization (after the chain verified): the identity
//! binding first (reject `identity_mismatch`), then the rules in order; the first rule whose
//! conditions all hold decides (`rule_reject`, or accept with its reply attributes, RFC 3580
//! VLANs among them); when none matches, the default applies (`no_matching_rule`). A MAB
//! request (no certificate) is matched only against the rules that name `method = "mab"`.

use super::rules::{Action, Condition, Field, Rule, RulePolicy};
use super::{Decision, Grant, Method, Policy, RequestInfo};
use crate::reason::ReasonCode;
use crate::tls::VerifiedPeer;
use crate::x509::facts::CertFacts;

/// Serial numbers compare as hex digits without separators or leading zeros, so
/// `00:AB:CD`, `abcd` and openssl's `ABCD` are the same serial.
pub(crate) fn normalize_serial(s: &str) -> String {
    let hex: String = s
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect();
    let trimmed = hex.trim_start_matches('0');
    if trimmed.is_empty() && !hex.is_empty() {
        "0".into()
    } else {
        trimmed.into()
    }
}

/// What one authorization looks at.
pub(crate) struct Facts<'a> {
    pub(crate) cert: &'a CertFacts,
    pub(crate) serial: String,
    /// None for a MAB request: no certificate.
    pub(crate) peer: Option<&'a VerifiedPeer>,
    pub(crate) identity: Option<&'a str>,
    pub(crate) request: &'a RequestInfo<'a>,
}

pub(crate) fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

pub(crate) fn utf8(b: Option<&[u8]>) -> Option<&str> {
    b.and_then(|b| std::str::from_utf8(b).ok())
}

impl Facts<'_> {
    pub(crate) fn text_values(&self, field: Field) -> Vec<&str> {
        match field {
            Field::SubjectCn => strs(&self.cert.subject_cn),
            Field::SubjectO => strs(&self.cert.subject_o),
            Field::SubjectOu => strs(&self.cert.subject_ou),
            Field::Subject => self.peer.map(|p| p.subject.as_str()).into_iter().collect(),
            Field::IssuerCn => strs(&self.cert.issuer_cn),
            Field::Issuer => self.peer.map(|p| p.issuer.as_str()).into_iter().collect(),
            Field::SanEmail => strs(&self.cert.san_email),
            Field::SanDns => strs(&self.cert.san_dns),
            Field::SanUpn => strs(&self.cert.san_upn),
            Field::SanUri => strs(&self.cert.san_uri),
            Field::PolicyOid => strs(&self.cert.policy_oids),
            Field::Serial => self
                .peer
                .map(|_| self.serial.as_str())
                .into_iter()
                .collect(),
            Field::CalledStationId => utf8(self.request.called_station_id).into_iter().collect(),
            Field::CallingStationId => utf8(self.request.calling_station_id).into_iter().collect(),
            Field::Identity => self.identity.into_iter().collect(),
            Field::DirectoryGroup => self.request.directory_groups.map(strs).unwrap_or_default(),
            Field::NasAddress | Field::NasPortType | Field::Method => Vec::new(),
        }
    }

    pub(crate) fn holds(&self, condition: &Condition) -> bool {
        match condition {
            Condition::Text(field, globs) => self
                .text_values(*field)
                .iter()
                .any(|v| globs.iter().any(|g| g.matches(v))),
            Condition::Nas(cidrs) => self
                .request
                .nas
                .is_some_and(|ip| cidrs.iter().any(|c| c.contains(ip))),
            Condition::PortType(types) => self
                .request
                .nas_port_type
                .is_some_and(|t| types.contains(&t)),
            Condition::Method(methods) => methods.contains(&self.request.method),
            Condition::DirectoryGroup(patterns) => self
                .request
                .directory_groups
                .is_some_and(|groups| groups.iter().any(|g| patterns.iter().any(|p| p.matches(g)))),
        }
    }
}

/// The decision of the first rule whose conditions all hold.
fn first_match<'r>(
    rules: impl IntoIterator<Item = &'r Rule>,
    facts: &Facts<'_>,
) -> Option<Decision> {
    let rule = rules
        .into_iter()
        .find(|r| r.conditions.iter().all(|c| facts.holds(c)))?;
    Some(match &rule.action {
        Action::Reject => Decision::Reject {
            reason: ReasonCode::RuleReject,
            detail: format!("rule {:?}", rule.name),
        },
        Action::Accept(attributes) => Decision::Accept(Grant {
            rule: Some(rule.name.clone()),
            attributes: attributes.clone(),
        }),
    })
}

impl Policy for RulePolicy {
    /// MAB: no certificate and no identity binding; only the rules that name `method = "mab"`
    /// are considered, so a rule written for EAP-TLS never grants a MAC anything.
    fn authorize_mab(&self, request: &RequestInfo<'_>) -> Option<Decision> {
        let none = CertFacts::default();
        let facts = Facts {
            cert: &none,
            serial: String::new(),
            peer: None,
            identity: utf8(request.user_name),
            request,
        };
        first_match(self.rules.iter().filter(|r| r.names(Method::Mab)), &facts)
    }

    fn reject_message(&self, reason: &str) -> Option<String> {
        self.reply_message(reason)
    }

    fn authorize(
        &self,
        identity: &[u8],
        peer: &VerifiedPeer,
        request: &RequestInfo<'_>,
    ) -> Decision {
        // The leaf was parsed once when the peer was verified; its fields are read, not parsed.
        let none = CertFacts::default();
        let cert = if self.needs_certificate {
            match peer.leaf().rule_facts() {
                Ok(c) => c,
                Err(e) => {
                    return Decision::Reject {
                        reason: ReasonCode::CertUnparsable,
                        detail: e.to_string(),
                    };
                }
            }
        } else {
            &none
        };
        let facts = Facts {
            cert,
            serial: normalize_serial(&peer.serial),
            peer: Some(peer),
            identity: std::str::from_utf8(identity).ok(),
            request,
        };
        if let Some(binding) = &self.binding
            && let Err(detail) = binding.check(&facts)
        {
            return Decision::Reject {
                reason: ReasonCode::IdentityMismatch,
                detail,
            };
        }
        if let Some(decision) = first_match(&self.rules, &facts) {
            return decision;
        }
        if self.default_accept {
            Decision::Accept(Grant {
                rule: Some("default".into()),
                attributes: Vec::new(),
            })
        } else {
            Decision::Reject {
                reason: ReasonCode::NoMatchingRule,
                detail: format!("none of {} rule(s) matched", self.rules.len()),
            }
        }
    }
}
