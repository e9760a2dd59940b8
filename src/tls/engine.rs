//! One server-side TLS connection driven in memory from EAP-TLS messages (RFC 5216 §2.1,
//! RFC 9190 §2.1): whole reassembled TLS messages in, the server's flight out; failures with a
//! stable reason.

use std::fmt;
use std::io::Write;
use std::sync::Arc;

use rustls::pki_types::UnixTime;
use rustls::server::danger::ClientCertVerifier;
use rustls::{CertificateError, ProtocolVersion, ServerConnection};

use super::client_verifier::{self, CertName, SignatureOutcome};
use super::keys::{self, KeyError, SessionKeys};
use super::verified::{self, VerifiedChains, VerifiedPeer};
use crate::reason::ReasonCode;

/// Why a handshake failed, with a stable machine-readable name for logs and counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFailure {
    pub reason: ReasonCode,
    pub detail: String,
    /// The client certificate the verifier refused, when that is what failed.
    pub cert: Option<Arc<CertName>>,
}

impl TlsFailure {
    pub fn new(reason: ReasonCode, detail: impl Into<String>) -> Self {
        TlsFailure {
            reason,
            detail: detail.into(),
            cert: None,
        }
    }
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

impl From<&rustls::Error> for TlsFailure {
    fn from(e: &rustls::Error) -> Self {
        use rustls::Error as E;
        let reason = match e {
            E::InvalidCertificate(c) => match c {
                CertificateError::UnknownIssuer => ReasonCode::CertUntrusted,
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    ReasonCode::CertExpired
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    ReasonCode::CertNotYetValid
                }
                CertificateError::Revoked => ReasonCode::CertRevoked,
                CertificateError::InvalidPurpose
                | CertificateError::InvalidPurposeContext { .. } => ReasonCode::EkuMissing,
                CertificateError::UnknownRevocationStatus => ReasonCode::RevocationUnknown,
                CertificateError::ExpiredRevocationList
                | CertificateError::ExpiredRevocationListContext { .. } => ReasonCode::CrlExpired,
                _ => ReasonCode::CertInvalid,
            },
            E::NoCertificatesPresented => ReasonCode::NoClientCertificate,
            E::AlertReceived(alert) => return alert_failure(*alert),
            E::PeerIncompatible(
                rustls::PeerIncompatible::Tls12NotOffered
                | rustls::PeerIncompatible::Tls12NotOfferedOrEnabled
                | rustls::PeerIncompatible::SupportedVersionsExtensionRequired,
            ) => ReasonCode::TlsVersionMismatch,
            E::PeerIncompatible(_) => ReasonCode::TlsIncompatible,
            E::InvalidMessage(_) | E::InappropriateMessage { .. } => ReasonCode::TlsProtocolError,
            _ => ReasonCode::TlsError,
        };
        TlsFailure::new(reason, e.to_string())
    }
}

/// A fatal alert from the supplicant (RFC 8446 §6.2, RFC 5246 §7.2.2). Those about a
/// certificate are about *ours*: the supplicant refused the server certificate (wrong CA
/// pinned, expired, a renewed certificate it has not learned). `protocol_version` means it
/// shares no TLS version with us.
fn alert_failure(alert: rustls::AlertDescription) -> TlsFailure {
    use rustls::AlertDescription as A;
    let name = alert_name(alert);
    let (reason, detail) = match alert {
        A::UnknownCA
        | A::BadCertificate
        | A::CertificateUnknown
        | A::UnsupportedCertificate
        | A::CertificateExpired
        | A::CertificateRevoked
        | A::AccessDenied => (
            ReasonCode::SupplicantRejectedServerCertificate,
            format!("the supplicant sent the alert {name}: it refused the server certificate"),
        ),
        A::ProtocolVersion => (
            ReasonCode::TlsVersionMismatch,
            format!("the supplicant sent the alert {name}: no TLS version in common"),
        ),
        _ => (
            ReasonCode::PeerAlert,
            format!("the supplicant sent the alert {name}"),
        ),
    };
    TlsFailure::new(reason, detail)
}

/// The alert's name as RFC 8446 §6 and the IANA registry spell it.
fn alert_name(alert: rustls::AlertDescription) -> String {
    use rustls::AlertDescription as A;
    let name = match alert {
        A::UnknownCA => "unknown_ca",
        A::BadCertificate => "bad_certificate",
        A::CertificateUnknown => "certificate_unknown",
        A::UnsupportedCertificate => "unsupported_certificate",
        A::CertificateExpired => "certificate_expired",
        A::CertificateRevoked => "certificate_revoked",
        A::AccessDenied => "access_denied",
        A::ProtocolVersion => "protocol_version",
        A::HandshakeFailure => "handshake_failure",
        A::DecryptError => "decrypt_error",
        A::DecodeError => "decode_error",
        A::IllegalParameter => "illegal_parameter",
        A::InternalError => "internal_error",
        A::InsufficientSecurity => "insufficient_security",
        A::UnexpectedMessage => "unexpected_message",
        A::BadRecordMac => "bad_record_mac",
        A::CertificateRequired => "certificate_required",
        A::UserCanceled => "user_canceled",
        A::CloseNotify => "close_notify",
        other => return format!("{other:?}"),
    };
    name.to_string()
}

/// One server-side TLS connection fed from EAP-TLS messages.
pub struct TlsEngine {
    conn: Box<ServerConnection>,
    /// The scheme of the client's verified CertificateVerify (see `client_verifier.rs`).
    client_signature: Option<rustls::SignatureScheme>,
}

impl TlsEngine {
    pub fn new(config: Arc<rustls::ServerConfig>) -> Result<Self, TlsFailure> {
        let conn = ServerConnection::new(config).map_err(|e| TlsFailure::from(&e))?;
        Ok(TlsEngine {
            conn: Box::new(conn),
            client_signature: None,
        })
    }

    /// Feeds a whole TLS message (one reassembled EAP-TLS payload) to rustls. `now` is the time
    /// rustls judges certificates, CRLs and tickets by (see `tls::clock`): the conversation's,
    /// never the system clock.
    pub fn feed(&mut self, data: &[u8], now: UnixTime) -> Result<(), TlsFailure> {
        let _time = super::clock::enter(now);
        client_verifier::take_refused();
        client_verifier::take_signature();
        let result = self.feed_records(data);
        let signature = client_verifier::take_signature();
        if let Some(SignatureOutcome::Verified(scheme)) = signature {
            self.client_signature = Some(scheme);
        }
        result.map_err(|mut failure| {
            failure.cert = client_verifier::take_refused();
            match signature {
                Some(SignatureOutcome::Invalid(scheme)) => {
                    failure.reason = ReasonCode::ClientSignatureInvalid;
                    failure.detail = format!(
                        "the supplicant's CertificateVerify signature ({}) does not verify \
                         (a TPM-held key making RSA-PSS with the maximum salt length does this: \
                         see the README, Troubleshooting a device): {}",
                        client_verifier::scheme_name(scheme),
                        failure.detail
                    );
                }
                Some(SignatureOutcome::NotAllowed(_)) => {
                    failure.reason = ReasonCode::TlsIncompatible;
                }
                Some(SignatureOutcome::Verified(_)) | None => {}
            }
            failure
        })
    }

    fn feed_records(&mut self, mut data: &[u8]) -> Result<(), TlsFailure> {
        while !data.is_empty() {
            match self.conn.read_tls(&mut data) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(TlsFailure::new(ReasonCode::TlsProtocolError, e.to_string())),
            }
            self.conn
                .process_new_packets()
                .map_err(|e| TlsFailure::from(&e))?;
        }
        Ok(())
    }

    /// Everything rustls wants to send: a handshake flight, or the alert after a failure.
    pub fn take_output(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while self.conn.wants_write() {
            // Writing into a Vec cannot fail; a zero-length write would mean nothing is queued.
            match self.conn.write_tls(&mut out) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        out
    }

    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// RFC 9190 §2.5: one octet 0x00 of application data tells a TLS 1.3 peer the server will
    /// send no more handshake messages.
    pub fn queue_success_indication(&mut self) -> Result<(), TlsFailure> {
        self.conn
            .writer()
            .write_all(&[0x00])
            .map_err(|e| TlsFailure::new(ReasonCode::TlsError, e.to_string()))
    }

    /// The peer, once the handshake is complete and every check has run: for a full handshake
    /// rustls verified the chain; a resumed session's chain (restored from the ticket or the
    /// session cache, not verified again by rustls) is verified again here at `now`.
    pub fn verified_peer(
        &self,
        verifier: &dyn ClientCertVerifier,
        verified: &VerifiedChains,
        now: UnixTime,
    ) -> Result<VerifiedPeer, TlsFailure> {
        verified::after_handshake(&self.conn, verifier, verified, now)
    }

    pub fn keys(&self) -> Result<SessionKeys, KeyError> {
        keys::derive(&self.conn)
    }

    pub fn version(&self) -> Option<ProtocolVersion> {
        self.conn.protocol_version()
    }

    /// Whether this handshake resumed an earlier session (no certificate was presented).
    pub fn is_resumed(&self) -> bool {
        self.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
    }

    pub fn is_tls13(&self) -> bool {
        self.conn.protocol_version() == Some(ProtocolVersion::TLSv1_3)
    }

    /// The key exchange group of the handshake (none for a resumed TLS 1.2 session).
    pub fn key_exchange_group(&self) -> Option<rustls::NamedGroup> {
        self.conn.negotiated_key_exchange_group().map(|g| g.name())
    }

    /// The scheme the client signed its CertificateVerify with, once verified (none for a
    /// resumed session: no CertificateVerify).
    pub fn client_signature_scheme(&self) -> Option<rustls::SignatureScheme> {
        self.client_signature
    }

    pub fn cipher_suite(&self) -> Option<rustls::CipherSuite> {
        self.conn.negotiated_cipher_suite().map(|s| s.suite())
    }
}

/// "TLSv1.2" / "TLSv1.3" for log lines.
pub fn version_name(v: Option<ProtocolVersion>) -> &'static str {
    match v {
        Some(ProtocolVersion::TLSv1_2) => "TLSv1.2",
        Some(ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(_) => "other",
        None => "none",
    }
}
