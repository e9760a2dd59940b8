//! Building the request: the responder URL from the leaf's Authority Information Access (RFC 5280
//! §4.2.2.1), one `Request` whose `CertID` hashes the issuer name and key with SHA-1 (RFC 6960
//! §4.1.1), and the nonce extension (RFC 8954).

use super::*;

/// The certificate a query is about, as RFC 6960 §4.1.1 CertID identifies it (SHA-1 hashes).
/// Also the cache key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct CertIdentity {
    pub(super) issuer_name_hash: Vec<u8>,
    pub(super) issuer_key_hash: Vec<u8>,
    /// Content octets of the serial number INTEGER.
    pub(super) serial: Vec<u8>,
}

/// One OCSP request, ready to send, and what [`verify_response`] needs to check the answer.
#[derive(Debug, Clone)]
pub struct Query {
    pub url: String,
    /// DER `OCSPRequest`, the body of the HTTP POST.
    pub request_der: Vec<u8>,
    /// The nonce sent, if any.
    pub nonce: Option<Vec<u8>>,
    pub(super) cert_id: CertIdentity,
}

/// The OCSP responder URLs named by the certificate's Authority Information Access extension
/// (id-ad-ocsp, uniformResourceIdentifier), in certificate order; empty if there is none. Read
/// when the leaf was parsed.
pub fn responder_urls(leaf: &Leaf) -> Vec<String> {
    leaf.ocsp_urls().to_vec()
}

/// Builds the RFC 6960 §4.1.1 request for `leaf` issued by `issuer_der`, with the RFC 8954
/// nonce extension when `nonce` is given (1 to 32 octets).
pub fn build_query(
    leaf: &Leaf,
    issuer_der: &[u8],
    url: String,
    nonce: Option<Vec<u8>>,
) -> Result<Query, OcspError> {
    if let Some(n) = nonce
        .as_ref()
        .filter(|n| n.is_empty() || n.len() > MAX_NONCE_LEN)
    {
        return Err(OcspError::BadInput(format!(
            "nonce must be 1 to {MAX_NONCE_LEN} octets, not {}",
            n.len()
        )));
    }
    let cert_id = cert_identity(leaf, issuer_der)?;
    let encode_error = |e: der::Error| OcspError::BadInput(format!("encoding request: {e}"));
    let serial = IntRef::new(&cert_id.serial).map_err(encode_error)?;
    // RFC 8954: extnValue holds the DER of `Nonce ::= OCTET STRING`.
    let nonce_value = nonce
        .as_deref()
        .map(|n| der::asn1::OctetStringRef::new(n).and_then(|o| o.to_der()))
        .transpose()
        .map_err(encode_error)?;
    let request = OcspRequest {
        tbs_request: TbsRequest {
            request_list: vec![RequestAsn1 {
                req_cert: CertIdAsn1 {
                    // SHA-1 with NULL parameters, as `openssl ocsp` sends it.
                    hash_algorithm: AlgorithmIdentifier {
                        algorithm: oid::SHA1,
                        parameters: Some(AnyRef::NULL),
                    },
                    issuer_name_hash: &cert_id.issuer_name_hash,
                    issuer_key_hash: &cert_id.issuer_key_hash,
                    serial_number: serial,
                },
            }],
            request_extensions: nonce_value.as_deref().map(|value| {
                vec![Extension {
                    extn_id: oid::OCSP_NONCE,
                    critical: false,
                    extn_value: value,
                }]
            }),
        },
    };
    let request_der = request.to_der().map_err(encode_error)?;
    Ok(Query {
        url,
        request_der,
        nonce,
        cert_id,
    })
}

/// The parts of a certificate used here, with the SPKI decoded for signature checks.
pub(super) struct ParsedCert<'a> {
    pub(super) x509: X509Certificate<'a>,
    pub(super) subject_der: &'a [u8],
    pub(super) spki_der: &'a [u8],
    pub(super) spki: SubjectPublicKeyInfo<'a>,
}

impl<'a> ParsedCert<'a> {
    pub(super) fn parse(der_bytes: &'a [u8]) -> Result<Self, String> {
        let (_, x509) = crate::x509::parse_certificate(der_bytes)
            .map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let subject_der = x509.tbs_certificate.subject.as_raw();
        let spki_der = x509.tbs_certificate.subject_pki.raw;
        let spki = SubjectPublicKeyInfo::from_der(spki_der)
            .map_err(|e| format!("subjectPublicKeyInfo: {e}"))?;
        Ok(Self {
            x509,
            subject_der,
            spki_der,
            spki,
        })
    }

    /// RFC 6960 §4.1.1 issuerKeyHash / §4.2.1 KeyHash: SHA-1 of the subjectPublicKey BIT STRING
    /// value, without tag, length and unused-bits octet.
    pub(super) fn key_hash(&self) -> Vec<u8> {
        digest(
            &SHA1_FOR_LEGACY_USE_ONLY,
            self.spki.subject_public_key.raw_bytes(),
        )
        .as_ref()
        .to_vec()
    }
}

pub(super) fn cert_identity(leaf: &Leaf, issuer_der: &[u8]) -> Result<CertIdentity, OcspError> {
    let issuer =
        ParsedCert::parse(issuer_der).map_err(|e| OcspError::BadInput(format!("issuer: {e}")))?;
    // Catches a wrong issuer passed in, which a responder would only answer with "unknown".
    if leaf.issuer_raw != issuer.subject_der {
        return Err(OcspError::BadInput(format!(
            "leaf issued by \"{}\", not by \"{}\"",
            leaf.issuer,
            issuer.x509.subject()
        )));
    }
    Ok(CertIdentity {
        issuer_name_hash: digest(&SHA1_FOR_LEGACY_USE_ONLY, issuer.subject_der)
            .as_ref()
            .to_vec(),
        issuer_key_hash: issuer.key_hash(),
        serial: leaf.serial.clone(),
    })
}
