//! OCSP checking of client certificates (RFC 6960), split the way the server is: sans-IO parts
//! (request building, response verification, a response cache, all with `now` passed in) and one
//! async function, [`fetch`], that the tokio shell calls between them.
//!
//! - RFC 5280 §4.2.2.1: the responder's location comes from the leaf's Authority Information
//!   Access extension, access method id-ad-ocsp ([`responder_urls`]).
//! - RFC 6960 §4.1.1: the request is one `Request` whose `CertID` hashes the issuer's name and key
//!   with SHA-1 (what responders match on; `openssl ocsp` among them), plus the serial number.
//! - RFC 8954: the nonce extension, 1 to 32 octets, as `OCTET STRING` inside `extnValue`.
//! - RFC 6960 §4.2.1: `OCSPResponse`, `BasicOCSPResponse`; §4.2.2.2: who may sign it (the issuer
//!   itself, or a responder certificate issued directly by the issuer carrying id-kp-OCSPSigning);
//!   §4.2.2.1 and §3.2: `thisUpdate` must not be in the future, `nextUpdate` not in the past.
//! - RFC 6960 Appendix A.1: HTTP POST with `Content-Type: application/ocsp-request`.
//! - RFC 5019 (the lightweight profile): responses may be pre-produced, without a nonce, and
//!   clients cache them until `nextUpdate` ([`Cache`]). RFC 5280 §5.3.1: revocation reason names.
//!
//! The delegated responder certificate's own revocation status is not checked: responders for
//! this use carry id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1), and checking it would need another
//! round trip to the very responder being judged.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use der::asn1::{AnyRef, BitStringRef, GeneralizedTime, IntRef, ObjectIdentifier};
use der::{Decode, DecodeValue, Encode, Reader, Sequence, SliceReader, Tag, TagNumber, Tagged};
use ring::digest::{SHA1_FOR_LEGACY_USE_ONLY, digest};
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};

/// The most response body [`fetch`] reads; real responses are a few KiB.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Clock difference tolerated between us and the responder for `thisUpdate`.
pub const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);
/// RFC 8954: a nonce is 1 to 32 octets.
pub const MAX_NONCE_LEN: usize = 32;

/// Object identifiers used here.
mod oid {
    use der::asn1::ObjectIdentifier as Oid;

    /// RFC 5280 §4.2.2.1 id-ad-ocsp.
    pub const AD_OCSP: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1");
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
struct AlgorithmIdentifier<'a> {
    algorithm: ObjectIdentifier,
    parameters: Option<AnyRef<'a>>,
}

/// RFC 5280 §4.1.2.7 SubjectPublicKeyInfo.
#[derive(Clone, Copy, Debug, Sequence)]
struct SubjectPublicKeyInfo<'a> {
    algorithm: AlgorithmIdentifier<'a>,
    subject_public_key: BitStringRef<'a>,
}

/// RFC 5280 §4.1 Certificate, outer layer only: what a signature check of it needs.
#[derive(Clone, Copy, Debug, Sequence)]
struct SignedCertificate<'a> {
    tbs_certificate: AnyRef<'a>,
    signature_algorithm: AlgorithmIdentifier<'a>,
    signature: BitStringRef<'a>,
}

/// RFC 5280 §4.1 Extension.
#[derive(Clone, Debug, Sequence)]
struct Extension<'a> {
    extn_id: ObjectIdentifier,
    #[asn1(default = "Default::default")]
    critical: bool,
    #[asn1(type = "OCTET STRING")]
    extn_value: &'a [u8],
}

/// RFC 6960 §4.1.1 CertID.
#[derive(Clone, Debug, Sequence)]
struct CertIdAsn1<'a> {
    hash_algorithm: AlgorithmIdentifier<'a>,
    #[asn1(type = "OCTET STRING")]
    issuer_name_hash: &'a [u8],
    #[asn1(type = "OCTET STRING")]
    issuer_key_hash: &'a [u8],
    serial_number: IntRef<'a>,
}

/// RFC 6960 §4.1.1 Request (no singleRequestExtensions).
#[derive(Clone, Debug, Sequence)]
struct RequestAsn1<'a> {
    req_cert: CertIdAsn1<'a>,
}

/// RFC 6960 §4.1.1 TBSRequest: version v1 is the DEFAULT, so DER leaves it out; no requestorName.
#[derive(Clone, Debug, Sequence)]
struct TbsRequest<'a> {
    request_list: Vec<RequestAsn1<'a>>,
    #[asn1(context_specific = "2", optional = "true")]
    request_extensions: Option<Vec<Extension<'a>>>,
}

/// RFC 6960 §4.1.1 OCSPRequest, unsigned (signing requests is optional and we have no key for it).
#[derive(Clone, Debug, Sequence)]
struct OcspRequest<'a> {
    tbs_request: TbsRequest<'a>,
}

/// RFC 6960 §4.2.1 OCSPResponse. The status is ENUMERATED; it is read by hand so that a value
/// we do not know is reported rather than rejected as undecodable.
#[derive(Clone, Debug, Sequence)]
struct OcspResponse<'a> {
    response_status: AnyRef<'a>,
    #[asn1(context_specific = "0", optional = "true")]
    response_bytes: Option<ResponseBytes<'a>>,
}

/// RFC 6960 §4.2.1 ResponseBytes.
#[derive(Clone, Debug, Sequence)]
struct ResponseBytes<'a> {
    response_type: ObjectIdentifier,
    #[asn1(type = "OCTET STRING")]
    response: &'a [u8],
}

/// RFC 6960 §4.2.1 BasicOCSPResponse. `tbs_response_data` stays raw: the signature covers its
/// DER encoding.
#[derive(Clone, Debug, Sequence)]
struct BasicOcspResponse<'a> {
    tbs_response_data: AnyRef<'a>,
    signature_algorithm: AlgorithmIdentifier<'a>,
    signature: BitStringRef<'a>,
    #[asn1(context_specific = "0", optional = "true")]
    certs: Option<Vec<AnyRef<'a>>>,
}

/// RFC 6960 §4.2.1 ResponseData. `responder_id` is a CHOICE of `[1] Name` / `[2] KeyHash`.
#[derive(Clone, Debug, Sequence)]
struct ResponseData<'a> {
    #[asn1(context_specific = "0", default = "Default::default")]
    version: u8,
    responder_id: AnyRef<'a>,
    produced_at: GeneralizedTime,
    responses: Vec<SingleResponse<'a>>,
    #[asn1(context_specific = "1", optional = "true")]
    response_extensions: Option<Vec<Extension<'a>>>,
}

/// RFC 6960 §4.2.1 SingleResponse. `cert_status` is a CHOICE of IMPLICIT tags [0], [1], [2].
#[derive(Clone, Debug, Sequence)]
struct SingleResponse<'a> {
    cert_id: CertIdAsn1<'a>,
    cert_status: AnyRef<'a>,
    this_update: GeneralizedTime,
    #[asn1(context_specific = "0", optional = "true")]
    next_update: Option<GeneralizedTime>,
    #[asn1(context_specific = "1", optional = "true")]
    single_extensions: Option<Vec<Extension<'a>>>,
}

/// RFC 6960 §4.2.1 RevokedInfo (the contents of the `[1] IMPLICIT` alternative of CertStatus).
#[derive(Clone, Debug, Sequence)]
struct RevokedInfo<'a> {
    revocation_time: GeneralizedTime,
    #[asn1(context_specific = "0", optional = "true")]
    revocation_reason: Option<AnyRef<'a>>,
}

/// RFC 4055 §3.1 RSASSA-PSS-params (EXPLICIT TAGS). Absent fields mean SHA-1, which we refuse.
#[derive(Clone, Debug, Sequence)]
struct PssParams<'a> {
    #[asn1(context_specific = "0", optional = "true")]
    hash_algorithm: Option<AlgorithmIdentifier<'a>>,
    #[asn1(context_specific = "1", optional = "true")]
    mask_gen_algorithm: Option<AlgorithmIdentifier<'a>>,
    #[asn1(context_specific = "2", optional = "true")]
    salt_length: Option<u32>,
    #[asn1(context_specific = "3", optional = "true")]
    trailer_field: Option<u32>,
}

// ---------------------------------------------------------------------------------------------
// Public API.

/// Why an OCSP check did not produce a verdict. The responder-side variants say what the
/// responder (or whoever answered in its place) did.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum OcspError {
    #[error("malformed OCSP response: {0}")]
    Malformed(String),
    #[error("OCSP responder answered status {0} ({name})", name = status_name(*.0))]
    Unsuccessful(u8),
    #[error("OCSP response signature does not verify")]
    BadSignature,
    #[error("OCSP response signed by neither the issuer nor a responder certificate it authorized")]
    UnauthorizedResponder,
    #[error("OCSP response has no status for the certificate asked about")]
    NoMatchingResponse,
    #[error("OCSP response echoes a different nonce (replayed or mixed-up response)")]
    NonceMismatch,
    #[error("OCSP response is not current (thisUpdate in the future or nextUpdate passed)")]
    Stale,
    #[error("OCSP HTTP exchange failed: {0}")]
    Http(String),
    #[error("OCSP responder did not answer in time")]
    Timeout,
    #[error("certificate names no OCSP responder")]
    NoResponder,
    /// What the caller handed over cannot be used: a leaf or issuer certificate that does not
    /// parse, a leaf not issued by that issuer, a nonce of the wrong size.
    #[error("cannot check OCSP: {0}")]
    BadInput(String),
}

/// RFC 6960 §4.2.1 OCSPResponseStatus names, for logs.
fn status_name(status: u8) -> &'static str {
    match status {
        0 => "successful",
        1 => "malformedRequest",
        2 => "internalError",
        3 => "tryLater",
        5 => "sigRequired",
        6 => "unauthorized",
        _ => "unknown status",
    }
}

/// The certificate a query is about, as RFC 6960 §4.1.1 CertID identifies it (SHA-1 hashes).
/// Also the cache key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CertIdentity {
    issuer_name_hash: Vec<u8>,
    issuer_key_hash: Vec<u8>,
    /// Content octets of the serial number INTEGER.
    serial: Vec<u8>,
}

/// One OCSP request, ready to send, and what [`verify_response`] needs to check the answer.
#[derive(Debug, Clone)]
pub struct Query {
    pub url: String,
    /// DER `OCSPRequest`, the body of the HTTP POST.
    pub request_der: Vec<u8>,
    /// The nonce sent, if any.
    pub nonce: Option<Vec<u8>>,
    cert_id: CertIdentity,
}

/// The status of one certificate according to its responder (RFC 6960 §2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertStatus {
    Good,
    /// `reason` is the RFC 5280 §5.3.1 CRLReason name, when the responder gave one.
    Revoked {
        reason: Option<String>,
    },
    Unknown,
}

/// A verified answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: CertStatus,
    pub this_update: SystemTime,
    pub next_update: Option<SystemTime>,
    /// We sent a nonce and the responder echoed it. False when we sent none, or when the
    /// responder left it out (pre-produced responses, RFC 5019); a *different* nonce is
    /// [`OcspError::NonceMismatch`] instead.
    pub nonce_echoed: bool,
}

/// The OCSP responder URLs named by the certificate's Authority Information Access extension
/// (id-ad-ocsp, uniformResourceIdentifier), in certificate order. Empty if there is none or the
/// certificate does not parse.
pub fn responder_urls(leaf_der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf_der) else {
        return Vec::new();
    };
    let ad_ocsp = oid::AD_OCSP.as_bytes();
    cert.extensions()
        .iter()
        .filter_map(|ext| match ext.parsed_extension() {
            ParsedExtension::AuthorityInfoAccess(aia) => Some(aia),
            _ => None,
        })
        .flat_map(|aia| aia.iter())
        .filter(|ad| ad.access_method.as_bytes() == ad_ocsp)
        .filter_map(|ad| match ad.access_location {
            GeneralName::URI(uri) => Some(uri.to_owned()),
            _ => None,
        })
        .collect()
}

/// Builds the RFC 6960 §4.1.1 request for `leaf_der` issued by `issuer_der`, with the RFC 8954
/// nonce extension when `nonce` is given (1 to 32 octets).
pub fn build_query(
    leaf_der: &[u8],
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
    let cert_id = cert_identity(leaf_der, issuer_der)?;
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

/// Verifies a DER `OCSPResponse` answering `query`, for the certificate issued by `issuer_der`.
///
/// Checks, in order: the response status is successful and the response is a BasicOCSPResponse;
/// the signer is the issuer, or a certificate from `certs` issued and signed by the issuer with
/// id-kp-OCSPSigning and valid at `now`; the signature verifies; a SingleResponse carries our
/// CertID; the nonce, if echoed, is ours; `thisUpdate <= now + CLOCK_SKEW` and
/// `now <= nextUpdate`.
pub fn verify_response(
    query: &Query,
    response_der: &[u8],
    issuer_der: &[u8],
    now: SystemTime,
) -> Result<Verdict, OcspError> {
    let response = OcspResponse::from_der(response_der).map_err(malformed("OCSPResponse"))?;
    let status = response_status(response.response_status)?;
    if status != 0 {
        return Err(OcspError::Unsuccessful(status));
    }
    let bytes = response
        .response_bytes
        .ok_or_else(|| OcspError::Malformed("successful response without responseBytes".into()))?;
    if bytes.response_type != oid::OCSP_BASIC {
        return Err(OcspError::Malformed(format!(
            "unsupported response type {}",
            bytes.response_type
        )));
    }
    let basic =
        BasicOcspResponse::from_der(bytes.response).map_err(malformed("BasicOCSPResponse"))?;
    // DER has one encoding per value, so re-encoding gives back the bytes that were signed.
    let tbs_der = basic
        .tbs_response_data
        .to_der()
        .map_err(malformed("tbsResponseData"))?;
    let data = ResponseData::from_der(&tbs_der).map_err(malformed("ResponseData"))?;

    let issuer =
        ParsedCert::parse(issuer_der).map_err(|e| OcspError::BadInput(format!("issuer: {e}")))?;
    let signer_spki_der = authorized_signer(&data, &basic, &issuer, now)?;
    let signer_key =
        SubjectPublicKeyInfo::from_der(&signer_spki_der).map_err(malformed("signer key"))?;
    let signature = basic
        .signature
        .as_bytes()
        .ok_or_else(|| OcspError::Malformed("signature has unused bits".into()))?;
    verify_signature(&basic.signature_algorithm, &signer_key, &tbs_der, signature).map_err(
        |e| match e {
            SigError::Unsupported(m) => OcspError::Malformed(m),
            SigError::Invalid => OcspError::BadSignature,
        },
    )?;

    let single = data
        .responses
        .iter()
        .find(|r| cert_id_matches(&r.cert_id, &query.cert_id))
        .ok_or(OcspError::NoMatchingResponse)?;

    let nonce_echoed = check_nonce(query, data.response_extensions.as_deref())?;

    let this_update = single.this_update.to_system_time();
    let next_update = single.next_update.map(|t| t.to_system_time());
    let latest_acceptable = now.checked_add(CLOCK_SKEW).unwrap_or(now);
    if this_update > latest_acceptable || next_update.is_some_and(|next| next < now) {
        return Err(OcspError::Stale);
    }
    Ok(Verdict {
        status: cert_status(single.cert_status)?,
        this_update,
        next_update,
        nonce_echoed,
    })
}

/// The shell-side fetch: HTTP POST of `query.request_der` as `application/ocsp-request` to
/// `query.url` (RFC 6960 Appendix A.1), reading at most [`MAX_RESPONSE_BYTES`] of body; the whole
/// exchange, name resolution and connect included, is bounded by `timeout`. Only `http://` URLs:
/// fetching over TLS would itself need certificate status checking, and responders serve HTTP.
pub async fn fetch(query: &Query, timeout: Duration) -> Result<Vec<u8>, OcspError> {
    // Dropping the exchange on timeout drops the connection with it: nothing is left running.
    tokio::time::timeout(timeout, exchange(query))
        .await
        .unwrap_or(Err(OcspError::Timeout))
}

async fn exchange(query: &Query) -> Result<Vec<u8>, OcspError> {
    use http_body_util::{BodyExt, Full, Limited};
    use hyper::body::Bytes;
    use hyper::header::{ACCEPT, CONTENT_TYPE, HOST};

    let http = |what: &str, e: &dyn std::fmt::Display| OcspError::Http(format!("{what}: {e}"));
    let uri: hyper::Uri = query
        .url
        .parse()
        .map_err(|e| http(&format!("bad responder URL {:?}", query.url), &e))?;
    if uri.scheme_str() != Some("http") {
        return Err(OcspError::Http(format!(
            "responder URL {:?}: only http:// is supported",
            query.url
        )));
    }
    let (Some(host), Some(authority)) = (uri.host(), uri.authority()) else {
        return Err(OcspError::Http(format!(
            "responder URL {:?} has no host",
            query.url
        )));
    };
    let port = uri.port_u16().unwrap_or(80);
    // An IPv6 literal comes bracketed from the URI; the resolver wants it bare.
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    let stream = tokio::net::TcpStream::connect((bare_host, port))
        .await
        .map_err(|e| http(&format!("connect to {authority}"), &e))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| http("HTTP handshake", &e))?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let request = hyper::Request::post(path)
        .header(HOST, authority.as_str())
        .header(CONTENT_TYPE, "application/ocsp-request")
        .header(ACCEPT, "application/ocsp-response")
        .body(Full::new(Bytes::from(query.request_der.clone())))
        .map_err(|e| http("building request", &e))?;

    let exchange = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| http("sending request", &e))?;
        if response.status() != hyper::StatusCode::OK {
            return Err(OcspError::Http(format!(
                "responder answered HTTP {}",
                response.status()
            )));
        }
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    OcspError::Http(format!("response larger than {MAX_RESPONSE_BYTES} bytes"))
                } else {
                    http("reading response", &e)
                }
            })?;
        Ok(body.to_bytes().to_vec())
    };
    // The connection future does the actual I/O; drive it alongside the exchange in this task.
    // It may finish first (the responder closes after answering), having handed the whole body
    // over; the exchange then completes on its own.
    let mut exchange = std::pin::pin!(exchange);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = &mut exchange => result,
        closed = &mut connection => {
            closed.map_err(|e| http("connection", &e))?;
            exchange.await
        }
    }
}

/// Verdicts by certificate (issuer name and key hash, serial), until the earlier of the response's
/// nextUpdate and `max_age` after caching. Only Good and Revoked are kept: an Unknown or a failure
/// is asked again next time. Sans IO: the caller passes `now`.
#[derive(Debug)]
pub struct Cache {
    max_entries: usize,
    max_age: Duration,
    entries: HashMap<CertIdentity, (Verdict, SystemTime)>,
}

impl Cache {
    pub fn new(max_entries: usize, max_age: Duration) -> Self {
        Self {
            max_entries,
            max_age,
            entries: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&mut self, leaf_der: &[u8], issuer_der: &[u8], now: SystemTime) -> Option<Verdict> {
        let key = cert_identity(leaf_der, issuer_der).ok()?;
        let (verdict, expires) = self.entries.get(&key)?;
        if now < *expires {
            return Some(verdict.clone());
        }
        self.entries.remove(&key);
        None
    }

    pub fn put(&mut self, leaf_der: &[u8], issuer_der: &[u8], verdict: &Verdict, now: SystemTime) {
        if verdict.status == CertStatus::Unknown || self.max_entries == 0 {
            return;
        }
        let Ok(key) = cert_identity(leaf_der, issuer_der) else {
            return;
        };
        let capped = now.checked_add(self.max_age).unwrap_or(now);
        let expires = verdict.next_update.map_or(capped, |next| next.min(capped));
        if expires <= now {
            return;
        }
        if !self.entries.contains_key(&key) && self.entries.len() >= self.max_entries {
            self.entries.retain(|_, (_, exp)| *exp > now);
            if self.entries.len() >= self.max_entries {
                // Still full: drop whatever would have expired first.
                let soonest = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, exp))| *exp)
                    .map(|(k, _)| k.clone());
                if let Some(k) = soonest {
                    self.entries.remove(&k);
                }
            }
        }
        self.entries.insert(key, (verdict.clone(), expires));
    }
}

// ---------------------------------------------------------------------------------------------
// Internals.

fn malformed(what: &'static str) -> impl Fn(der::Error) -> OcspError {
    move |e| OcspError::Malformed(format!("{what}: {e}"))
}

/// The parts of a certificate used here, with the SPKI decoded for signature checks.
struct ParsedCert<'a> {
    x509: X509Certificate<'a>,
    subject_der: &'a [u8],
    spki_der: &'a [u8],
    spki: SubjectPublicKeyInfo<'a>,
}

impl<'a> ParsedCert<'a> {
    fn parse(der_bytes: &'a [u8]) -> Result<Self, String> {
        let (_, x509) = x509_parser::parse_x509_certificate(der_bytes)
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
    fn key_hash(&self) -> Vec<u8> {
        digest(
            &SHA1_FOR_LEGACY_USE_ONLY,
            self.spki.subject_public_key.raw_bytes(),
        )
        .as_ref()
        .to_vec()
    }
}

fn cert_identity(leaf_der: &[u8], issuer_der: &[u8]) -> Result<CertIdentity, OcspError> {
    let (_, leaf) = x509_parser::parse_x509_certificate(leaf_der)
        .map_err(|e| OcspError::BadInput(format!("leaf is not an X.509 certificate: {e}")))?;
    let issuer =
        ParsedCert::parse(issuer_der).map_err(|e| OcspError::BadInput(format!("issuer: {e}")))?;
    // Catches a wrong issuer passed in, which a responder would only answer with "unknown".
    if leaf.issuer().as_raw() != issuer.subject_der {
        return Err(OcspError::BadInput(format!(
            "leaf issued by \"{}\", not by \"{}\"",
            leaf.issuer(),
            issuer.x509.subject()
        )));
    }
    Ok(CertIdentity {
        issuer_name_hash: digest(&SHA1_FOR_LEGACY_USE_ONLY, issuer.subject_der)
            .as_ref()
            .to_vec(),
        issuer_key_hash: issuer.key_hash(),
        serial: leaf.raw_serial().to_vec(),
    })
}

fn response_status(status: AnyRef<'_>) -> Result<u8, OcspError> {
    match (status.tag(), status.value()) {
        (Tag::Enumerated, [value]) => Ok(*value),
        _ => Err(OcspError::Malformed(
            "responseStatus is not a small ENUMERATED".into(),
        )),
    }
}

/// Compares a response's CertID with ours. The hash algorithm must be SHA-1 (what we asked
/// with), its parameters NULL or absent alike.
fn cert_id_matches(theirs: &CertIdAsn1<'_>, ours: &CertIdentity) -> bool {
    theirs.hash_algorithm.algorithm == oid::SHA1
        && theirs.issuer_name_hash == ours.issuer_name_hash.as_slice()
        && theirs.issuer_key_hash == ours.issuer_key_hash.as_slice()
        && theirs.serial_number.as_bytes() == ours.serial.as_slice()
}

/// Whether `candidate` is the one the ResponderID (RFC 6960 §4.2.1) names.
fn responder_id_names(responder_id: AnyRef<'_>, candidate: &ParsedCert<'_>) -> bool {
    match responder_id.tag() {
        // byName [1] EXPLICIT Name: the value is the Name's own DER.
        Tag::ContextSpecific {
            constructed: true,
            number: TagNumber(1),
        } => responder_id.value() == candidate.subject_der,
        // byKey [2] EXPLICIT KeyHash (OCTET STRING).
        Tag::ContextSpecific {
            constructed: true,
            number: TagNumber(2),
        } => AnyRef::from_der(responder_id.value())
            .ok()
            .filter(|hash| hash.tag() == Tag::OctetString)
            .is_some_and(|hash| hash.value() == candidate.key_hash().as_slice()),
        _ => false,
    }
}

/// RFC 6960 §4.2.2.2: the response must be signed by the issuer itself or by a responder
/// certificate the issuer issued and marked with id-kp-OCSPSigning. Returns the signer's
/// SubjectPublicKeyInfo, DER.
fn authorized_signer(
    data: &ResponseData<'_>,
    basic: &BasicOcspResponse<'_>,
    issuer: &ParsedCert<'_>,
    now: SystemTime,
) -> Result<Vec<u8>, OcspError> {
    if responder_id_names(data.responder_id, issuer) {
        return Ok(issuer.spki_der.to_vec());
    }
    let certs = basic.certs.as_deref().unwrap_or_default();
    for cert in certs {
        let cert_der = cert.to_der().map_err(malformed("certs"))?;
        let Ok(candidate) = ParsedCert::parse(&cert_der) else {
            continue;
        };
        if !responder_id_names(data.responder_id, &candidate) {
            continue;
        }
        // Named as the signer: it must be a responder the issuer authorized, or nobody is.
        if delegated_by(&cert_der, &candidate, issuer, now) {
            return Ok(candidate.spki_der.to_vec());
        }
        return Err(OcspError::UnauthorizedResponder);
    }
    Err(OcspError::UnauthorizedResponder)
}

/// Whether `candidate` is a responder certificate `issuer` issued and signed, with
/// id-kp-OCSPSigning in its extended key usage, valid at `now`.
fn delegated_by(
    candidate_der: &[u8],
    candidate: &ParsedCert<'_>,
    issuer: &ParsedCert<'_>,
    now: SystemTime,
) -> bool {
    if candidate.x509.issuer().as_raw() != issuer.subject_der {
        return false;
    }
    let has_ocsp_signing = matches!(
        candidate.x509.extended_key_usage(),
        Ok(Some(eku)) if eku.value.ocsp_signing
    );
    if !has_ocsp_signing {
        return false;
    }
    let Some(now_secs) = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok())
    else {
        return false;
    };
    let validity = candidate.x509.validity();
    if now_secs < validity.not_before.timestamp() || now_secs > validity.not_after.timestamp() {
        return false;
    }
    let Ok(signed) = SignedCertificate::from_der(candidate_der) else {
        return false;
    };
    let (Ok(tbs), Some(signature)) = (signed.tbs_certificate.to_der(), signed.signature.as_bytes())
    else {
        return false;
    };
    verify_signature(&signed.signature_algorithm, &issuer.spki, &tbs, signature).is_ok()
}

enum SigError {
    Unsupported(String),
    Invalid,
}

/// Verifies `signature` over `message` with the key in `spki`, picking ring's algorithm from the
/// signature algorithm and the key's type and curve.
fn verify_signature(
    algorithm: &AlgorithmIdentifier<'_>,
    spki: &SubjectPublicKeyInfo<'_>,
    message: &[u8],
    signature: &[u8],
) -> Result<(), SigError> {
    let chosen = ring_algorithm(algorithm, spki)?;
    let key = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| SigError::Unsupported("public key has unused bits".into()))?;
    UnparsedPublicKey::new(chosen, key)
        .verify(message, signature)
        .map_err(|_| SigError::Invalid)
}

fn ring_algorithm(
    algorithm: &AlgorithmIdentifier<'_>,
    spki: &SubjectPublicKeyInfo<'_>,
) -> Result<&'static dyn VerificationAlgorithm, SigError> {
    let unsupported = || {
        SigError::Unsupported(format!(
            "unsupported signature algorithm {} for key type {}",
            algorithm.algorithm, spki.algorithm.algorithm
        ))
    };
    let key_type = spki.algorithm.algorithm;
    // RFC 4055 §5 / RFC 8017: PKCS#1 v1.5 parameters are NULL (or, leniently, absent).
    let null_params = algorithm.parameters.is_none_or(|p| p.is_null());
    if key_type == oid::EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        // RFC 5758 §3.2: ECDSA signature algorithms have absent parameters.
        if algorithm.parameters.is_some() {
            return Err(unsupported());
        }
        let p256 = curve == Some(oid::SECP256R1);
        let p384 = curve == Some(oid::SECP384R1);
        return match algorithm.algorithm {
            a if a == oid::ECDSA_SHA256 && p256 => Ok(&signature::ECDSA_P256_SHA256_ASN1),
            a if a == oid::ECDSA_SHA384 && p256 => Ok(&signature::ECDSA_P256_SHA384_ASN1),
            a if a == oid::ECDSA_SHA256 && p384 => Ok(&signature::ECDSA_P384_SHA256_ASN1),
            a if a == oid::ECDSA_SHA384 && p384 => Ok(&signature::ECDSA_P384_SHA384_ASN1),
            _ => Err(unsupported()),
        };
    }
    if key_type == oid::RSA_ENCRYPTION {
        return match algorithm.algorithm {
            a if a == oid::RSA_SHA256 && null_params => Ok(&signature::RSA_PKCS1_2048_8192_SHA256),
            a if a == oid::RSA_SHA384 && null_params => Ok(&signature::RSA_PKCS1_2048_8192_SHA384),
            a if a == oid::RSA_SHA512 && null_params => Ok(&signature::RSA_PKCS1_2048_8192_SHA512),
            a if a == oid::RSA_PSS => pss_algorithm(algorithm.parameters).ok_or_else(unsupported),
            _ => Err(unsupported()),
        };
    }
    if key_type == oid::ED25519 && algorithm.algorithm == oid::ED25519 {
        // RFC 8410 §3: parameters absent.
        return if algorithm.parameters.is_none() {
            Ok(&signature::ED25519)
        } else {
            Err(unsupported())
        };
    }
    Err(unsupported())
}

/// RSASSA-PSS as ring implements it: SHA-256/384/512, MGF1 with the same hash, salt as long as
/// the hash, trailer 1 (RFC 4055 §3.1).
fn pss_algorithm(parameters: Option<AnyRef<'_>>) -> Option<&'static dyn VerificationAlgorithm> {
    let params: PssParams<'_> = parameters?.decode_as().ok()?;
    let hash = params.hash_algorithm?;
    let mgf = params.mask_gen_algorithm?;
    let mgf_hash: AlgorithmIdentifier<'_> = mgf.parameters?.decode_as().ok()?;
    if mgf.algorithm != oid::MGF1
        || mgf_hash.algorithm != hash.algorithm
        || params.trailer_field.is_some_and(|t| t != 1)
    {
        return None;
    }
    let salt = params.salt_length?;
    match hash.algorithm {
        h if h == oid::SHA256 && salt == 32 => Some(&signature::RSA_PSS_2048_8192_SHA256),
        h if h == oid::SHA384 && salt == 48 => Some(&signature::RSA_PSS_2048_8192_SHA384),
        h if h == oid::SHA512 && salt == 64 => Some(&signature::RSA_PSS_2048_8192_SHA512),
        _ => None,
    }
}

/// RFC 8954: a nonce we sent must come back unchanged if it comes back at all.
fn check_nonce(query: &Query, extensions: Option<&[Extension<'_>]>) -> Result<bool, OcspError> {
    let echoed = extensions
        .unwrap_or_default()
        .iter()
        .find(|e| e.extn_id == oid::OCSP_NONCE);
    match (&query.nonce, echoed) {
        (Some(ours), Some(ext)) => {
            // The value is `OCTET STRING nonce`; a responder that put the bare octets there
            // (some old ones did) still proves freshness if they are ours.
            let theirs = AnyRef::from_der(ext.extn_value)
                .ok()
                .filter(|a| a.tag() == Tag::OctetString)
                .map_or(ext.extn_value, AnyRef::value);
            if theirs == ours.as_slice() || ext.extn_value == ours.as_slice() {
                Ok(true)
            } else {
                Err(OcspError::NonceMismatch)
            }
        }
        // Sent none, or the responder answered without (e.g. a pre-produced response).
        _ => Ok(false),
    }
}

fn cert_status(status: AnyRef<'_>) -> Result<CertStatus, OcspError> {
    let bad = |what: &str| OcspError::Malformed(format!("certStatus: {what}"));
    match status.tag() {
        // good [0] IMPLICIT NULL
        Tag::ContextSpecific {
            constructed: false,
            number: TagNumber(0),
        } if status.value().is_empty() => Ok(CertStatus::Good),
        // revoked [1] IMPLICIT RevokedInfo
        Tag::ContextSpecific {
            constructed: true,
            number: TagNumber(1),
        } => {
            let mut reader = SliceReader::new(status.value()).map_err(|e| bad(&e.to_string()))?;
            let info = RevokedInfo::decode_value(&mut reader, status.header())
                .map_err(|e| bad(&e.to_string()))?;
            reader.finish().map_err(|e| bad(&e.to_string()))?;
            let reason = match info.revocation_reason {
                None => None,
                Some(r) if r.tag() == Tag::Enumerated => Some(reason_name(r.value())),
                Some(_) => return Err(bad("revocationReason is not ENUMERATED")),
            };
            Ok(CertStatus::Revoked { reason })
        }
        // unknown [2] IMPLICIT UnknownInfo (NULL)
        Tag::ContextSpecific {
            constructed: false,
            number: TagNumber(2),
        } if status.value().is_empty() => Ok(CertStatus::Unknown),
        _ => Err(bad("not good, revoked or unknown")),
    }
}

/// RFC 5280 §5.3.1 CRLReason names.
fn reason_name(value: &[u8]) -> String {
    let name = match value {
        [0] => "unspecified",
        [1] => "keyCompromise",
        [2] => "cACompromise",
        [3] => "affiliationChanged",
        [4] => "superseded",
        [5] => "cessationOfOperation",
        [6] => "certificateHold",
        [8] => "removeFromCRL",
        [9] => "privilegeWithdrawn",
        [10] => "aACompromise",
        _ => return format!("reason {value:02x?}"),
    };
    name.to_owned()
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests may read the clock
mod tests {
    use super::*;
    use certradius_pki::{self, PkiPaths};
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::sync::mpsc;
    use std::time::Instant;

    const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

    fn chain(path: &Path) -> Vec<Vec<u8>> {
        CertificateDer::pem_file_iter(path)
            .unwrap()
            .map(|c| c.unwrap().to_vec())
            .collect()
    }

    fn first(path: &Path) -> Vec<u8> {
        chain(path).remove(0)
    }

    fn test_pki() -> (tempfile::TempDir, PkiPaths) {
        let dir = tempfile::tempdir().unwrap();
        certradius_pki::generate(dir.path()).unwrap();
        let paths = PkiPaths::new(dir.path());
        (dir, paths)
    }

    /// The responder tests need `openssl`; without it they say so loudly, and fail under CI.
    fn openssl_present() -> bool {
        let ok = Command::new("openssl")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            assert!(
                std::env::var_os("CI").is_none(),
                "openssl is required for the OCSP responder tests under CI"
            );
            eprintln!("SKIP: `openssl` not found; OCSP responder test not run");
        }
        ok
    }

    fn openssl(args: &[&str], dir: &Path) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A port nobody listens on (bound then released).
    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// A real `openssl ocsp` responder on loopback, killed when dropped.
    struct Responder {
        child: Child,
        url: String,
    }

    impl Drop for Responder {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    struct ResponderSpec<'a> {
        index: PathBuf,
        ca: PathBuf,
        rsigner: PathBuf,
        rkey: PathBuf,
        extra: &'a [&'a str],
    }

    fn start_responder(spec: &ResponderSpec<'_>) -> Responder {
        let port = free_port();
        // OpenSSL 3.0 takes a bare port here (it binds every address); we only talk to loopback.
        let mut child = Command::new("openssl")
            .arg("ocsp")
            .arg("-index")
            .arg(&spec.index)
            .args(["-port", &port.to_string()])
            .arg("-rsigner")
            .arg(&spec.rsigner)
            .arg("-rkey")
            .arg(&spec.rkey)
            .arg("-CA")
            .arg(&spec.ca)
            .args(["-nrequest", "10", "-ndays", "1"])
            .args(spec.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Keeps draining stdout for the responder's whole life so it never blocks on the pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let responder = Responder {
            child,
            url: format!("http://127.0.0.1:{port}/"),
        };
        // `ACCEPT ...` is printed (to stdout) once the socket listens. Probing the port instead
        // would not do: OpenSSL 3.0's responder hangs on a connection closed without a request.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line.starts_with("ACCEPT") => return responder,
                Ok(_) => {}
                Err(e) => panic!("openssl ocsp did not start: {e}"),
            }
        }
    }

    /// The test PKI's delegated responder for the intermediate.
    fn delegated(p: &PkiPaths, extra: &'static [&'static str]) -> Responder {
        start_responder(&ResponderSpec {
            index: p.ocsp_index(),
            ca: p.intermediate_cert(),
            rsigner: p.ocsp_cert(),
            rkey: p.ocsp_key(),
            extra,
        })
    }

    async fn ask(
        leaf: &[u8],
        issuer: &[u8],
        url: &str,
        nonce: Option<Vec<u8>>,
    ) -> (Query, Vec<u8>) {
        let query = build_query(leaf, issuer, url.to_owned(), nonce).unwrap();
        let response = fetch(&query, FETCH_TIMEOUT).await.unwrap();
        (query, response)
    }

    #[tokio::test]
    async fn good_certificate_from_delegated_responder() {
        if !openssl_present() {
            return;
        }
        let (_dir, p) = test_pki();
        let responder = delegated(&p, &[]);
        let leaf = first(&p.client_cert("ecdsa"));
        let issuer = first(&p.intermediate_cert());
        let nonce = vec![0x5a; 16];
        let (query, der) = ask(&leaf, &issuer, &responder.url, Some(nonce)).await;
        let now = SystemTime::now();
        let verdict = verify_response(&query, &der, &issuer, now).unwrap();
        assert_eq!(verdict.status, CertStatus::Good);
        assert!(verdict.nonce_echoed, "openssl ocsp echoes the nonce");
        let next = verdict.next_update.expect("-ndays 1 sets nextUpdate");
        assert!(next > now && verdict.this_update <= now + CLOCK_SKEW);

        // Without a nonce: still good, nothing echoed.
        let (plain_query, plain) = ask(&leaf, &issuer, &responder.url, None).await;
        let plain_verdict = verify_response(&plain_query, &plain, &issuer, now).unwrap();
        assert_eq!(plain_verdict.status, CertStatus::Good);
        assert!(!plain_verdict.nonce_echoed);

        // The same response does not answer a query with another nonce (a replay) ...
        let other_nonce =
            build_query(&leaf, &issuer, responder.url.clone(), Some(vec![1; 16])).unwrap();
        assert_eq!(
            verify_response(&other_nonce, &der, &issuer, now),
            Err(OcspError::NonceMismatch)
        );
        // ... nor a question about another certificate ...
        let revoked = first(&p.client_cert("revoked"));
        let other_cert = build_query(&revoked, &issuer, responder.url.clone(), None).unwrap();
        assert_eq!(
            verify_response(&other_cert, &der, &issuer, now),
            Err(OcspError::NoMatchingResponse)
        );
        // ... nor is it current after nextUpdate or well before thisUpdate ...
        assert_eq!(
            verify_response(&query, &der, &issuer, next + Duration::from_secs(1)),
            Err(OcspError::Stale)
        );
        let early = verdict.this_update - CLOCK_SKEW - Duration::from_secs(60);
        assert_eq!(
            verify_response(&query, &der, &issuer, early),
            Err(OcspError::Stale)
        );
        // ... but within the skew it is.
        let slightly_early = verdict.this_update - CLOCK_SKEW + Duration::from_secs(1);
        assert!(verify_response(&query, &der, &issuer, slightly_early).is_ok());
        // A CA that did not issue the responder certificate does not authorize it,
        let root = first(&p.ca_cert());
        assert_eq!(
            verify_response(&query, &der, &root, now),
            Err(OcspError::UnauthorizedResponder)
        );
        // nor does the intermediate once the responder certificate has expired (825 days).
        let much_later = now + Duration::from_secs(900 * 86_400);
        assert_eq!(
            verify_response(&query, &der, &issuer, much_later),
            Err(OcspError::UnauthorizedResponder)
        );
    }

    #[tokio::test]
    async fn revoked_certificate_by_key_id() {
        if !openssl_present() {
            return;
        }
        let (_dir, p) = test_pki();
        // ResponderID byKey this time (RFC 6960 §4.2.1 KeyHash).
        let responder = delegated(&p, &["-resp_key_id"]);
        let leaf = first(&p.client_cert("revoked"));
        let issuer = first(&p.intermediate_cert());
        let (query, der) = ask(&leaf, &issuer, &responder.url, Some(vec![7; 32])).await;
        let verdict = verify_response(&query, &der, &issuer, SystemTime::now()).unwrap();
        assert_eq!(
            verdict.status,
            CertStatus::Revoked {
                reason: Some("keyCompromise".into())
            }
        );
        assert!(verdict.nonce_echoed);
    }

    #[tokio::test]
    async fn tampered_responses_are_refused_without_panicking() {
        if !openssl_present() {
            return;
        }
        let (_dir, p) = test_pki();
        let responder = delegated(&p, &[]);
        let leaf = first(&p.client_cert("ecdsa"));
        let issuer = first(&p.intermediate_cert());
        let nonce = vec![0xa5; 20];
        let (query, der) = ask(&leaf, &issuer, &responder.url, Some(nonce.clone())).await;
        let now = SystemTime::now();
        assert!(verify_response(&query, &der, &issuer, now).is_ok());

        // A changed byte inside the signed data (here, in the echoed nonce).
        let at = der.windows(nonce.len()).position(|w| w == nonce).unwrap();
        let mut tampered = der.clone();
        tampered[at] ^= 0x01;
        assert_eq!(
            verify_response(&query, &tampered, &issuer, now),
            Err(OcspError::BadSignature)
        );
        // Every single-bit change anywhere is refused (and none panics).
        for i in 0..der.len() * 8 {
            let mut flipped = der.clone();
            flipped[i / 8] ^= 1 << (i % 8);
            let result = verify_response(&query, &flipped, &issuer, now);
            assert!(result.is_err(), "bit {i} flipped was accepted: {result:?}");
        }
        // So is every truncation.
        for len in 0..der.len() {
            assert!(verify_response(&query, &der[..len], &issuer, now).is_err());
        }
    }

    /// A self-contained RSA CA made with openssl that signs its responses itself.
    fn rsa_ca(dir: &Path) -> (Vec<u8>, Vec<u8>) {
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "rsa-ca.key",
                "-out",
                "rsa-ca.pem",
                "-subj",
                "/CN=OCSP RSA Test CA",
                "-days",
                "2",
            ],
            dir,
        );
        openssl(
            &[
                "req",
                "-x509",
                "-CA",
                "rsa-ca.pem",
                "-CAkey",
                "rsa-ca.key",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "leaf.key",
                "-out",
                "leaf.pem",
                "-subj",
                "/CN=rsa-issued leaf",
                "-days",
                "1",
            ],
            dir,
        );
        let out = Command::new("openssl")
            .args(["x509", "-in", "leaf.pem", "-noout", "-serial"])
            .current_dir(dir)
            .output()
            .unwrap();
        let serial = String::from_utf8(out.stdout).unwrap();
        let serial = serial.trim().trim_start_matches("serial=");
        std::fs::write(
            dir.join("index.txt"),
            format!("V\t301231235959Z\t\t{serial}\tunknown\t/CN=rsa-issued leaf\n"),
        )
        .unwrap();
        (first(&dir.join("leaf.pem")), first(&dir.join("rsa-ca.pem")))
    }

    #[tokio::test]
    async fn issuer_signed_rsa_pkcs1_and_pss() {
        if !openssl_present() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (leaf, issuer) = rsa_ca(dir.path());
        let spec = |extra| ResponderSpec {
            index: dir.path().join("index.txt"),
            ca: dir.path().join("rsa-ca.pem"),
            rsigner: dir.path().join("rsa-ca.pem"),
            rkey: dir.path().join("rsa-ca.key"),
            extra,
        };
        let accepted: [&[&str]; 4] = [
            &[],
            &["-rmd", "sha384"],
            &["-rmd", "sha512"],
            &[
                "-rmd",
                "sha256",
                "-rsigopt",
                "rsa_padding_mode:pss",
                "-rsigopt",
                "rsa_pss_saltlen:digest",
            ],
        ];
        for extra in accepted {
            let responder = start_responder(&spec(extra));
            let (query, der) = ask(&leaf, &issuer, &responder.url, Some(vec![3; 8])).await;
            let verdict = verify_response(&query, &der, &issuer, SystemTime::now());
            assert_eq!(
                verdict.map(|v| (v.status, v.nonce_echoed)),
                Ok((CertStatus::Good, true)),
                "{extra:?}"
            );
        }
        // PSS with a salt length ring does not do (max) is refused, not misverified.
        let responder = start_responder(&spec(&[
            "-rsigopt",
            "rsa_padding_mode:pss",
            "-rsigopt",
            "rsa_pss_saltlen:max",
        ]));
        let (query, der) = ask(&leaf, &issuer, &responder.url, None).await;
        let result = verify_response(&query, &der, &issuer, SystemTime::now());
        assert!(matches!(result, Err(OcspError::Malformed(_))), "{result:?}");
    }

    #[tokio::test]
    async fn closed_port_fails_fast() {
        let query = sample_query(format!("http://127.0.0.1:{}/", free_port()));
        let start = Instant::now();
        let result = fetch(&query, Duration::from_secs(5)).await;
        assert!(matches!(result, Err(OcspError::Http(_))), "{result:?}");
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn silent_responder_times_out() {
        // The kernel completes the handshake from the backlog; nobody ever reads or answers.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/ocsp", listener.local_addr().unwrap());
        let query = sample_query(url);
        let timeout = Duration::from_millis(500);
        let start = Instant::now();
        let result = fetch(&query, timeout).await;
        let elapsed = start.elapsed();
        assert_eq!(result, Err(OcspError::Timeout));
        assert!(elapsed >= timeout && elapsed < timeout + Duration::from_secs(1));
        drop(listener);
    }

    /// Serves one canned HTTP answer to one connection.
    fn canned_server(answer: Vec<u8>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            conn.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            let mut buf = [0u8; 4096];
            // Read the request (until the client pauses), then answer and hang up.
            while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
            let _ = conn.write_all(&answer);
        });
        format!("http://{addr}/")
    }

    #[tokio::test]
    async fn http_errors_and_oversized_bodies_are_refused() {
        let not_found =
            canned_server(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec());
        let result = fetch(&sample_query(not_found), FETCH_TIMEOUT).await;
        assert!(
            matches!(&result, Err(OcspError::Http(m)) if m.contains("404")),
            "{result:?}"
        );

        let size = MAX_RESPONSE_BYTES + 1000;
        let mut huge = format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n").into_bytes();
        huge.resize(huge.len() + size, 0x30);
        let result = fetch(&sample_query(canned_server(huge)), FETCH_TIMEOUT).await;
        assert!(
            matches!(&result, Err(OcspError::Http(m)) if m.contains("larger")),
            "{result:?}"
        );

        // A body without Content-Length, ended by the close, is read whole.
        let mut close_delimited = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
        close_delimited.extend_from_slice(&[0x30, 0x03, 0x0a, 0x01, 0x03]);
        let result = fetch(&sample_query(canned_server(close_delimited)), FETCH_TIMEOUT).await;
        assert_eq!(result, Ok(vec![0x30, 0x03, 0x0a, 0x01, 0x03]));
    }

    #[tokio::test]
    async fn bad_urls_are_refused() {
        for url in [
            "https://127.0.0.1/",
            "not a url",
            "http:///nohost",
            "ldap://x/",
        ] {
            let result = fetch(&sample_query(url.into()), FETCH_TIMEOUT).await;
            assert!(
                matches!(result, Err(OcspError::Http(_))),
                "{url}: {result:?}"
            );
        }
    }

    /// A query built from fixed, tiny certificates (no PKI generation, no network).
    fn sample_query(url: String) -> Query {
        let (leaf, issuer) = rcgen_pair(&[]);
        build_query(&leaf, &issuer, url, Some(vec![9; 4])).unwrap()
    }

    /// An rcgen CA and a leaf it issued with the given extra extensions; DER of both.
    fn rcgen_pair(extensions: &[rcgen::CustomExtension]) -> (Vec<u8>, Vec<u8>) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "rcgen test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let mut leaf_params = CertificateParams::new(vec!["leaf.test".into()]).unwrap();
        leaf_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "rcgen test leaf");
        leaf_params.custom_extensions = extensions.to_vec();
        let leaf = leaf_params
            .signed_by(&KeyPair::generate().unwrap(), &issuer)
            .unwrap();
        (leaf.der().to_vec(), ca_cert.der().to_vec())
    }

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        assert!(content.len() < 128, "short form only");
        let mut v = vec![tag, content.len() as u8];
        v.extend_from_slice(content);
        v
    }

    #[test]
    fn responder_urls_from_authority_information_access() {
        // id-ad-ocsp (1.3.6.1.5.5.7.48.1) and id-ad-caIssuers (1.3.6.1.5.5.7.48.2).
        let ad_ocsp = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
        let ad_ca_issuers = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02];
        let access = |method: &[u8], uri: &str| {
            let mut content = method.to_vec();
            content.extend(tlv(0x86, uri.as_bytes())); // [6] IMPLICIT IA5String
            tlv(0x30, &content)
        };
        let mut descriptions = access(&ad_ca_issuers, "http://pki.test/ca.crt");
        descriptions.extend(access(&ad_ocsp, "http://ocsp.test/"));
        descriptions.extend(access(&ad_ocsp, "http://ocsp2.test:8080/x"));
        let aia = rcgen::CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 5, 5, 7, 1, 1],
            tlv(0x30, &descriptions),
        );
        let (leaf, _) = rcgen_pair(&[aia]);
        assert_eq!(
            responder_urls(&leaf),
            vec!["http://ocsp.test/", "http://ocsp2.test:8080/x"]
        );
        let (plain, _) = rcgen_pair(&[]);
        assert!(responder_urls(&plain).is_empty());
        assert!(responder_urls(b"not a certificate").is_empty());
    }

    #[test]
    fn request_encoding() {
        let (leaf, issuer) = rcgen_pair(&[]);
        for bad in [0, MAX_NONCE_LEN + 1] {
            assert!(matches!(
                build_query(&leaf, &issuer, String::new(), Some(vec![1; bad])),
                Err(OcspError::BadInput(_))
            ));
        }
        // The leaf as its own issuer: the names do not match.
        assert!(matches!(
            build_query(&leaf, &leaf, String::new(), None),
            Err(OcspError::BadInput(_))
        ));
        assert!(matches!(
            build_query(b"junk", &issuer, String::new(), None),
            Err(OcspError::BadInput(_))
        ));

        let query = build_query(&leaf, &issuer, "u".into(), Some(vec![0xee; 32])).unwrap();
        let request = OcspRequest::from_der(&query.request_der).unwrap();
        let [single] = request.tbs_request.request_list.as_slice() else {
            panic!("one request");
        };
        let (_, leaf_x509) = x509_parser::parse_x509_certificate(&leaf).unwrap();
        let (_, issuer_x509) = x509_parser::parse_x509_certificate(&issuer).unwrap();
        assert_eq!(single.req_cert.hash_algorithm.algorithm, oid::SHA1);
        assert_eq!(
            single.req_cert.serial_number.as_bytes(),
            leaf_x509.raw_serial()
        );
        assert_eq!(
            single.req_cert.issuer_name_hash,
            digest(&SHA1_FOR_LEGACY_USE_ONLY, issuer_x509.subject().as_raw()).as_ref()
        );
        assert_eq!(
            single.req_cert.issuer_key_hash,
            digest(
                &SHA1_FOR_LEGACY_USE_ONLY,
                &issuer_x509.public_key().subject_public_key.data
            )
            .as_ref()
        );
        let extensions = request.tbs_request.request_extensions.unwrap();
        let [nonce] = extensions.as_slice() else {
            panic!("one extension");
        };
        assert_eq!(nonce.extn_id, oid::OCSP_NONCE);
        let mut wrapped = vec![0x04, 32];
        wrapped.extend([0xee; 32]);
        assert_eq!(nonce.extn_value, wrapped.as_slice());

        let without = build_query(&leaf, &issuer, "u".into(), None).unwrap();
        let request = OcspRequest::from_der(&without.request_der).unwrap();
        assert!(request.tbs_request.request_extensions.is_none());
    }

    #[test]
    fn unsuccessful_and_garbage_responses() {
        let (leaf, issuer) = rcgen_pair(&[]);
        let query = build_query(&leaf, &issuer, String::new(), None).unwrap();
        let now = SystemTime::now();
        // OCSPResponse { responseStatus tryLater }
        let try_later = [0x30, 0x03, 0x0a, 0x01, 0x03];
        let err = verify_response(&query, &try_later, &issuer, now).unwrap_err();
        assert_eq!(err, OcspError::Unsuccessful(3));
        assert!(err.to_string().contains("tryLater"));
        // successful but no responseBytes
        let empty = [0x30, 0x03, 0x0a, 0x01, 0x00];
        assert!(matches!(
            verify_response(&query, &empty, &issuer, now),
            Err(OcspError::Malformed(_))
        ));
        for junk in [&b""[..], b"\x30", b"\x30\x80\x00\x00", b"<html>busy</html>"] {
            assert!(matches!(
                verify_response(&query, junk, &issuer, now),
                Err(OcspError::Malformed(_))
            ));
        }
    }

    #[test]
    fn response_data_tolerates_an_explicit_v1() {
        let body = |with_version: bool| {
            let mut content = Vec::new();
            if with_version {
                content.extend(tlv(0xa0, &tlv(0x02, &[0]))); // [0] EXPLICIT INTEGER v1
            }
            content.extend(tlv(0xa1, &tlv(0x30, &[]))); // byName, an empty Name
            content.extend(tlv(0x18, b"20260101000000Z")); // producedAt
            content.extend(tlv(0x30, &[])); // no responses
            tlv(0x30, &content)
        };
        for with_version in [false, true] {
            let der = body(with_version);
            let data = ResponseData::from_der(&der).unwrap();
            assert_eq!(data.version, 0);
            assert!(data.responses.is_empty());
        }
    }

    fn verdict(status: CertStatus, now: SystemTime, next: Option<Duration>) -> Verdict {
        Verdict {
            status,
            this_update: now,
            next_update: next.map(|d| now + d),
            nonce_echoed: true,
        }
    }

    #[test]
    fn cache_honours_next_update_max_age_and_bound() {
        let (_dir, p) = test_pki();
        let issuer = first(&p.intermediate_cert());
        let a = first(&p.client_cert("ecdsa"));
        let b = first(&p.client_cert("revoked"));
        let c = first(&p.client_cert("machine"));
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let secs = |s| now + Duration::from_secs(s);

        let mut cache = Cache::new(2, Duration::from_secs(3600));
        let good = verdict(CertStatus::Good, now, Some(Duration::from_secs(60)));
        cache.put(&a, &issuer, &good, now);
        assert_eq!(cache.get(&a, &issuer, secs(59)), Some(good.clone()));
        assert_eq!(cache.get(&a, &issuer, secs(60)), None, "nextUpdate reached");
        assert!(cache.is_empty(), "expired entries are dropped on lookup");

        // max_age caps a far (or absent) nextUpdate.
        let mut short = Cache::new(4, Duration::from_secs(10));
        let revoked = verdict(CertStatus::Revoked { reason: None }, now, None);
        short.put(&b, &issuer, &revoked, now);
        assert_eq!(short.get(&b, &issuer, secs(9)), Some(revoked.clone()));
        assert_eq!(short.get(&b, &issuer, secs(10)), None);
        let far = verdict(CertStatus::Good, now, Some(Duration::from_secs(86_400)));
        short.put(&a, &issuer, &far, now);
        assert_eq!(short.get(&a, &issuer, secs(10)), None);

        // Unknown and already-stale verdicts are not kept.
        cache.put(&a, &issuer, &verdict(CertStatus::Unknown, now, None), now);
        let stale = Verdict {
            next_update: Some(now - Duration::from_secs(1)),
            ..good.clone()
        };
        cache.put(&b, &issuer, &stale, now);
        assert!(cache.is_empty());

        // Bounded: a third entry evicts the one expiring first.
        let long = verdict(CertStatus::Good, now, Some(Duration::from_secs(600)));
        cache.put(&a, &issuer, &long, now);
        cache.put(&b, &issuer, &good, now);
        cache.put(&c, &issuer, &long, now);
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&b, &issuer, now).is_none());
        assert!(cache.get(&a, &issuer, now).is_some());
        assert!(cache.get(&c, &issuer, now).is_some());
        // Replacing an existing entry does not evict anything.
        cache.put(&a, &issuer, &good, now);
        assert_eq!(cache.len(), 2);

        // Keyed on the issuer too, and garbage is simply a miss.
        let root = first(&p.ca_cert());
        assert!(cache.get(&a, &root, now).is_none());
        assert!(cache.get(b"junk", &issuer, now).is_none());
        assert!(
            Cache::new(0, Duration::from_secs(60))
                .get(&a, &issuer, now)
                .is_none()
        );
    }
}
