//! What rules look at in the client certificate, read once per authorization: subject and issuer
//! DN attributes (RFC 5280 §4.1.2.4/§4.1.2.6; BMPString decoded too), subjectAltName rfc822Name,
//! dNSName, URI and the Microsoft UPN otherName (§4.2.1.6; type-id 1.3.6.1.4.1.311.20.2.3 with a
//! `[0] EXPLICIT` UTF8String), and certificate policy OIDs (§4.2.1.4).

use x509_parser::asn1_rs::{Any, Class, FromDer, Tag};
use x509_parser::prelude::{GeneralName, ParsedExtension, X509Certificate, X509Name};

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

/// Microsoft UPN otherName type-id (szOID_NT_PRINCIPAL_NAME).
pub(crate) const UPN_OID: &str = "1.3.6.1.4.1.311.20.2.3";

/// The certificate fields rules look at, read once per authorization.
#[derive(Debug, Default)]
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
}

pub(crate) fn cert_facts(der: &[u8]) -> Result<CertFacts, FactsError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| FactsError::Parse(e.to_string()))?;
    let mut facts = CertFacts {
        subject_cn: dn_values(cert.subject(), Dn::Cn),
        subject_o: dn_values(cert.subject(), Dn::O),
        subject_ou: dn_values(cert.subject(), Dn::Ou),
        issuer_cn: dn_values(cert.issuer(), Dn::Cn),
        ..CertFacts::default()
    };
    read_extensions(&cert, &mut facts)?;
    Ok(facts)
}

pub(crate) fn read_extensions(
    cert: &X509Certificate<'_>,
    facts: &mut CertFacts,
) -> Result<(), FactsError> {
    // More than one subjectAltName extension is invalid (RFC 5280 §4.2); refuse rather than
    // pick one.
    let san = cert
        .subject_alternative_name()
        .map_err(|e| FactsError::SubjectAltName(e.to_string()))?;
    for name in san.iter().flat_map(|s| s.value.general_names.iter()) {
        match name {
            GeneralName::RFC822Name(v) => facts.san_email.push((*v).to_string()),
            GeneralName::DNSName(v) => facts.san_dns.push((*v).to_string()),
            GeneralName::URI(v) => facts.san_uri.push((*v).to_string()),
            GeneralName::OtherName(oid, value) if oid.to_id_string() == UPN_OID => {
                facts.san_upn.push(decode_upn(value)?);
            }
            _ => {}
        }
    }
    for ext in cert.extensions() {
        if let ParsedExtension::CertificatePolicies(policies) = ext.parsed_extension() {
            facts
                .policy_oids
                .extend(policies.iter().map(|p| p.policy_id.to_id_string()));
        }
    }
    Ok(())
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
