//! Commented-out `[[authorize.rule]]` drafts for the simplest unlang VLAN assignments:
//! `if (&TLS-Client-Cert-Common-Name == "x")` or `=~ /^prefix/` on one certificate field,
//! whose body is only `update reply { Tunnel-...  := ... }` (RFC 3580 §3.31 VLAN attributes).
//! The `if` stays reported as untranslated: the operator confirms a draft by uncommenting it.

use std::fmt::Write;
use std::path::Path;

use super::draft::{self, Draft};
use super::raddb_parser::{Item, Section};

/// FreeRADIUS certificate attributes and the rule fields they correspond to.
fn field(attr: &str) -> Option<&'static str> {
    let a = attr.trim_start_matches('&');
    let a = a.strip_prefix("request:").unwrap_or(a);
    match a {
        "TLS-Client-Cert-Common-Name" => Some("subject_cn"),
        "TLS-Client-Cert-Subject-Alt-Name-Email" => Some("san_email"),
        "TLS-Client-Cert-Subject-Alt-Name-Dns" => Some("san_dns"),
        "TLS-Client-Cert-Subject-Alt-Name-Upn" => Some("san_upn"),
        "TLS-Client-Cert-Issuer" => Some("issuer"),
        _ => None,
    }
}

/// `(&Attr == "v")` → (field, "v"); `(&Attr =~ /^lit/)` → (field, "lit*"): only literal
/// prefixes, so the pattern means what the regex meant.
fn condition(cond: &str) -> Option<(&'static str, String)> {
    let inner = cond.strip_prefix('(')?.strip_suffix(')')?.trim();
    let mut parts = inner.splitn(3, ' ');
    let (attr, op, value) = (parts.next()?, parts.next()?, parts.next()?.trim());
    let f = field(attr)?;
    match op {
        "==" => {
            let v = value.strip_prefix('"')?.strip_suffix('"')?;
            (!v.contains(['*', '?', '"', '\\'])).then(|| (f, v.to_string()))
        }
        "=~" => {
            let re = value.strip_prefix("/^")?.strip_suffix('/')?;
            let lit = re.replace("\\/", "/");
            let plain = lit
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '@' | ' '));
            (plain && !lit.is_empty()).then(|| (f, format!("{lit}*")))
        }
        _ => None,
    }
}

/// The reply attributes of a body that is only `update reply { A := v }`.
fn reply(body: &Section) -> Option<Vec<(String, String)>> {
    let [Item::Section(update)] = body.items.as_slice() else {
        return None;
    };
    if update.name != "update" || update.arg.as_deref() != Some("reply") {
        return None;
    }
    let mut out = Vec::new();
    for item in &update.items {
        let Item::Pair(p) = item else { return None };
        let name = p.name.trim_start_matches('&');
        let name = name.strip_prefix("reply:").unwrap_or(name);
        if !name.starts_with("Tunnel-") || !matches!(p.op.as_str(), ":=" | "=") {
            return None;
        }
        out.push((name.to_string(), p.value.clone()));
    }
    (!out.is_empty()).then_some(out)
}

/// Offers a draft for `if (...) { update reply { ... } }` when both parts are that simple.
pub fn offer(s: &Section, within: &str, raddb: &Path, d: &mut Draft) {
    let Some((f, pattern)) = s.arg.as_deref().and_then(condition) else {
        return;
    };
    let Some(attrs) = reply(s) else { return };
    let at = draft::show(&s.loc, raddb);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# DRAFT from {at} ({within}: `if {}`): check it, then uncomment",
        s.arg.as_deref().unwrap_or_default()
    );
    let _ = writeln!(
        o,
        "# [[authorize.rule]]\n# name = {}",
        draft::string(&format!("imported {at}"))
    );
    let _ = writeln!(
        o,
        "# [authorize.rule.match]\n# {f} = {}",
        draft::string(&pattern)
    );
    let _ = writeln!(o, "# [authorize.rule.reply]");
    for (k, v) in attrs {
        let _ = writeln!(o, "# {k} = {}", draft::string(&v));
    }
    d.rule_drafts.push(o);
}
