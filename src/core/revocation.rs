//! What an OCSP answer (RFC 6960) means for the conversation waiting on it: the verdict the
//! session applies (`[ocsp]` soft-fail and CRL fallback are applied there), and which verified
//! responses are too old to trust. No I/O; `now` comes in.

use std::time::{Duration, SystemTime};

use crate::session::RevocationVerdict;
use crate::x509::ocsp::{CertStatus, Verdict};

/// A response with neither our nonce (RFC 8954) nor a nextUpdate could be a replay of any age:
/// it is trusted only when it was produced within this long.
const MAX_AGE_WITHOUT_NONCE: Duration = Duration::from_secs(300);

/// Whether a verified response is too old to trust (see [`MAX_AGE_WITHOUT_NONCE`]).
pub(crate) fn too_old_to_trust(verdict: &Verdict, now: SystemTime) -> bool {
    !verdict.nonce_echoed
        && verdict.next_update.is_none()
        && now
            .duration_since(verdict.this_update)
            .is_ok_and(|age| age > MAX_AGE_WITHOUT_NONCE)
}

pub(crate) fn verdict_of(status: &CertStatus) -> RevocationVerdict {
    match status {
        CertStatus::Good => RevocationVerdict::Good,
        CertStatus::Revoked { reason } => RevocationVerdict::Revoked(format!(
            "revoked ({})",
            reason.as_deref().unwrap_or("no reason given")
        )),
        CertStatus::Unknown => RevocationVerdict::Unknown,
    }
}
