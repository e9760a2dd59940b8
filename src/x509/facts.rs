//! The client's end-entity certificate, parsed once per authentication ([`Leaf`]), and what every
//! later step reads from it: the allowed-issuer, key-strength and key-usage checks
//! (`x509::checks`), the rules (subject and issuer DN attributes, RFC 5280 §4.1.2.4/§4.1.2.6,
//! BMPString decoded too; subjectAltName rfc822Name, dNSName, URI and the Microsoft UPN otherName,
//! §4.2.1.6, type-id 1.3.6.1.4.1.311.20.2.3 with a `[0] EXPLICIT` UTF8String; certificate policy
//! OIDs, §4.2.1.4; the account SID of Microsoft's strong certificate mapping, KB5014754: the
//! extension 1.3.6.1.4.1.311.25.2 or the SAN URI `tag:microsoft.com,2022-09-14:sid:S-1-...`),
//! the OCSP request (issuer name and serial, RFC 6960 §4.1.1; responder URLs
//! from Authority Information Access, RFC 5280 §4.2.2.1) and the live-session record a
//! Disconnect is sent for.
//!
//! Parsing a certificate is the one X.509 cost paid per authentication outside rustls, so it is
//! paid once: every field is read here, into owned values, and the parsed certificate is dropped.
//! Only the four extensions read here are decoded (keyUsage, subjectAltName, certificatePolicies,
//! authorityInfoAccess); the others stay raw bytes.

use x509_parser::asn1_rs::{Any, Class, FromDer, Tag};
use x509_parser::der_parser::oid::Oid;
use x509_parser::error::X509Error;
use x509_parser::extensions::{AuthorityInfoAccess, KeyUsage, SubjectAlternativeName};
use x509_parser::oid_registry::{
    OID_PKIX_AUTHORITY_INFO_ACCESS, OID_X509_EXT_CERTIFICATE_POLICIES, OID_X509_EXT_KEY_USAGE,
    OID_X509_EXT_SUBJECT_ALT_NAME,
};
use x509_parser::prelude::{GeneralName, X509Certificate, X509Name};
use x509_parser::public_key::PublicKey;

/// Why the fields of a certificate could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FactsError {
    #[error("leaf certificate does not parse: {0}")]
    Parse(String),
    /// Also more than one subjectAltName extension (RFC 5280 §4.2).
    #[error("subjectAltName: {0}")]
    SubjectAltName(String),
    #[error("subjectAltName UPN otherName: {0}")]
    Upn(String),
}

/// Microsoft UPN otherName type-id (szOID_NT_PRINCIPAL_NAME), 1.3.6.1.4.1.311.20.2.3. A constant
/// OID, so comparing makes no string per name.
const UPN: x509_parser::der_parser::oid::Oid<'static> =
    x509_parser::der_parser::oid!(1.3.6.1.4.1.311.20.2.3);

/// The certificate fields rules look at.
#[derive(Debug, Default, Clone)]
pub(crate) struct CertFacts {
    pub(crate) subject_cn: Vec<String>,
    pub(crate) subject_o: Vec<String>,
    pub(crate) subject_ou: Vec<String>,
    pub(crate) issuer_cn: Vec<String>,
    pub(crate) san_email: Vec<String>,
    pub(crate) san_dns: Vec<String>,
    pub(crate) san_upn: Vec<String>,
    pub(crate) san_uri: Vec<String>,
    pub(crate) policy_oids: Vec<String>,
    /// The account SID (`S-1-5-21-...`) the certificate names (KB5014754), if any.
    pub(crate) sid: Option<String>,
}

/// szOID_NTDS_CA_SECURITY_EXT, 1.3.6.1.4.1.311.25.2: the SID extension AD CS puts in
/// certificates (KB5014754). Compared with every extension's OID, so a constant.
const SID_EXTENSION: x509_parser::der_parser::oid::Oid<'static> =
    x509_parser::der_parser::oid!(1.3.6.1.4.1.311.25.2);
/// The otherName type-id inside it (szOID_NTDS_OBJECTSID).
pub(crate) const SID_OTHERNAME_OID: &str = "1.3.6.1.4.1.311.25.2.1";
/// The SAN URI prefix Intune puts in SCEP/PKCS certificates for the same purpose.
pub(crate) const SID_URI_PREFIX: &str = "tag:microsoft.com,2022-09-14:sid:";

/// Whether `s` is a SID in its string form (`S-1-` then decimal numbers separated by `-`).
pub(crate) fn is_sid(s: &str) -> bool {
    s.strip_prefix("S-1-").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .split('-')
                .all(|n| !n.is_empty() && n.len() <= 20 && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// The SID in the KB5014754 extension: GeneralNames (a SEQUENCE) holding an otherName
/// (`[0]` constructed: type-id OID, `[0] EXPLICIT OCTET STRING` with the SID as ASCII). A value
/// that does not have this shape names no SID.
fn sid_from_extension(value: &[u8]) -> Option<String> {
    let (_, names) = Any::from_der(value).ok()?;
    let mut rest = names.data;
    while !rest.is_empty() {
        let (next, name) = Any::from_der(rest).ok()?;
        rest = next;
        if name.class() != Class::ContextSpecific || name.tag() != Tag(0) {
            continue;
        }
        let (after_oid, oid) = Any::from_der(name.data).ok()?;
        let oid = x509_parser::der_parser::oid::Oid::new(oid.data.into());
        if oid.to_id_string() != SID_OTHERNAME_OID {
            continue;
        }
        let (_, explicit) = Any::from_der(after_oid).ok()?;
        let (_, inner) = Any::from_der(explicit.data).ok()?;
        let text = std::str::from_utf8(inner.data).ok()?;
        if is_sid(text) {
            return Some(text.to_string());
        }
    }
    None
}

/// The subject public key, as far as the key-strength check needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeySize {
    Rsa(usize),
    Ec(usize),
    /// Another algorithm, or a key x509-parser cannot decode: no strength rule applies.
    Other,
}

/// The end-entity certificate of a client, parsed once ([`Leaf::parse`]) into everything later
/// steps read. Holding one proves nothing about verification: [`crate::tls::VerifiedPeer`] does.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// The subject DN as x509-parser prints it (RFC 4514 order reversed, as `openssl` shows it).
    pub subject: String,
    /// The issuer DN, printed the same way.
    pub issuer: String,
    /// Serial number in lowercase hex, as operators compare it with `openssl x509 -serial`.
    pub serial_hex: String,
    /// Content octets of the serial number INTEGER (RFC 6960 §4.1.1 CertID.serialNumber).
    pub(crate) serial: Vec<u8>,
    /// The DER of the issuer Name (compared with an issuer certificate's subject, and hashed
    /// for the OCSP CertID).
    pub(crate) issuer_raw: Vec<u8>,
    /// The first issuer CN as a plain string ("" if none), what `tls.allowed_issuers` may name.
    pub(crate) issuer_cn_first: String,
    /// notAfter, seconds since the Unix epoch.
    pub(crate) not_after: i64,
    pub(crate) key: KeySize,
    /// keyUsage (RFC 5280 §4.2.1.3): `Ok(None)` absent, `Ok(Some(digitalSignature))` present,
    /// `Err` malformed.
    pub(crate) key_usage: Result<Option<bool>, String>,
    /// Fields for the rules; an error only matters to rules that read the certificate.
    pub(crate) rule_facts: Result<CertFacts, FactsError>,
    /// RFC 5280 §4.2.2.1: id-ad-ocsp uniformResourceIdentifier locations, in certificate order.
    pub(crate) ocsp_urls: Vec<String>,
}

impl Leaf {
    /// Parses the certificate and reads every field later steps use.
    pub fn parse(der: &[u8]) -> Result<Self, FactsError> {
        let (_, cert) =
            super::parse_certificate_shallow(der).map_err(|e| FactsError::Parse(e.to_string()))?;
        let serial_hex = crate::hex::lower(cert.raw_serial());
        let key = match cert.public_key().parsed() {
            Ok(PublicKey::RSA(rsa)) => KeySize::Rsa(rsa.key_size()),
            Ok(PublicKey::EC(ec)) => KeySize::Ec(ec.key_size()),
            _ => KeySize::Other,
        };
        let key_usage = unique_extension(&cert, &OID_X509_EXT_KEY_USAGE, |v| {
            KeyUsage::from_der(v)
                .ok()
                .map(|(_, ku)| ku.digital_signature())
        })
        .map_err(|e| e.to_string());
        Ok(Leaf {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            serial_hex,
            serial: cert.raw_serial().to_vec(),
            issuer_raw: cert.issuer().as_raw().to_vec(),
            issuer_cn_first: cert
                .issuer()
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
                .unwrap_or("")
                .to_string(),
            not_after: cert.validity().not_after.timestamp(),
            key,
            key_usage,
            rule_facts: rule_facts(&cert),
            ocsp_urls: ocsp_urls(&cert),
        })
    }

    /// The fields rules look at (an error for a certificate whose extensions cannot be read).
    pub(crate) fn rule_facts(&self) -> Result<&CertFacts, &FactsError> {
        self.rule_facts.as_ref()
    }

    /// The OCSP responder URLs of the Authority Information Access extension.
    pub fn ocsp_urls(&self) -> &[String] {
        &self.ocsp_urls
    }
}

fn rule_facts(cert: &X509Certificate<'_>) -> Result<CertFacts, FactsError> {
    let mut facts = CertFacts {
        subject_cn: dn_values(cert.subject(), Dn::Cn),
        subject_o: dn_values(cert.subject(), Dn::O),
        subject_ou: dn_values(cert.subject(), Dn::Ou),
        issuer_cn: dn_values(cert.issuer(), Dn::Cn),
        ..CertFacts::default()
    };
    read_extensions(cert, &mut facts)?;
    Ok(facts)
}

/// RFC 5280 §4.2.2.1: the id-ad-ocsp access descriptions' URIs.
fn ocsp_urls(cert: &X509Certificate<'_>) -> Vec<String> {
    let ad_ocsp = x509_parser::oid_registry::OID_PKIX_ACCESS_DESCRIPTOR_OCSP;
    cert.extensions()
        .iter()
        .filter(|ext| ext.oid == OID_PKIX_AUTHORITY_INFO_ACCESS)
        .filter_map(|ext| AuthorityInfoAccess::from_der(ext.value).ok())
        .flat_map(|(_, aia)| aia.accessdescs)
        .filter(|ad| ad.access_method == ad_ocsp)
        .filter_map(|ad| match ad.access_location {
            GeneralName::URI(uri) => Some(uri.to_owned()),
            _ => None,
        })
        .collect()
}

fn read_extensions(cert: &X509Certificate<'_>, facts: &mut CertFacts) -> Result<(), FactsError> {
    // More than one subjectAltName extension is invalid (RFC 5280 §4.2); refuse rather than
    // pick one.
    let san = unique_extension(cert, &OID_X509_EXT_SUBJECT_ALT_NAME, |v| {
        SubjectAlternativeName::from_der(v).ok().map(|(_, san)| san)
    })
    .map_err(|e| FactsError::SubjectAltName(e.to_string()))?;
    for name in san.iter().flat_map(|s| s.general_names.iter()) {
        match name {
            GeneralName::RFC822Name(v) => facts.san_email.push((*v).to_string()),
            GeneralName::DNSName(v) => facts.san_dns.push((*v).to_string()),
            GeneralName::URI(v) => facts.san_uri.push((*v).to_string()),
            GeneralName::OtherName(oid, value) if *oid == UPN => {
                facts.san_upn.push(decode_upn(value)?);
            }
            _ => {}
        }
    }
    for ext in cert.extensions() {
        if ext.oid == OID_X509_EXT_CERTIFICATE_POLICIES {
            facts.policy_oids.extend(policy_oids(ext.value));
        }
        if facts.sid.is_none() && ext.oid == SID_EXTENSION {
            facts.sid = sid_from_extension(ext.value);
        }
    }
    if facts.sid.is_none() {
        facts.sid = facts
            .san_uri
            .iter()
            .filter_map(|u| {
                u.get(..SID_URI_PREFIX.len())
                    .filter(|p| p.eq_ignore_ascii_case(SID_URI_PREFIX))
                    .and_then(|_| u.get(SID_URI_PREFIX.len()..))
            })
            .find(|s| is_sid(s))
            .map(str::to_string);
    }
    Ok(())
}

/// The one extension with `oid`, decoded by `decode`: `Ok(None)` when absent, and the errors
/// x509-parser's own accessors give when it appears twice (RFC 5280 §4.2: "MUST NOT include more
/// than one instance of a particular extension") or does not decode.
fn unique_extension<'a, T>(
    cert: &X509Certificate<'a>,
    oid: &Oid<'_>,
    decode: impl FnOnce(&'a [u8]) -> Option<T>,
) -> Result<Option<T>, X509Error> {
    let mut found = cert.extensions().iter().filter(|ext| ext.oid == *oid);
    let Some(ext) = found.next() else {
        return Ok(None);
    };
    if found.next().is_some() {
        return Err(X509Error::DuplicateExtensions);
    }
    decode(ext.value)
        .map(Some)
        .ok_or(X509Error::InvalidExtensions)
}

/// RFC 5280 §4.2.1.4: `certificatePolicies ::= SEQUENCE SIZE (1..MAX) OF PolicyInformation`,
/// each a SEQUENCE that starts with the policy's OID (the qualifiers after it are not read).
/// A value that does not decode names no policy.
fn policy_oids(value: &[u8]) -> Vec<String> {
    let decode = || -> Option<Vec<String>> {
        let (rest, policies) = Any::from_der(value).ok()?;
        if !rest.is_empty() || policies.tag() != Tag::Sequence || policies.data.is_empty() {
            return None;
        }
        let mut oids = Vec::new();
        let mut rest = policies.data;
        while !rest.is_empty() {
            let (next, info) = Any::from_der(rest).ok()?;
            rest = next;
            if info.tag() != Tag::Sequence {
                return None;
            }
            let (_, oid) = Oid::from_der(info.data).ok()?;
            oids.push(oid.to_id_string());
        }
        Some(oids)
    };
    decode().unwrap_or_default()
}

/// The UPN otherName value: `[0] EXPLICIT UTF8String` (x509-parser hands us the bytes after the
/// type-id OID).
pub(crate) fn decode_upn(value: &[u8]) -> Result<String, FactsError> {
    let bad = |what: &str| FactsError::Upn(what.to_string());
    let (rest, explicit) = Any::from_der(value).map_err(|e| bad(&e.to_string()))?;
    if !rest.is_empty() || explicit.class() != Class::ContextSpecific || explicit.tag() != Tag(0) {
        return Err(bad("value is not a single [0] EXPLICIT element"));
    }
    let (rest, inner) = Any::from_der(explicit.data).map_err(|e| bad(&e.to_string()))?;
    if !rest.is_empty() || inner.tag() != Tag::Utf8String {
        return Err(bad("value is not a UTF8String"));
    }
    std::str::from_utf8(inner.data)
        .map(str::to_string)
        .map_err(|_| bad("UTF8String is not UTF-8"))
}

#[derive(Clone, Copy)]
pub(crate) enum Dn {
    Cn,
    O,
    Ou,
}

/// Values of one attribute type in a DN. PrintableString, UTF8String, IA5String and
/// NumericString are read by x509-parser; BMPString (UTF-16BE, still issued by some Windows CAs)
/// is decoded here. Other string types are skipped, so they can match no pattern.
pub(crate) fn dn_values(name: &X509Name<'_>, which: Dn) -> Vec<String> {
    let attrs: Vec<_> = match which {
        Dn::Cn => name.iter_common_name().collect(),
        Dn::O => name.iter_organization().collect(),
        Dn::Ou => name.iter_organizational_unit().collect(),
    };
    attrs
        .into_iter()
        .filter_map(|a| match a.as_str() {
            Ok(s) => Some(s.to_string()),
            Err(_) if a.attr_value().tag() == Tag::BmpString => {
                let data = a.attr_value().data;
                if !data.len().is_multiple_of(2) {
                    return None;
                }
                let units = data
                    .chunks_exact(2)
                    .filter_map(|c| <[u8; 2]>::try_from(c).ok())
                    .map(u16::from_be_bytes);
                char::decode_utf16(units)
                    .collect::<Result<String, _>>()
                    .ok()
            }
            Err(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod sid_tests {
    use super::*;

    #[test]
    fn the_constant_oids_are_microsofts() {
        assert_eq!(UPN.to_id_string(), "1.3.6.1.4.1.311.20.2.3");
        assert_eq!(SID_EXTENSION.to_id_string(), "1.3.6.1.4.1.311.25.2");
    }

    /// One DER TLV (definite length, up to 255 octets of content).
    pub(super) fn der(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if content.len() < 128 {
            out.push(content.len() as u8);
        } else {
            out.extend([0x81, content.len() as u8]);
        }
        out.extend_from_slice(content);
        out
    }

    /// The KB5014754 extension value as AD CS writes it.
    pub(crate) fn sid_extension(sid: &str) -> Vec<u8> {
        let oid = [
            0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x19, 0x02, 0x01,
        ];
        let value = der(0xa0, &der(0x04, sid.as_bytes()));
        let other_name = der(0xa0, &[&oid[..], &value].concat());
        der(0x30, &other_name)
    }

    #[test]
    fn sid_extension_and_uri() {
        let sid = "S-1-5-21-3623811015-3361044348-30300820-1013";
        assert_eq!(
            sid_from_extension(&sid_extension(sid)).as_deref(),
            Some(sid)
        );
        assert_eq!(sid_from_extension(&sid_extension("S-1-5-x")), None);
        assert_eq!(sid_from_extension(b"\x30\x03\x02\x01\x01"), None);
        assert_eq!(sid_from_extension(b"garbage"), None);
        assert!(is_sid(sid));
        assert!(!is_sid("S-1-") && !is_sid("S-1-5--1") && !is_sid("*)(uid=*"));
    }
}

#[cfg(test)]
mod extension_tests {
    use super::sid_tests::der;
    use super::*;
    use rcgen::{CertificateParams, CustomExtension, KeyPair, KeyUsagePurpose, SanType};

    fn cert(edit: impl FnOnce(&mut CertificateParams)) -> Vec<u8> {
        let mut params = CertificateParams::new(vec!["leaf.test".into()]).unwrap();
        edit(&mut params);
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    /// certificatePolicies with two policies, the second with a CPS qualifier.
    fn policies() -> CustomExtension {
        let cps = der(
            0x30,
            &[
                &der(0x06, &[0x2b, 6, 1, 5, 5, 7, 2, 1])[..], // id-qt-cps
                &der(0x16, b"http://pki.test/cps"),
            ]
            .concat(),
        );
        let first = der(0x30, &der(0x06, &[0x2a, 3, 4])); // 1.2.3.4
        let second = der(
            0x30,
            &[
                &der(0x06, &[0x2b, 6, 1, 4, 1, 0x63, 1])[..],
                &der(0x30, &cps),
            ]
            .concat(),
        );
        CustomExtension::from_oid_content(&[2, 5, 29, 32], der(0x30, &[first, second].concat()))
    }

    #[test]
    fn the_extensions_read_are_decoded_from_their_raw_values() {
        let der = cert(|p| {
            p.subject_alt_names.push(SanType::Rfc822Name(
                "bob@certradius.test".try_into().unwrap(),
            ));
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            p.custom_extensions = vec![policies()];
        });
        let parsed = Leaf::parse(&der).unwrap();
        assert_eq!(parsed.key_usage, Ok(Some(true)));
        let facts = parsed.rule_facts().unwrap();
        assert_eq!(facts.san_dns, ["leaf.test"]);
        assert_eq!(facts.san_email, ["bob@certradius.test"]);
        assert_eq!(facts.policy_oids, ["1.2.3.4", "1.3.6.1.4.1.99.1"]);

        let without = Leaf::parse(&cert(|p| p.subject_alt_names.clear())).unwrap();
        assert_eq!(without.key_usage, Ok(None));
        assert!(without.rule_facts().unwrap().policy_oids.is_empty());

        let signing_only = cert(|p| p.key_usages = vec![KeyUsagePurpose::KeyCertSign]);
        assert_eq!(
            Leaf::parse(&signing_only).unwrap().key_usage,
            Ok(Some(false))
        );
    }

    #[test]
    fn a_repeated_or_malformed_extension_is_refused_as_before() {
        // A second subjectAltName (RFC 5280 §4.2): the rules that read names refuse the leaf.
        let twice = cert(|p| {
            p.custom_extensions = vec![CustomExtension::from_oid_content(
                &[2, 5, 29, 17],
                der(0x30, &der(0x82, b"other.test")),
            )]
        });
        assert!(matches!(
            Leaf::parse(&twice).unwrap().rule_facts(),
            Err(FactsError::SubjectAltName(_))
        ));
        // keyUsage that is not a BIT STRING: the key-usage check sees a malformed extension.
        let bad_ku = cert(|p| {
            p.custom_extensions = vec![CustomExtension::from_oid_content(
                &[2, 5, 29, 15],
                der(0x04, &[1]),
            )]
        });
        assert!(Leaf::parse(&bad_ku).unwrap().key_usage.is_err());
        // Policies that do not decode name no policy; the certificate is still read.
        for value in [der(0x04, &[1]), der(0x30, &[]), der(0x30, &der(0x02, &[1]))] {
            let der = cert(|p| {
                p.custom_extensions =
                    vec![CustomExtension::from_oid_content(&[2, 5, 29, 32], value)]
            });
            assert!(
                Leaf::parse(&der)
                    .unwrap()
                    .rule_facts()
                    .unwrap()
                    .policy_oids
                    .is_empty()
            );
        }
    }
}
