//! Of a pool of instances sharing the accounting database, exactly one sends the
//! Disconnect-Request (RFC 5176 §3) for a session whose certificate was revoked: each instance
//! claims the session's open `radacct` row with a conditional UPDATE, and only the winner sends.
//! A claim whose holder died mid-exchange is free again after `coa.claim_timeout_secs`; an
//! exchange the NAS answered (ACK or NAK) is never taken over.

use std::time::Duration;

use tracing::{debug, info, warn};

use super::Coa;
use crate::core::stats::Counter;
use crate::escape::Escaped;
use crate::live::LiveSession;

/// The outcome of claiming a session's Disconnect in the shared database.
#[derive(Debug, PartialEq, Eq)]
enum Claim {
    /// This instance holds it: send.
    Won,
    /// Another instance holds a claim that has not timed out: skip.
    Elsewhere,
    /// No open row (not in the database yet, already stopped) or no database: send if this
    /// instance holds the session.
    Absent,
}

/// Claims one open session's Disconnect for this instance: only one instance of a pool wins the
/// conditional UPDATE; a claim older than `coa.claim_timeout_secs` is free again (to the claimer
/// too, so one instance does not resend on every CRL reload either). A finished exchange (ACK or
/// NAK) sets the claim time to `infinity`: never taken over.
const CLAIM: &str = "UPDATE radacct SET disconnect_claimed_by = $1, disconnect_claimed_at = now() \
     WHERE acctsessionid = $2 AND host(nasipaddress) = $3 AND acctstoptime IS NULL \
     AND (disconnect_claimed_by IS NULL OR disconnect_claimed_at < now() - make_interval(secs => $4))";

impl Coa {
    /// A revocation's Disconnect-Request, sent only when this instance claims the session in the
    /// shared database (or there is no database, or the session is not in it yet): of a pool,
    /// exactly one instance disconnects each session; the others skip it.
    pub(super) async fn disconnect_claimed(&self, s: LiveSession, why: &'static str) {
        match self.claim(&s).await {
            Claim::Won | Claim::Absent => {
                self.disconnect_and_settle(s, why).await;
            }
            Claim::Elsewhere => {
                self.core.stats.incr(Counter::DisconnectClaimedElsewhere);
                debug!(
                    nas = %s.nas_addr, acct_session_id = %Escaped(&s.acct_session_id),
                    "Disconnect-Request skipped: another instance claimed the session"
                );
                // Once more after the claim timeout: if its holder died mid-exchange (or the NAS
                // never answered it) the claim is free and this instance takes it over.
                let wait = self.config.claim_timeout_secs.saturating_add(1);
                tokio::time::sleep(Duration::from_secs(wait)).await;
                if self.claim(&s).await == Claim::Won {
                    info!(
                        nas = %s.nas_addr, acct_session_id = %Escaped(&s.acct_session_id),
                        "taking over the Disconnect claim of another instance (unfinished after {wait} s)"
                    );
                    self.disconnect_and_settle(s, why).await;
                }
            }
        }
    }

    /// Sends, and when the NAS answered (ACK or NAK) marks the claim finished, so no instance
    /// takes it over.
    async fn disconnect_and_settle(&self, s: LiveSession, why: &'static str) {
        let key = (
            String::from_utf8_lossy(&s.acct_session_id).into_owned(),
            s.nas_addr.to_string(),
        );
        let outcome = self.disconnect(s, why).await;
        if !outcome.starts_with("Disconnect-") {
            return;
        }
        let Some(db) = &self.db else {
            return;
        };
        let Ok((client, _connection)) = crate::server::acct_db::connect(db).await else {
            return;
        };
        if let Err(e) = client
            .execute(
                "UPDATE radacct SET disconnect_claimed_at = 'infinity' \
                 WHERE acctsessionid = $1 AND host(nasipaddress) = $2 \
                 AND disconnect_claimed_by = $3 AND acctstoptime IS NULL",
                &[&key.0, &key.1, &self.instance],
            )
            .await
        {
            debug!("Disconnect claim not marked finished: {e}");
        }
    }

    /// Claims the session's open `radacct` row. A database error counts as `Absent` (send
    /// anyway: a duplicate is answered with a NAK, a missed one leaves a revoked session on).
    async fn claim(&self, s: &LiveSession) -> Claim {
        let Some(db) = &self.db else {
            return Claim::Absent;
        };
        let sid = String::from_utf8_lossy(&s.acct_session_id).into_owned();
        let nas = s.nas_addr.to_string();
        let (client, _connection) = match crate::server::acct_db::connect(db).await {
            Ok(c) => c,
            Err(e) => {
                warn!("Disconnect claim not taken (sending anyway): {e}");
                return Claim::Absent;
            }
        };
        #[allow(clippy::cast_precision_loss)] // seconds, far below 2^52
        let timeout = self.config.claim_timeout_secs as f64;
        match client
            .execute(CLAIM, &[&self.instance, &sid, &nas, &timeout])
            .await
        {
            Ok(n) if n > 0 => return Claim::Won,
            Ok(_) => {}
            Err(e) => {
                warn!("Disconnect claim not taken (sending anyway): {e}");
                return Claim::Absent;
            }
        }
        // Nothing updated: claimed by another instance, or not (yet) in the database.
        match client
            .query_opt(
                "SELECT 1 FROM radacct WHERE acctsessionid = $1 AND host(nasipaddress) = $2 \
                 AND acctstoptime IS NULL LIMIT 1",
                &[&sid, &nas],
            )
            .await
        {
            Ok(Some(_)) => Claim::Elsewhere,
            Ok(None) => Claim::Absent,
            Err(e) => {
                warn!("Disconnect claim not checked (sending anyway): {e}");
                Claim::Absent
            }
        }
    }
}
