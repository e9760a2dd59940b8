//! Identity binding (`[identity]`): RFC 5216 §5.2 (and RFC 9190 §5.2) — the EAP-Response/Identity
//! is not protected and need not name the certificate, so a server that wants them bound compares
//! the identity with the certificate's subject or subjectAltName (RFC 5280 §4.2.1.6) itself:
//! listed fields, or templates such as `host/{san_dns}`.

use std::fmt::Write as _;

use super::evaluate::Facts;
use super::rules::{Field, IDENTITY_FIELDS, PolicyError};
use crate::config::IdentityConfig;

/// Characters of the EAP identity quoted in a reject detail (it comes from the peer).
pub(crate) const DETAIL_IDENTITY_CHARS: usize = 128;

#[derive(Debug, Clone)]
pub(crate) enum Segment {
    Literal(String),
    Field(Field),
}

#[derive(Debug, Clone)]
pub(crate) struct Template {
    pub(crate) text: String,
    pub(crate) segments: Vec<Segment>,
}

#[derive(Debug, Clone)]
pub(crate) struct Binding {
    pub(crate) fields: Vec<Field>,
    pub(crate) templates: Vec<Template>,
    pub(crate) case_sensitive: bool,
}

pub(crate) fn build_binding(cfg: &IdentityConfig) -> Result<Option<Binding>, PolicyError> {
    let none = cfg.match_fields.len() == 1
        && cfg
            .match_fields
            .first()
            .is_some_and(|f| f.eq_ignore_ascii_case("none"));
    let mut fields = Vec::new();
    if !none {
        for (i, name) in cfg.match_fields.iter().enumerate() {
            let field = lookup_identity_field(name).ok_or_else(|| {
                format!(
                    "identity.match_fields[{i}]: unknown field {name:?} (use {})",
                    identity_field_list()
                )
            })?;
            if !fields.contains(&field) {
                fields.push(field);
            }
        }
    }
    let mut templates = Vec::new();
    for (i, text) in cfg.templates.iter().enumerate() {
        let segments = parse_template(text, cfg.case_sensitive)
            .map_err(|m| format!("identity.templates[{i}]: {m}"))?;
        templates.push(Template {
            text: text.clone(),
            segments,
        });
    }
    if fields.is_empty() && templates.is_empty() {
        return Ok(None);
    }
    Ok(Some(Binding {
        fields,
        templates,
        case_sensitive: cfg.case_sensitive,
    }))
}

pub(crate) fn lookup_identity_field(name: &str) -> Option<Field> {
    IDENTITY_FIELDS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.trim()))
        .map(|(_, f)| *f)
}

pub(crate) fn identity_field_list() -> String {
    IDENTITY_FIELDS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn parse_template(
    text: &str,
    case_sensitive: bool,
) -> Result<Vec<Segment>, PolicyError> {
    let fold = |s: &str| {
        if case_sensitive {
            s.to_string()
        } else {
            s.to_lowercase()
        }
    };
    let mut segments = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find(['{', '}']) {
            None => {
                segments.push(Segment::Literal(fold(rest)));
                rest = "";
            }
            Some(pos) => {
                let (lit, tail) = rest.split_at(pos);
                if !lit.is_empty() {
                    segments.push(Segment::Literal(fold(lit)));
                }
                let tail = tail
                    .strip_prefix('{')
                    .ok_or_else(|| format!("{text:?}: '}}' without '{{'"))?;
                let (name, after) = tail
                    .split_once('}')
                    .ok_or_else(|| format!("{text:?}: '{{' without '}}'"))?;
                let field = lookup_identity_field(name).ok_or_else(|| {
                    format!(
                        "{text:?}: unknown placeholder {{{name}}} (use {})",
                        identity_field_list()
                    )
                })?;
                segments.push(Segment::Field(field));
                rest = after;
            }
        }
    }
    if !segments.iter().any(|s| matches!(s, Segment::Field(_))) {
        return Err(format!(
            "{text:?} has no placeholder, so it would not bind the identity to the certificate"
        )
        .into());
    }
    Ok(segments)
}

pub(crate) fn identity_field_name(field: Field) -> &'static str {
    IDENTITY_FIELDS
        .iter()
        .find(|(_, f)| *f == field)
        .map_or("?", |(n, _)| n)
}

impl Binding {
    pub(crate) fn fold(&self, s: &str) -> String {
        if self.case_sensitive {
            s.to_string()
        } else {
            s.to_lowercase()
        }
    }

    pub(crate) fn check(&self, facts: &Facts<'_>) -> Result<(), String> {
        let Some(identity) = facts.identity.filter(|i| !i.is_empty()) else {
            return Err("the EAP identity is empty or not UTF-8".into());
        };
        let id = self.fold(identity);
        let field_match = self
            .fields
            .iter()
            .any(|f| facts.text_values(*f).iter().any(|v| self.fold(v) == id));
        let template_match = self
            .templates
            .iter()
            .any(|t| self.template_matches(&t.segments, &id, facts));
        if field_match || template_match {
            return Ok(());
        }
        let shown: String = identity.chars().take(DETAIL_IDENTITY_CHARS).collect();
        let mut detail = format!("EAP identity {shown:?} equals none of");
        for f in &self.fields {
            let name = identity_field_name(*f);
            let _ = write!(detail, " {name}={:?}", facts.text_values(*f));
        }
        for t in &self.templates {
            let _ = write!(detail, " template {:?}", t.text);
        }
        Err(detail)
    }

    /// Whether `rest` is exactly what the segments expand to, for some choice of one value per
    /// placeholder.
    pub(crate) fn template_matches(
        &self,
        segments: &[Segment],
        rest: &str,
        facts: &Facts<'_>,
    ) -> bool {
        match segments.split_first() {
            None => rest.is_empty(),
            Some((Segment::Literal(lit), tail)) => rest
                .strip_prefix(lit.as_str())
                .is_some_and(|r| self.template_matches(tail, r, facts)),
            Some((Segment::Field(f), tail)) => facts.text_values(*f).iter().any(|v| {
                let v = self.fold(v);
                !v.is_empty()
                    && rest
                        .strip_prefix(v.as_str())
                        .is_some_and(|r| self.template_matches(tail, r, facts))
            }),
        }
    }
}
