//! Verifying the response (RFC 6960 §4.2.1, §4.2.2.2 who may sign it, §3.2 and §4.2.2.1
//! timeliness, RFC 8954 nonce) into a verdict; RFC 5280 §5.3.1 revocation reason names.

use super::*;

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

pub(super) fn response_status(status: AnyRef<'_>) -> Result<u8, OcspError> {
    match (status.tag(), status.value()) {
        (Tag::Enumerated, [value]) => Ok(*value),
        _ => Err(OcspError::Malformed(
            "responseStatus is not a small ENUMERATED".into(),
        )),
    }
}

/// Compares a response's CertID with ours. The hash algorithm must be SHA-1 (what we asked
/// with), its parameters NULL or absent alike.
pub(super) fn cert_id_matches(theirs: &CertIdAsn1<'_>, ours: &CertIdentity) -> bool {
    theirs.hash_algorithm.algorithm == oid::SHA1
        && theirs.issuer_name_hash == ours.issuer_name_hash.as_slice()
        && theirs.issuer_key_hash == ours.issuer_key_hash.as_slice()
        && theirs.serial_number.as_bytes() == ours.serial.as_slice()
}

/// Whether `candidate` is the one the ResponderID (RFC 6960 §4.2.1) names.
pub(super) fn responder_id_names(responder_id: AnyRef<'_>, candidate: &ParsedCert<'_>) -> bool {
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
pub(super) fn authorized_signer(
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
pub(super) fn delegated_by(
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

/// Whether `signed_der`, a certificate or a CRL (the same outer shape: RFC 5280 §4.1, §5.1),
/// carries a valid signature by the key in `issuer_spki_der` (a DER SubjectPublicKeyInfo).
/// Fetched CRLs are checked with it before use (`x509/crl_fetch.rs`).
pub fn signed_by(signed_der: &[u8], issuer_spki_der: &[u8]) -> bool {
    let (Ok(signed), Ok(spki)) = (
        SignedCertificate::from_der(signed_der),
        SubjectPublicKeyInfo::from_der(issuer_spki_der),
    ) else {
        return false;
    };
    let (Ok(tbs), Some(signature)) = (signed.tbs_certificate.to_der(), signed.signature.as_bytes())
    else {
        return false;
    };
    verify_signature(&signed.signature_algorithm, &spki, &tbs, signature).is_ok()
}

pub(super) enum SigError {
    Unsupported(String),
    Invalid,
}

/// Verifies `signature` over `message` with the key in `spki`, picking the algorithm from the
/// signature algorithm and the key's type and curve.
pub(super) fn verify_signature(
    algorithm: &AlgorithmIdentifier<'_>,
    spki: &SubjectPublicKeyInfo<'_>,
    message: &[u8],
    signature: &[u8],
) -> Result<(), SigError> {
    let chosen = verification_algorithm(algorithm, spki)?;
    let key = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| SigError::Unsupported("public key has unused bits".into()))?;
    UnparsedPublicKey::new(chosen, key)
        .verify(message, signature)
        .map_err(|_| SigError::Invalid)
}

pub(super) fn verification_algorithm(
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
pub(super) fn pss_algorithm(
    parameters: Option<AnyRef<'_>>,
) -> Option<&'static dyn VerificationAlgorithm> {
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
pub(super) fn check_nonce(
    query: &Query,
    extensions: Option<&[Extension<'_>]>,
) -> Result<bool, OcspError> {
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

pub(super) fn cert_status(status: AnyRef<'_>) -> Result<CertStatus, OcspError> {
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
pub(super) fn reason_name(value: &[u8]) -> String {
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
