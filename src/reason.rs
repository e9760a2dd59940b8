//! Stable reason names: why a packet was dropped (RFC 2865 §3, RFC 3579 §3.2 silent discards) or
//! an authentication refused (Access-Reject with EAP-Failure, RFC 3579 §2.6.3).
//!
//! The names are a contract with operators (`reason=` in the log, the counters, the README's
//! list, an optional Reply-Message): [`ReasonCode::as_str`] must keep returning them exactly.
//! The enum sits below every layer that refuses something (x509 checks, TLS, authorization, the
//! session, the request path), so none of them spells a reason as a free string and a typo is a
//! compile error.

use std::fmt;

macro_rules! reason_codes {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// Why a packet was dropped or an authentication refused.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ReasonCode {
            $($(#[$doc])* $variant,)*
        }

        impl ReasonCode {
            /// Every reason, in declaration order.
            pub const ALL: &'static [ReasonCode] = &[$(ReasonCode::$variant,)*];

            /// The stable name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ReasonCode::$variant => $name,)*
                }
            }
        }
    };
}

reason_codes! {
    // Packets dropped without an answer.
    /// No `[[client]]` matches the source address.
    UnknownClient = "unknown_client",
    MalformedPacket = "malformed_packet",
    BadMessageAuthenticator = "bad_message_authenticator",
    UnsupportedCode = "unsupported_code",
    MissingMessageAuthenticator = "missing_message_authenticator",
    ProxyStateWithoutMessageAuthenticator = "proxy_state_without_message_authenticator",
    StatusServerWithoutMessageAuthenticator = "status_server_without_message_authenticator",
    EapMalformed = "eap_malformed",
    EapUnexpectedCode = "eap_unexpected_code",
    EapWrongIdentifier = "eap_wrong_identifier",
    SessionBusy = "session_busy",
    /// An Accounting-Request whose Request Authenticator is wrong (RFC 2866 §3: wrong secret).
    BadAccountingAuthenticator = "bad_accounting_authenticator",
    /// An accounting record could not be made durable; no Accounting-Response, the NAS retries.
    AccountingNotRecorded = "accounting_not_recorded",
    SessionNotDeciding = "session_not_deciding",
    // Conversations refused with Access-Reject.
    NoEapMessage = "no_eap_message",
    EapNoIdentity = "eap_no_identity",
    IdentityTooLong = "identity_too_long",
    TooManySessions = "too_many_sessions",
    TooManySessionsForClient = "too_many_sessions_for_client",
    UnknownState = "unknown_state",
    InternalError = "internal_error",
    EapNak = "eap_nak",
    EapIdentityInConversation = "eap_identity_in_conversation",
    EapUnexpectedMethod = "eap_unexpected_method",
    EapTlsMalformed = "eap_tls_malformed",
    /// `eap.max_reassembly_bytes_total` is held by other conversations' fragments.
    ReassemblyBudgetExceeded = "reassembly_budget_exceeded",
    EapTlsFragment = "eap_tls_fragment",
    EapTlsExpectedAck = "eap_tls_expected_ack",
    EapTlsUnexpectedData = "eap_tls_unexpected_data",
    EapTlsUnexpectedAck = "eap_tls_unexpected_ack",
    KeyDerivation = "key_derivation",
    // The TLS handshake (rustls's verdict on the chain, RFC 5280 §6).
    CertUntrusted = "cert_untrusted",
    CertExpired = "cert_expired",
    CertNotYetValid = "cert_not_yet_valid",
    CertRevoked = "cert_revoked",
    EkuMissing = "eku_missing",
    RevocationUnknown = "revocation_unknown",
    CrlExpired = "crl_expired",
    CertInvalid = "cert_invalid",
    NoClientCertificate = "no_client_certificate",
    PeerAlert = "peer_alert",
    TlsIncompatible = "tls_incompatible",
    TlsProtocolError = "tls_protocol_error",
    TlsError = "tls_error",
    // Checks after the handshake and the policy.
    IssuerNotAllowed = "issuer_not_allowed",
    KeyTooWeak = "key_too_weak",
    KeyUsageInvalid = "key_usage_invalid",
    CertUnparsable = "cert_unparsable",
    OcspUnknown = "ocsp_unknown",
    OcspUnavailable = "ocsp_unavailable",
    IdentityMismatch = "identity_mismatch",
    RuleReject = "rule_reject",
    NoMatchingRule = "no_matching_rule",
    // Stream transports (RadSec, RADIUS/TCP): why a connection was refused or closed.
    NasHandshakeFailed = "nas_handshake_failed",
    NasNotMatched = "nas_not_matched",
    StreamConnectionLimit = "stream_connection_limit",
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lets tests and callers compare with the stable name.
impl PartialEq<&str> for ReasonCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case() {
        let mut seen = std::collections::BTreeSet::new();
        for r in ReasonCode::ALL {
            let n = r.as_str();
            assert!(seen.insert(n), "{n} twice");
            assert!(
                n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{n}"
            );
        }
    }

    /// Every reason the README promises operators exists (README "Operating it": the `reason=`
    /// list, and the feature list).
    #[test]
    fn readme_reasons_exist() {
        let readme = include_str!("../README.md");
        let mut checked = 0;
        // Every `snake_case` code span in the paragraphs that list reasons.
        for para in readme
            .split("\n- ")
            .map(|item| item.split("\n\n").next().unwrap_or(item))
            .filter(|p| p.contains("reason=") || p.contains("stable reason name"))
        {
            for span in para.split('`').skip(1).step_by(2) {
                if !span.is_empty()
                    && span.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                    && span.contains('_')
                {
                    assert!(
                        ReasonCode::ALL.iter().any(|r| r.as_str() == span),
                        "README names reason {span:?}, which ReasonCode does not have"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked >= 15, "found only {checked} reasons in the README");
    }
}
