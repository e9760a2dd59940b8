//! The decision after the handshake, once the chain verified (RFC 5216 §5.3): the lookups a
//! conversation pauses for and what their answers mean. OCSP (RFC 6960; `[ocsp]` soft-fail and
//! CRL fallback applied here), then the directory (`[directory]`: the account must exist and be
//! enabled, its `objectSid` must match the certificate's SID under `sid_binding`, KB5014754;
//! its groups go to the rules). A resumed session takes the same path, so resumption is no
//! bypass. The shell performs each lookup and hands the answer to [`Session::resume`].

use std::sync::Arc;

use super::{
    Answer, Awaiting, DirectoryLookup, DirectoryVerdict, Lookup, Phase, Reason, ReasonCode,
    RevocationVerdict, Session, SessionContext, Step,
};
use crate::authz::RequestInfo;
use crate::tls::VerifiedPeer;

impl Session {
    /// The certificate is good (or OCSP is off): the directory, when configured, then the
    /// policy. A resumed session comes here too, so resumption never bypasses the directory
    /// (its answer is usually cached).
    pub(super) fn after_revocation(
        mut self,
        peer: VerifiedPeer,
        cx: &SessionContext,
        request: &RequestInfo<'_>,
        next_id: u8,
    ) -> (Option<Session>, Step) {
        if cx.directory.is_some() {
            let facts = self.directory_facts(&peer);
            self.directory_facts = Some(Arc::new(facts.clone()));
            let lookup = DirectoryLookup { facts };
            self.phase = Phase::Deciding {
                next_id,
                awaiting: Awaiting::Directory,
            };
            return (
                Some(self),
                Step::Lookup(Box::new(Lookup::Directory(lookup))),
            );
        }
        self.authorize_and_finish(peer, cx, request, next_id)
    }

    /// The certificate facts `user_filter` placeholders name (a certificate whose extensions
    /// cannot be read offers its identity only; its other fields are then absent).
    fn directory_facts(&self, peer: &VerifiedPeer) -> crate::directory::filter::FilterFacts {
        let mut facts = crate::directory::filter::FilterFacts {
            identity: std::str::from_utf8(&self.identity).ok().map(str::to_string),
            ..Default::default()
        };
        if let Ok(c) = peer.leaf().rule_facts() {
            facts.subject_cn = c.subject_cn.clone();
            facts.san_email = c.san_email.clone();
            facts.san_upn = c.san_upn.clone();
            facts.san_dns = c.san_dns.clone();
            facts.sid = c.sid.clone();
        }
        facts
    }

    /// KB5014754 strong certificate mapping: why the certificate's SID does not bind it to the
    /// account (`sid_binding`), or None when it does or the check does not apply.
    fn sid_mismatch(&self, cx: &SessionContext, account: Option<&str>) -> Option<String> {
        use crate::config::directory::SidBinding;
        let binding = cx.directory.as_ref().map(|d| d.sid_binding)?;
        let cert = self.directory_facts.as_ref().and_then(|f| f.sid.as_deref());
        match (binding, cert, account) {
            (SidBinding::Off, _, _) | (SidBinding::IfPresent, None, _) => None,
            (SidBinding::Required, None, _) => Some(
                "sid_binding = \"required\": the certificate carries no SID (extension \
                 1.3.6.1.4.1.311.25.2 or a tag:microsoft.com,2022-09-14:sid: URI)"
                    .to_string(),
            ),
            (_, Some(c), None) => Some(format!(
                "the certificate names SID {c}; the account has no objectSid"
            )),
            // SIDs compare ignoring case (`S-1-...` vs `s-1-...`).
            (_, Some(c), Some(a)) if !c.eq_ignore_ascii_case(a) => Some(format!(
                "the certificate names SID {c}; the account's objectSid is {a}"
            )),
            _ => None,
        }
    }

    /// Continues a conversation paused for a lookup with the shell's answer.
    pub fn resume(
        mut self,
        answer: Answer,
        cx: &SessionContext,
        request: &RequestInfo<'_>,
    ) -> (Option<Session>, Step) {
        let Phase::Deciding { next_id, awaiting } = self.phase else {
            return (Some(self), Step::Discard(ReasonCode::SessionNotDeciding));
        };
        self.phase = Phase::Receiving(self.fresh_reassembler());
        let this_id = next_id.wrapping_sub(1);
        let Some(peer) = self.peer.clone() else {
            return self.reject(
                this_id,
                Reason::new(ReasonCode::InternalError, "no peer to decide on"),
            );
        };
        match (awaiting, answer) {
            (Awaiting::Revocation, Answer::Revocation(verdict)) => {
                self.on_revocation(verdict, peer, cx, request, next_id)
            }
            (Awaiting::Directory, Answer::Directory(verdict)) => {
                self.on_directory(verdict, peer, cx, request, next_id)
            }
            _ => self.reject(
                this_id,
                Reason::new(
                    ReasonCode::InternalError,
                    "the answer is not for the lookup this conversation waits on",
                ),
            ),
        }
    }

    fn on_revocation(
        self,
        verdict: RevocationVerdict,
        peer: VerifiedPeer,
        cx: &SessionContext,
        request: &RequestInfo<'_>,
        next_id: u8,
    ) -> (Option<Session>, Step) {
        let this_id = next_id.wrapping_sub(1);
        let ocsp = cx.ocsp.clone().unwrap_or_default();
        match verdict {
            RevocationVerdict::Good => {}
            RevocationVerdict::Revoked(detail) => {
                return self.reject(
                    this_id,
                    Reason::new(ReasonCode::CertRevoked, format!("OCSP: {detail}")),
                );
            }
            RevocationVerdict::Unknown if !ocsp.soft_fail => {
                return self.reject(
                    this_id,
                    Reason::new(
                        ReasonCode::OcspUnknown,
                        "the responder does not know this certificate",
                    ),
                );
            }
            RevocationVerdict::Unavailable(detail) if !(ocsp.soft_fail || ocsp.crl_fallback) => {
                return self.reject(this_id, Reason::new(ReasonCode::OcspUnavailable, detail));
            }
            // Soft-fail, or the CRL check (done during the handshake) stands in for OCSP.
            RevocationVerdict::Unknown | RevocationVerdict::Unavailable(_) => {}
        }
        self.after_revocation(peer, cx, request, next_id)
    }

    /// The directory's answer: the account must exist and be enabled; its groups go to the
    /// rules (`directory_group`).
    fn on_directory(
        mut self,
        verdict: DirectoryVerdict,
        peer: VerifiedPeer,
        cx: &SessionContext,
        request: &RequestInfo<'_>,
        next_id: u8,
    ) -> (Option<Session>, Step) {
        let this_id = next_id.wrapping_sub(1);
        let (code, detail) = match verdict {
            DirectoryVerdict::Found { groups, sid } => {
                if let Some(detail) = self.sid_mismatch(cx, sid.as_deref()) {
                    return self.reject(
                        this_id,
                        Reason::new(ReasonCode::DirectorySidMismatch, detail),
                    );
                }
                self.directory_groups = Some(groups);
                return self.authorize_and_finish(peer, cx, request, next_id);
            }
            DirectoryVerdict::NotFound(d) => (ReasonCode::DirectoryUserNotFound, d),
            DirectoryVerdict::Disabled(d) => (ReasonCode::DirectoryAccountDisabled, d),
            DirectoryVerdict::Unavailable(d) => (ReasonCode::DirectoryUnavailable, d),
        };
        self.reject(this_id, Reason::new(code, detail))
    }
}
