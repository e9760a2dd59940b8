//! One server-side TLS connection driven in memory from EAP-TLS messages (RFC 5216 §2.1,
//! RFC 9190 §2.1): whole reassembled TLS messages in, the server's flight out; failures with a
//! stable reason.

use std::fmt;
use std::io::Write;
use std::sync::Arc;

use rustls::pki_types::UnixTime;
use rustls::server::danger::ClientCertVerifier;
use rustls::{CertificateError, ProtocolVersion, ServerConnection};

use super::keys::{self, KeyError, SessionKeys};
use super::verified::{self, VerifiedChains, VerifiedPeer};
use crate::reason::ReasonCode;

/// Why a handshake failed, with a stable machine-readable name for logs and counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFailure {
    pub reason: ReasonCode,
    pub detail: String,
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
            E::AlertReceived(_) => ReasonCode::PeerAlert,
            E::PeerIncompatible(_) => ReasonCode::TlsIncompatible,
            E::InvalidMessage(_) | E::InappropriateMessage { .. } => ReasonCode::TlsProtocolError,
            _ => ReasonCode::TlsError,
        };
        TlsFailure {
            reason,
            detail: e.to_string(),
        }
    }
}

/// One server-side TLS connection fed from EAP-TLS messages.
pub struct TlsEngine {
    conn: Box<ServerConnection>,
}

impl TlsEngine {
    pub fn new(config: Arc<rustls::ServerConfig>) -> Result<Self, TlsFailure> {
        let conn = ServerConnection::new(config).map_err(|e| TlsFailure::from(&e))?;
        Ok(TlsEngine {
            conn: Box::new(conn),
        })
    }

    /// Feeds a whole TLS message (one reassembled EAP-TLS payload) to rustls. `now` is the time
    /// rustls judges certificates, CRLs and tickets by (see `tls::clock`): the conversation's,
    /// never the system clock.
    pub fn feed(&mut self, mut data: &[u8], now: UnixTime) -> Result<(), TlsFailure> {
        let _time = super::clock::enter(now);
        while !data.is_empty() {
            match self.conn.read_tls(&mut data) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    return Err(TlsFailure {
                        reason: ReasonCode::TlsProtocolError,
                        detail: e.to_string(),
                    });
                }
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
            .map_err(|e| TlsFailure {
                reason: ReasonCode::TlsError,
                detail: e.to_string(),
            })
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
