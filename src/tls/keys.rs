//! EAP-TLS key derivation: RFC 5216 §2.3 (TLS 1.2) and RFC 9190 §2.3 (TLS 1.3).
//!
//! Both versions are one TLS exporter call (RFC 5705 / RFC 8446 §7.5) producing 128 octets:
//! MSK = the first 64, EMSK = the next 64.
//! - TLS 1.2: label "client EAP encryption", no context. RFC 5705 without a context is exactly the
//!   RFC 5216 PRF(master_secret, label, client.random || server.random).
//! - TLS 1.3: label "EXPORTER_EAP_TLS_Key_Material", context the single octet 0x0D (the EAP-TLS
//!   Type code).
//!
//! Key material lives in [`SessionKeys`], whose `Debug` prints nothing secret.

use std::fmt;

use rustls::ProtocolVersion;

const LABEL_TLS12: &[u8] = b"client EAP encryption";
const LABEL_TLS13: &[u8] = b"EXPORTER_EAP_TLS_Key_Material";
const CONTEXT_TLS13: &[u8] = &[13];

#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    msk: [u8; 64],
    emsk: [u8; 64],
}

impl SessionKeys {
    pub fn msk(&self) -> &[u8; 64] {
        &self.msk
    }
    pub fn emsk(&self) -> &[u8; 64] {
        &self.emsk
    }
    /// RFC 2548 MS-MPPE-Recv-Key: MSK octets 0..32 (RFC 5216 §2.3 / RFC 3748 usage by RADIUS).
    pub fn mppe_recv_key(&self) -> &[u8] {
        self.msk.split_at(32).0
    }
    /// RFC 2548 MS-MPPE-Send-Key: MSK octets 32..64.
    pub fn mppe_send_key(&self) -> &[u8] {
        self.msk.split_at(32).1
    }
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKeys(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no keys before the TLS handshake completes")]
    Handshaking,
    #[error("EAP-TLS is defined for TLS 1.2 and 1.3 only, not {0:?}")]
    UnsupportedVersion(ProtocolVersion),
    #[error("TLS exporter failed: {0}")]
    Export(rustls::Error),
}

/// Derives the EAP-TLS keys from a finished connection, client side or server side.
pub fn derive<D>(conn: &rustls::ConnectionCommon<D>) -> Result<SessionKeys, KeyError> {
    if conn.is_handshaking() {
        return Err(KeyError::Handshaking);
    }
    let (label, context) = match conn.protocol_version() {
        Some(ProtocolVersion::TLSv1_2) => (LABEL_TLS12, None),
        Some(ProtocolVersion::TLSv1_3) => (LABEL_TLS13, Some(CONTEXT_TLS13)),
        Some(v) => return Err(KeyError::UnsupportedVersion(v)),
        None => return Err(KeyError::Handshaking),
    };
    let out = conn
        .export_keying_material([0u8; 128], label, context)
        .map_err(KeyError::Export)?;
    let (msk, emsk) = out.split_at(64);
    let mut keys = SessionKeys {
        msk: [0; 64],
        emsk: [0; 64],
    };
    keys.msk.copy_from_slice(msk);
    keys.emsk.copy_from_slice(emsk);
    Ok(keys)
}
