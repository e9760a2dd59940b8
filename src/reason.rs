//! Stable reason names: why a packet was dropped (RFC 2865 §3, RFC 3579 §3.2 silent discards) or
//! an authentication refused (Access-Reject with EAP-Failure, RFC 3579 §2.6.3).
//!
//! The names are a contract with operators (`reason=` in the log, the counters, the README's
//! list, an optional Reply-Message): [`ReasonCode::as_str`] must keep returning them exactly.
//! Each reason also carries its [`ReasonKind`] (drop, reject, refused connection), declared next
//! to its name, so the metrics and the README tables follow the enum instead of a copied list.
//!
//! The enum sits below every layer that refuses something (x509 checks, TLS, authorization, the
//! session, the request path), so none of them spells a reason as a free string and a typo is a
//! compile error.

use std::fmt;

/// What a reason ends in: the three ways the server says no.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReasonKind {
    /// The packet is discarded without an answer (RFC 2865 §3, RFC 3579 §3.2, RFC 2866 §4.1):
    /// the NAS retransmits or fails over. Counted in `certradius_packets_dropped_total{reason}`.
    Dropped,
    /// The authentication is refused with Access-Reject and EAP-Failure (RFC 3579 §2.6.3).
    /// Counted in `certradius_authentications_total{outcome="reject",reason}`.
    Rejected,
    /// A RadSec (RFC 6614) or RADIUS/TCP (RFC 6613) connection is refused or closed: it names
    /// the log line; the connection counters (`certradius_connections_total{outcome}`) count it.
    ConnectionRefused,
}

macro_rules! reason_codes {
    ($($(#[$doc:meta])* $variant:ident = $name:literal => $kind:ident,)*) => {
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

            /// Whether the server drops, rejects or refuses a connection for this reason.
            pub const fn kind(self) -> ReasonKind {
                match self {
                    $(ReasonCode::$variant => ReasonKind::$kind,)*
                }
            }

            /// True for a reason that ends in a silent discard ([`ReasonKind::Dropped`]).
            pub const fn is_drop(self) -> bool {
                matches!(self.kind(), ReasonKind::Dropped)
            }
        }
    };
}

reason_codes! {
    // Packets dropped without an answer.
    /// No `[[client]]` matches the source address.
    UnknownClient = "unknown_client" => Dropped,
    MalformedPacket = "malformed_packet" => Dropped,
    BadMessageAuthenticator = "bad_message_authenticator" => Dropped,
    UnsupportedCode = "unsupported_code" => Dropped,
    MissingMessageAuthenticator = "missing_message_authenticator" => Dropped,
    ProxyStateWithoutMessageAuthenticator = "proxy_state_without_message_authenticator" => Dropped,
    StatusServerWithoutMessageAuthenticator = "status_server_without_message_authenticator" => Dropped,
    EapMalformed = "eap_malformed" => Dropped,
    EapUnexpectedCode = "eap_unexpected_code" => Dropped,
    EapWrongIdentifier = "eap_wrong_identifier" => Dropped,
    SessionBusy = "session_busy" => Dropped,
    /// An Accounting-Request whose Request Authenticator is wrong (RFC 2866 §3: wrong secret).
    BadAccountingAuthenticator = "bad_accounting_authenticator" => Dropped,
    /// An accounting record could not be made durable; no Accounting-Response, the NAS retries.
    AccountingNotRecorded = "accounting_not_recorded" => Dropped,
    SessionNotDeciding = "session_not_deciding" => Dropped,
    /// At `eap.max_sessions` a new conversation is dropped, not rejected: its NAS retransmits
    /// and gets in once conversations finish, where a Reject would fail the supplicant at once.
    TooManySessions = "too_many_sessions" => Dropped,
    TooManySessionsForClient = "too_many_sessions_for_client" => Dropped,
    // Conversations refused with Access-Reject.
    NoEapMessage = "no_eap_message" => Rejected,
    /// A MAC Authentication Bypass request (User-Name a MAC, a PAP or CHAP password) while
    /// `[mab] enabled = false`.
    MabDisabled = "mab_disabled" => Rejected,
    /// A MAB request for a MAC the allow file lists neither itself nor by vendor prefix.
    MabUnknownDevice = "mab_unknown_device" => Rejected,
    /// A MAB request whose password is malformed or is not its MAC (or the secret differs).
    MabBadPassword = "mab_bad_password" => Rejected,
    EapNoIdentity = "eap_no_identity" => Rejected,
    IdentityTooLong = "identity_too_long" => Rejected,
    UnknownState = "unknown_state" => Rejected,
    InternalError = "internal_error" => Rejected,
    EapNak = "eap_nak" => Rejected,
    EapIdentityInConversation = "eap_identity_in_conversation" => Rejected,
    EapUnexpectedMethod = "eap_unexpected_method" => Rejected,
    EapTlsMalformed = "eap_tls_malformed" => Rejected,
    /// `eap.max_reassembly_bytes_total` is held by other conversations' fragments.
    ReassemblyBudgetExceeded = "reassembly_budget_exceeded" => Rejected,
    EapTlsFragment = "eap_tls_fragment" => Rejected,
    EapTlsExpectedAck = "eap_tls_expected_ack" => Rejected,
    EapTlsUnexpectedData = "eap_tls_unexpected_data" => Rejected,
    EapTlsUnexpectedAck = "eap_tls_unexpected_ack" => Rejected,
    KeyDerivation = "key_derivation" => Rejected,
    // The TLS handshake (rustls's verdict on the chain, RFC 5280 §6).
    CertUntrusted = "cert_untrusted" => Rejected,
    CertExpired = "cert_expired" => Rejected,
    CertNotYetValid = "cert_not_yet_valid" => Rejected,
    CertRevoked = "cert_revoked" => Rejected,
    EkuMissing = "eku_missing" => Rejected,
    RevocationUnknown = "revocation_unknown" => Rejected,
    CrlExpired = "crl_expired" => Rejected,
    CertInvalid = "cert_invalid" => Rejected,
    NoClientCertificate = "no_client_certificate" => Rejected,
    /// A fatal alert from the supplicant about our certificate (unknown_ca, bad_certificate,
    /// certificate_unknown, unsupported_certificate, certificate_expired, access_denied): it
    /// refused the server certificate. The alert's name is in the detail.
    SupplicantRejectedServerCertificate = "supplicant_rejected_server_certificate" => Rejected,
    /// The supplicant and the NAS's TLS versions (`tls_min_version` / `tls_max_version`) have
    /// none in common.
    TlsVersionMismatch = "tls_version_mismatch" => Rejected,
    /// The chain verified but the supplicant's CertificateVerify signature did not (the
    /// scheme in the detail).
    ClientSignatureInvalid = "client_signature_invalid" => Rejected,
    /// Any other fatal alert from the supplicant (its name in the detail).
    PeerAlert = "peer_alert" => Rejected,
    TlsIncompatible = "tls_incompatible" => Rejected,
    TlsProtocolError = "tls_protocol_error" => Rejected,
    TlsError = "tls_error" => Rejected,
    // Checks after the handshake and the policy.
    IssuerNotAllowed = "issuer_not_allowed" => Rejected,
    KeyTooWeak = "key_too_weak" => Rejected,
    KeyUsageInvalid = "key_usage_invalid" => Rejected,
    CertUnparsable = "cert_unparsable" => Rejected,
    OcspUnknown = "ocsp_unknown" => Rejected,
    OcspUnavailable = "ocsp_unavailable" => Rejected,
    IdentityMismatch = "identity_mismatch" => Rejected,
    RuleReject = "rule_reject" => Rejected,
    NoMatchingRule = "no_matching_rule" => Rejected,
    // `[directory]`: the account the certificate names, looked up at authentication time.
    /// No entry (or several) matches `user_filter`, or the certificate lacks a field it names.
    DirectoryUserNotFound = "directory_user_not_found" => Rejected,
    /// The entry does not match `enabled_filter`.
    DirectoryAccountDisabled = "directory_account_disabled" => Rejected,
    /// Every URL failed (connect, bind, search or `timeout_ms`) and no usable cached answer.
    DirectoryUnavailable = "directory_unavailable" => Rejected,
    /// The certificate's SID (KB5014754) differs from the account's `objectSid`, or is missing
    /// under `sid_binding = "required"`.
    DirectorySidMismatch = "directory_sid_mismatch" => Rejected,
    // Stream transports (RadSec, RADIUS/TCP): why a connection was refused or closed.
    NasHandshakeFailed = "nas_handshake_failed" => ConnectionRefused,
    NasNotMatched = "nas_not_matched" => ConnectionRefused,
    StreamConnectionLimit = "stream_connection_limit" => ConnectionRefused,
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

    /// The `ReasonCode::Name`s in `text`.
    fn reasons_named(text: &str) -> Vec<ReasonCode> {
        text.split("ReasonCode::")
            .skip(1)
            .filter_map(|rest| {
                let name: String = rest
                    .chars()
                    .take_while(char::is_ascii_alphanumeric)
                    .collect();
                ReasonCode::ALL
                    .iter()
                    .copied()
                    .find(|r| format!("{r:?}") == name)
            })
            .collect()
    }

    /// The arguments of every call `name(...)` in `source` (up to the matching parenthesis).
    fn call_arguments<'a>(source: &'a str, name: &str) -> Vec<&'a str> {
        let mut calls = Vec::new();
        let mut rest = source;
        while let Some(at) = rest.find(name) {
            let args = &rest[at + name.len()..];
            let mut depth = 1;
            let end = args
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map_or(args.len(), |(i, _)| i);
            calls.push(&args[..end]);
            rest = &args[end..];
        }
        calls
    }

    /// Every reason the request path drops a packet for (`drop_packet(..)` in `core/`, a
    /// `Step::Discard(..)` from the session) is declared a drop: a reason declared otherwise
    /// would be missing from `certradius_packets_dropped_total`.
    #[test]
    fn reasons_on_drop_paths_are_drops() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut found = std::collections::BTreeSet::new();
        for dir in ["core", "session"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let source = std::fs::read_to_string(&path).unwrap();
                // Only the production part: tests may drop for any reason they like.
                let source = source.split("#[cfg(test)]").next().unwrap_or("");
                for args in call_arguments(source, "drop_packet(")
                    .into_iter()
                    .chain(call_arguments(source, "Discard("))
                {
                    for r in reasons_named(args) {
                        assert!(
                            r.is_drop(),
                            "{} drops a packet for {r}, declared {:?}",
                            path.display(),
                            r.kind()
                        );
                        found.insert(r);
                    }
                }
            }
        }
        assert!(found.len() >= 8, "found only {found:?} on drop paths");
        // Chosen by a variable in core/handle.rs, so not seen by the scan above: at a session
        // limit a new conversation is dropped (the NAS retransmits), never rejected.
        assert!(ReasonCode::TooManySessions.is_drop());
        assert!(ReasonCode::TooManySessionsForClient.is_drop());
    }

    #[test]
    fn kinds_follow_the_protocol() {
        // RFC 3579 §3.2 and RFC 2866 §3: a packet that fails authentication is discarded.
        assert!(ReasonCode::BadMessageAuthenticator.is_drop());
        assert!(ReasonCode::BadAccountingAuthenticator.is_drop());
        // RFC 2866 §4.1: no Accounting-Response until the record is stored.
        assert!(ReasonCode::AccountingNotRecorded.is_drop());
        assert_eq!(ReasonCode::CertRevoked.kind(), ReasonKind::Rejected);
        assert_eq!(
            ReasonCode::NasHandshakeFailed.kind(),
            ReasonKind::ConnectionRefused
        );
    }

    /// The README's row for `certradius_packets_dropped_total` names only reasons that are
    /// drops (its other values, such as `overloaded`, are counters of the request queue).
    #[test]
    fn readme_drop_reasons_are_drops() {
        let readme = include_str!("../README.md");
        let row = readme
            .lines()
            .find(|l| l.starts_with("| `certradius_packets_dropped_total`"))
            .expect("README has a row for certradius_packets_dropped_total");
        let mut checked = 0;
        for span in row.split('`').skip(1).step_by(2) {
            if let Some(r) = ReasonCode::ALL.iter().find(|r| r.as_str() == span) {
                assert!(r.is_drop(), "README lists {r} as a dropped packet");
                checked += 1;
            }
        }
        assert!(
            checked >= 3,
            "found only {checked} reasons in the README row"
        );
    }
}
