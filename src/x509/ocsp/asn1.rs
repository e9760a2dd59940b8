//! ASN.1 structures of RFC 6960 Appendix B.1 (EXPLICIT TAGS) and the object identifiers used.
//! Values whose exact encoding matters (signed data, names, certificates) or whose tag must be
//! inspected are kept as `AnyRef` and looked at by hand.

use super::*;

/// Object identifiers used here.
pub(super) mod oid {
    use der::asn1::ObjectIdentifier as Oid;

    /// RFC 6960 §4.2.1 id-pkix-ocsp-basic.
    pub const OCSP_BASIC: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1.1");
    /// RFC 6960 §4.4.1 / RFC 8954 id-pkix-ocsp-nonce.
    pub const OCSP_NONCE: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1.2");
    /// id-sha1 (RFC 3279 §2.1), the CertID hash.
    pub const SHA1: Oid = Oid::new_unwrap("1.3.14.3.2.26");
    pub const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
    pub const SHA384: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.2");
    pub const SHA512: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.3");
    /// Key types (RFC 3279 §2.3, RFC 5480 §2.1.1, RFC 8410 §3).
    pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
    pub const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
    pub const SECP256R1: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
    pub const SECP384R1: Oid = Oid::new_unwrap("1.3.132.0.34");
    pub const ED25519: Oid = Oid::new_unwrap("1.3.101.112");
    /// Signature algorithms (RFC 5758 §3.2, RFC 4055 §5, RFC 4055 §3.1).
    pub const ECDSA_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
    pub const ECDSA_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
    pub const RSA_SHA256: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
    pub const RSA_SHA384: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
    pub const RSA_SHA512: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
    pub const RSA_PSS: Oid = Oid::new_unwrap("1.2.840.113549.1.1.10");
    pub const MGF1: Oid = Oid::new_unwrap("1.2.840.113549.1.1.8");
}

// ---------------------------------------------------------------------------------------------
// ASN.1 structures, from the module in RFC 6960 Appendix B.1 (EXPLICIT TAGS). Values whose exact
// encoding matters (signed data, names, certificates) or whose tag must be inspected are kept as
// `AnyRef` and looked at by hand.

/// RFC 5280 §4.1.1.2 AlgorithmIdentifier.
#[derive(Clone, Copy, Debug, Sequence)]
pub(super) struct AlgorithmIdentifier<'a> {
    pub(super) algorithm: ObjectIdentifier,
    pub(super) parameters: Option<AnyRef<'a>>,
}

/// RFC 5280 §4.1.2.7 SubjectPublicKeyInfo.
#[derive(Clone, Copy, Debug, Sequence)]
pub(super) struct SubjectPublicKeyInfo<'a> {
    pub(super) algorithm: AlgorithmIdentifier<'a>,
    pub(super) subject_public_key: BitStringRef<'a>,
}

/// RFC 5280 §4.1 Certificate, outer layer only: what a signature check of it needs.
#[derive(Clone, Copy, Debug, Sequence)]
pub(super) struct SignedCertificate<'a> {
    pub(super) tbs_certificate: AnyRef<'a>,
    pub(super) signature_algorithm: AlgorithmIdentifier<'a>,
    pub(super) signature: BitStringRef<'a>,
}

/// RFC 5280 §4.1 Extension.
#[derive(Clone, Debug, Sequence)]
pub(super) struct Extension<'a> {
    pub(super) extn_id: ObjectIdentifier,
    #[asn1(default = "Default::default")]
    pub(super) critical: bool,
    #[asn1(type = "OCTET STRING")]
    pub(super) extn_value: &'a [u8],
}

/// RFC 6960 §4.1.1 CertID.
#[derive(Clone, Debug, Sequence)]
pub(super) struct CertIdAsn1<'a> {
    pub(super) hash_algorithm: AlgorithmIdentifier<'a>,
    #[asn1(type = "OCTET STRING")]
    pub(super) issuer_name_hash: &'a [u8],
    #[asn1(type = "OCTET STRING")]
    pub(super) issuer_key_hash: &'a [u8],
    pub(super) serial_number: IntRef<'a>,
}

/// RFC 6960 §4.1.1 Request (no singleRequestExtensions).
#[derive(Clone, Debug, Sequence)]
pub(super) struct RequestAsn1<'a> {
    pub(super) req_cert: CertIdAsn1<'a>,
}

/// RFC 6960 §4.1.1 TBSRequest: version v1 is the DEFAULT, so DER leaves it out; no requestorName.
#[derive(Clone, Debug, Sequence)]
pub(super) struct TbsRequest<'a> {
    pub(super) request_list: Vec<RequestAsn1<'a>>,
    #[asn1(context_specific = "2", optional = "true")]
    pub(super) request_extensions: Option<Vec<Extension<'a>>>,
}

/// RFC 6960 §4.1.1 OCSPRequest, unsigned (signing requests is optional and we have no key for it).
#[derive(Clone, Debug, Sequence)]
pub(super) struct OcspRequest<'a> {
    pub(super) tbs_request: TbsRequest<'a>,
}

/// RFC 6960 §4.2.1 OCSPResponse. The status is ENUMERATED; it is read by hand so that a value
/// we do not know is reported rather than rejected as undecodable.
#[derive(Clone, Debug, Sequence)]
pub(super) struct OcspResponse<'a> {
    pub(super) response_status: AnyRef<'a>,
    #[asn1(context_specific = "0", optional = "true")]
    pub(super) response_bytes: Option<ResponseBytes<'a>>,
}

/// RFC 6960 §4.2.1 ResponseBytes.
#[derive(Clone, Debug, Sequence)]
pub(super) struct ResponseBytes<'a> {
    pub(super) response_type: ObjectIdentifier,
    #[asn1(type = "OCTET STRING")]
    pub(super) response: &'a [u8],
}

/// RFC 6960 §4.2.1 BasicOCSPResponse. `tbs_response_data` stays raw: the signature covers its
/// DER encoding.
#[derive(Clone, Debug, Sequence)]
pub(super) struct BasicOcspResponse<'a> {
    pub(super) tbs_response_data: AnyRef<'a>,
    pub(super) signature_algorithm: AlgorithmIdentifier<'a>,
    pub(super) signature: BitStringRef<'a>,
    #[asn1(context_specific = "0", optional = "true")]
    pub(super) certs: Option<Vec<AnyRef<'a>>>,
}

/// RFC 6960 §4.2.1 ResponseData. `responder_id` is a CHOICE of `[1] Name` / `[2] KeyHash`.
#[derive(Clone, Debug, Sequence)]
pub(super) struct ResponseData<'a> {
    #[asn1(context_specific = "0", default = "Default::default")]
    pub(super) version: u8,
    pub(super) responder_id: AnyRef<'a>,
    pub(super) produced_at: GeneralizedTime,
    pub(super) responses: Vec<SingleResponse<'a>>,
    #[asn1(context_specific = "1", optional = "true")]
    pub(super) response_extensions: Option<Vec<Extension<'a>>>,
}

/// RFC 6960 §4.2.1 SingleResponse. `cert_status` is a CHOICE of IMPLICIT tags [0], [1], [2].
#[derive(Clone, Debug, Sequence)]
pub(super) struct SingleResponse<'a> {
    pub(super) cert_id: CertIdAsn1<'a>,
    pub(super) cert_status: AnyRef<'a>,
    pub(super) this_update: GeneralizedTime,
    #[asn1(context_specific = "0", optional = "true")]
    pub(super) next_update: Option<GeneralizedTime>,
    #[asn1(context_specific = "1", optional = "true")]
    pub(super) single_extensions: Option<Vec<Extension<'a>>>,
}

/// RFC 6960 §4.2.1 RevokedInfo (the contents of the `[1] IMPLICIT` alternative of CertStatus).
#[derive(Clone, Debug, Sequence)]
pub(super) struct RevokedInfo<'a> {
    pub(super) revocation_time: GeneralizedTime,
    #[asn1(context_specific = "0", optional = "true")]
    pub(super) revocation_reason: Option<AnyRef<'a>>,
}

/// RFC 4055 §3.1 RSASSA-PSS-params (EXPLICIT TAGS). Absent fields mean SHA-1, which we refuse.
#[derive(Clone, Debug, Sequence)]
pub(super) struct PssParams<'a> {
    #[asn1(context_specific = "0", optional = "true")]
    pub(super) hash_algorithm: Option<AlgorithmIdentifier<'a>>,
    #[asn1(context_specific = "1", optional = "true")]
    pub(super) mask_gen_algorithm: Option<AlgorithmIdentifier<'a>>,
    #[asn1(context_specific = "2", optional = "true")]
    pub(super) salt_length: Option<u32>,
    #[asn1(context_specific = "3", optional = "true")]
    pub(super) trailer_field: Option<u32>,
}

pub(super) fn malformed(what: &'static str) -> impl Fn(der::Error) -> OcspError {
    move |e| OcspError::Malformed(format!("{what}: {e}"))
}
