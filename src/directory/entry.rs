//! LDAP answers read without panics: a SearchResultEntry (RFC 4511 §4.5.2) taken apart by
//! hand from its BER, because ldap3's `SearchEntry::construct` panics on malformed BER and the
//! answer comes from the network; and Active Directory's binary `objectSid` (MS-DTYP §2.4.2).

use super::client::MAX_GROUPS;

/// Active Directory's binary SID attribute.
pub(super) const OBJECT_SID: &str = "objectSid";

/// A binary SID (MS-DTYP §2.4.2: revision, sub-authority count, 48-bit big-endian identifier
/// authority, then that many 32-bit little-endian sub-authorities) in its string form
/// `S-1-5-21-...`; None when malformed.
pub fn sid_to_string(b: &[u8]) -> Option<String> {
    let (&revision, rest) = b.split_first()?;
    let (&count, rest) = rest.split_first()?;
    let (authority, rest) = rest.split_at_checked(6)?;
    if rest.len() != usize::from(count) * 4 || count > 15 {
        return None;
    }
    let mut auth = [0u8; 8];
    auth.get_mut(2..)?.copy_from_slice(authority);
    let mut out = format!("S-{revision}-{}", u64::from_be_bytes(auth));
    for sub in rest.chunks_exact(4) {
        let v = u32::from_le_bytes(sub.try_into().ok()?);
        out.push_str(&format!("-{v}"));
    }
    Some(out)
}

/// What a SearchResultEntry holds for us.
pub(super) struct Entry {
    pub(super) dn: String,
    pub(super) groups: Vec<String>,
    pub(super) sid: Option<String>,
}

/// The DN and the `group_attr` values of a SearchResultEntry (RFC 4511 §4.5.2), or None when
/// it is malformed. Written here because ldap3's `SearchEntry::construct` panics on malformed
/// BER, and the answer comes from the network. Values that are not UTF-8 are skipped (a group
/// DN is a string, RFC 4514), and at most [`super::client::MAX_GROUPS`] are kept.
pub(super) fn parse_entry(re: ldap3::ResultEntry, group_attr: &str) -> Option<Entry> {
    let mut parts = re.0.match_id(4)?.expect_constructed()?.into_iter();
    let dn = String::from_utf8(parts.next()?.expect_primitive()?).ok()?;
    let mut groups = Vec::new();
    let mut sid = None;
    for attribute in parts.next()?.expect_constructed()? {
        let mut pa = attribute.expect_constructed()?.into_iter();
        let name = pa.next()?.expect_primitive()?;
        let values = pa.next()?.expect_constructed()?;
        if name.eq_ignore_ascii_case(OBJECT_SID.as_bytes()) {
            sid = values
                .into_iter()
                .next()
                .and_then(|v| v.expect_primitive())
                .and_then(|v| sid_to_string(&v));
            continue;
        }
        if !name.eq_ignore_ascii_case(group_attr.as_bytes()) {
            continue;
        }
        for v in values {
            if groups.len() >= MAX_GROUPS {
                break;
            }
            if let Ok(text) = String::from_utf8(v.expect_primitive()?) {
                groups.push(text);
            }
        }
    }
    Some(Entry { dn, groups, sid })
}

/// The first value of `attribute` (with or without the `;binary` option, RFC 4522) in a
/// SearchResultEntry, as bytes: a CRL read from the directory (`directory/crl.rs`).
pub(super) fn first_value(re: ldap3::ResultEntry, attribute: &str) -> Option<Vec<u8>> {
    let mut parts = re.0.match_id(4)?.expect_constructed()?.into_iter();
    let _dn = parts.next()?;
    for a in parts.next()?.expect_constructed()? {
        let mut pa = a.expect_constructed()?.into_iter();
        let name = String::from_utf8(pa.next()?.expect_primitive()?).ok()?;
        let plain = name
            .get(..name.len().saturating_sub(";binary".len()))
            .filter(|_| name.to_ascii_lowercase().ends_with(";binary"))
            .unwrap_or(&name);
        if plain.eq_ignore_ascii_case(attribute) {
            return pa
                .next()?
                .expect_constructed()?
                .into_iter()
                .next()?
                .expect_primitive();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MS-DTYP §2.4.2.2: S-1-5-21-3623811015-3361044348-30300820-1013 in binary.
    #[test]
    fn object_sid_decodes() {
        let mut b = vec![1u8, 5, 0, 0, 0, 0, 0, 5];
        for sub in [21u32, 3623811015, 3361044348, 30300820, 1013] {
            b.extend(sub.to_le_bytes());
        }
        assert_eq!(
            sid_to_string(&b).as_deref(),
            Some("S-1-5-21-3623811015-3361044348-30300820-1013")
        );
        assert_eq!(sid_to_string(&b[..b.len() - 1]), None, "truncated");
        assert_eq!(
            sid_to_string(&[1, 0, 0, 0, 0, 0, 0, 1]).as_deref(),
            Some("S-1-1")
        );
        assert_eq!(sid_to_string(&[]), None);
    }
}
