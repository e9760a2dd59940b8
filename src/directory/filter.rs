//! Search filters from certificate facts (RFC 4515) and DN comparison (RFC 4514).
//!
//! Every value taken from a certificate is escaped per RFC 4515 §3 before it enters a filter:
//! a certificate is signed by a CA but its fields are chosen by whoever requested it, so a CN
//! of `*)(uid=*` must match nothing but an entry whose value is literally that text.

/// The most values one multi-valued placeholder expands to (more: the first ones, logged).
pub const MAX_VALUES: usize = 16;

/// The certificate facts a `user_filter` placeholder may name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterFacts {
    /// The EAP identity (`{identity}`).
    pub identity: Option<String>,
    pub subject_cn: Vec<String>,
    pub san_email: Vec<String>,
    pub san_upn: Vec<String>,
    pub san_dns: Vec<String>,
    /// `S-1-5-...`, from the SID extension or the SAN URI.
    pub sid: Option<String>,
}

impl FilterFacts {
    fn values(&self, name: &str) -> Vec<&str> {
        match name {
            "identity" => self.identity.iter().map(String::as_str).collect(),
            "subject_cn" => self.subject_cn.iter().map(String::as_str).collect(),
            "san_email" => self.san_email.iter().map(String::as_str).collect(),
            "san_upn" => self.san_upn.iter().map(String::as_str).collect(),
            "san_dns" => self.san_dns.iter().map(String::as_str).collect(),
            "sid" => self.sid.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        }
    }
}

/// Why no filter was built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterError {
    /// The placeholder's field is absent from the certificate: `directory_user_not_found`,
    /// and no search is sent.
    Missing(&'static str),
}

/// A built filter, and whether values were left out beyond [`MAX_VALUES`] (to log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    pub filter: String,
    pub truncated: bool,
}

/// RFC 4515 §3: `*`, `(`, `)`, `\` and NUL are written `\2a`, `\28`, `\29`, `\5c`, `\00`.
/// Other control characters are escaped too (valid, and keeps filters printable in logs).
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '*' | '(' | ')' | '\\' | '\0' => out.push_str(&format!("\\{:02x}", c as u32)),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                out.push_str(&format!("\\{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// Fills `template`'s placeholders from `facts`. A placeholder with several values turns the
/// innermost parenthesized item around it into an OR over them (`(mail={san_email})` with two
/// emails → `(|(mail=a)(mail=b))`); other placeholders in the same item take their first value.
pub fn build(template: &str, facts: &FilterFacts) -> Result<Built, FilterError> {
    let mut out = String::with_capacity(template.len() + 64);
    let mut truncated = false;
    let mut rest = template;
    // Copy structure up to each innermost item `(...)` holding a placeholder, expand it.
    while let Some(brace) = rest.find('{') {
        // The innermost item: from the last '(' before the brace to the next ')' after it.
        let open = rest[..brace].rfind('(').unwrap_or(0);
        let close = rest[brace..]
            .find(')')
            .map_or(rest.len(), |i| brace + i + 1);
        out.push_str(&rest[..open]);
        let item = &rest[open..close];
        let (expanded, cut) = expand_item(item, facts)?;
        truncated |= cut;
        out.push_str(&expanded);
        rest = &rest[close..];
    }
    out.push_str(rest);
    Ok(Built {
        filter: out,
        truncated,
    })
}

/// The placeholder names in `item`, in order.
fn placeholders(item: &str) -> Vec<&'static str> {
    let mut names = Vec::new();
    let mut rest = item;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        if let Some(known) = crate::config::directory::PLACEHOLDERS
            .iter()
            .find(|p| **p == &after[..close])
        {
            names.push(*known);
        }
        rest = &after[close + 1..];
    }
    names
}

fn fill(item: &str, facts: &FilterFacts, multi: Option<(&str, &str)>) -> String {
    let mut s = item.to_string();
    for name in placeholders(item) {
        let value = match multi {
            Some((m, v)) if m == name => v.to_string(),
            _ => facts
                .values(name)
                .first()
                .copied()
                .unwrap_or("")
                .to_string(),
        };
        s = s.replace(&format!("{{{name}}}"), &escape(&value));
    }
    s
}

fn expand_item(item: &str, facts: &FilterFacts) -> Result<(String, bool), FilterError> {
    let names = placeholders(item);
    for name in &names {
        if facts.values(name).is_empty() {
            return Err(FilterError::Missing(name));
        }
    }
    let Some(multi) = names.iter().find(|n| facts.values(n).len() > 1) else {
        return Ok((fill(item, facts, None), false));
    };
    let values = facts.values(multi);
    let truncated = values.len() > MAX_VALUES;
    let mut out = String::from("(|");
    for v in values.iter().take(MAX_VALUES) {
        out.push_str(&fill(item, facts, Some((multi, v))));
    }
    out.push(')');
    Ok((out, truncated))
}

/// A DN in a comparable form (RFC 4514): lowercase, no spaces around `,`, `+` and `=`.
/// Escaped separators (`\,`) are kept as they are.
pub fn normalize_dn(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    let mut chars = dn.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push('\\');
                if let Some(n) = chars.next() {
                    out.extend(n.to_lowercase());
                }
            }
            ',' | '+' | '=' => {
                while out.ends_with(' ') {
                    out.pop();
                }
                out.push(c);
                while chars.peek() == Some(&' ') {
                    chars.next();
                }
            }
            c => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// The rule match `directory_group`: without a wildcard the pattern is a DN (compared with
/// [`normalize_dn`]); with one, text ignoring case.
pub fn group_matches(pattern: &str, group: &str) -> bool {
    if pattern.contains('*') || pattern.contains('?') {
        crate::authz::glob::Glob::new(pattern).matches(group)
    } else {
        normalize_dn(pattern) == normalize_dn(group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> FilterFacts {
        FilterFacts {
            identity: Some("alice@example.org".into()),
            subject_cn: vec!["alice".into()],
            ..FilterFacts::default()
        }
    }

    #[test]
    fn escape_rfc4515() {
        assert_eq!(escape("*)(uid=*"), "\\2a\\29\\28uid=\\2a");
        assert_eq!(escape("a\\b\0c"), "a\\5cb\\00c");
        assert_eq!(escape("Lucía"), "Lucía");
        assert_eq!(escape("x\ny"), "x\\0ay");
    }

    #[test]
    fn injection_stays_a_value() {
        let f = FilterFacts {
            subject_cn: vec!["*)(uid=*".into()],
            ..FilterFacts::default()
        };
        let b = build("(&(objectClass=person)(uid={subject_cn}))", &f).unwrap();
        assert_eq!(
            b.filter,
            "(&(objectClass=person)(uid=\\2a\\29\\28uid=\\2a))"
        );
    }

    #[test]
    fn placeholders_fill() {
        let b = build("(|(uid={subject_cn})(mail={identity}))", &facts()).unwrap();
        assert_eq!(b.filter, "(|(uid=alice)(mail=alice@example.org))");
        assert!(!b.truncated);
    }

    #[test]
    fn absent_field_is_missing() {
        assert_eq!(
            build("(userPrincipalName={san_upn})", &facts()),
            Err(FilterError::Missing("san_upn"))
        );
    }

    #[test]
    fn multi_values_or_and_cap() {
        let mut f = facts();
        f.san_email = vec!["a@x".into(), "b@x".into()];
        let b = build("(&(o=x)(mail={san_email}))", &f).unwrap();
        assert_eq!(b.filter, "(&(o=x)(|(mail=a@x)(mail=b@x)))");
        f.san_email = (0..20).map(|i| format!("{i}@x")).collect();
        let b = build("(mail={san_email})", &f).unwrap();
        assert!(b.truncated);
        assert_eq!(b.filter.matches("(mail=").count(), MAX_VALUES);
    }

    #[test]
    fn dns_compare() {
        assert!(group_matches(
            "CN=wifi-staff,OU=Groups,DC=example,DC=org",
            "cn=wifi-staff, ou=groups, dc=example, dc=org"
        ));
        assert!(!group_matches(
            "CN=wifi-staff,OU=Groups,DC=example,DC=org",
            "cn=wifi-staff2,ou=groups,dc=example,dc=org"
        ));
        assert!(group_matches("cn=wifi-*", "CN=Wifi-Staff,OU=Groups"));
        assert_eq!(normalize_dn("CN=a\\, b , O = X"), "cn=a\\, b,o=x");
    }
}
