//! Disconnect on revocation (RFC 5176), the shell half: the live-session table behind a lock,
//! fed by the core's [`AuthObserver`] hook and by durable accounting records, checked against the
//! CRLs each time they are reloaded and against OCSP answers, and the UDP exchange with the NAS.
//!
//! A Disconnect-Request goes to the address the session's accounting came from, on its client's
//! `coa_port`, signed with that client's secret (`radius::coa`). It is retransmitted unchanged
//! (same Identifier and Authenticator, RFC 5080 §2.2.1) after `coa.timeout_ms`, doubling each
//! time, `coa.retries` times; answers that do not verify are ignored and logged.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tracing::{info, warn};

use crate::accounting::AcctRecord;
use crate::config::CoaConfig;
use crate::core::Core;
use crate::core::events::{AuthEvent, AuthObserver};
use crate::core::guard::lock;
use crate::core::stats::Counter;
use crate::escape::{Escaped, or_dash};
use crate::live::{Live, LiveSession};
use crate::radius::coa::{self, Answer, Target};

/// Live sessions and the Disconnect-Requests sent for them.
pub struct Coa {
    core: Arc<Core>,
    live: Mutex<Live>,
    config: CoaConfig,
    /// `accounting.database_url`: the open sessions of every instance (and of this one before
    /// a restart) are in `radacct`, with the certificate they were authenticated with.
    db: Option<crate::config::database::DatabaseTarget>,
}

impl Coa {
    pub fn new(
        core: Arc<Core>,
        config: &CoaConfig,
        database_url: Option<&crate::config::Secret>,
    ) -> Arc<Self> {
        Arc::new(Coa {
            core,
            live: Mutex::new(Live::default()),
            config: config.clone(),
            // The URL was validated at load; one that does not parse leaves the database out.
            db: database_url.and_then(|u| crate::config::database::parse(u.expose()).ok()),
        })
    }

    /// The certificate (serial, issuer) an accounting record's session was authenticated with.
    pub fn certificate_of(&self, record: &AcctRecord) -> Option<(String, String)> {
        lock(&self.live)
            .link_of(record)
            .and_then(|l| l.certificate.clone())
            .map(|c| (c.serial, c.issuer))
    }

    /// A durable accounting record updates the live sessions.
    pub fn observe(&self, record: &AcctRecord) {
        lock(&self.live).observe(record, super::monotonic_clock());
    }

    /// The live sessions (for the operator view).
    pub fn sessions(&self) -> Vec<LiveSession> {
        let mut live = lock(&self.live);
        live.sweep(super::monotonic_clock());
        live.sessions().cloned().collect()
    }

    /// After the CRLs were (re)loaded: disconnects every live session whose certificate they
    /// revoke.
    pub fn check_crls(self: &Arc<Self>, crls: &[crate::x509::crl::LoadedCrl]) {
        if !self.config.disconnect_on_revocation {
            return;
        }
        let mut revoked = std::collections::HashSet::new();
        for crl in crls {
            let Ok((_, parsed)) = x509_parser::parse_x509_crl(crl.der.as_ref()) else {
                continue;
            };
            for r in parsed.iter_revoked_certificates() {
                let serial: String = r.raw_serial().iter().map(|b| format!("{b:02x}")).collect();
                revoked.insert((crl.issuer.clone(), serial));
            }
        }
        if revoked.is_empty() {
            return;
        }
        let hits = self.live_revoked(|issuer, serial| {
            revoked.contains(&(issuer.to_string(), serial.to_string()))
        });
        let handled = hits
            .iter()
            .map(|s| (s.nas_addr, s.acct_session_id.clone()))
            .collect();
        for s in hits {
            self.spawn_disconnect(s, "certificate revoked by the CRL");
        }
        self.spawn_database_sweep(revoked, handled, "certificate revoked by the CRL");
    }

    /// Sessions this instance does not hold in memory (authenticated by another instance sharing
    /// the database, or before a restart): open `radacct` rows whose certificate is revoked.
    fn spawn_database_sweep(
        self: &Arc<Self>,
        revoked: std::collections::HashSet<(String, String)>,
        handled: std::collections::HashSet<(IpAddr, Vec<u8>)>,
        why: &'static str,
    ) {
        let Some(db) = self.db.clone() else {
            return;
        };
        let me = self.clone();
        tokio::spawn(async move {
            let (client, _connection) = match super::acct_db::connect(&db).await {
                Ok(c) => c,
                Err(e) => {
                    warn!("revocation: open sessions in the accounting database not checked: {e}");
                    return;
                }
            };
            let rows = match client
                .query(
                    "SELECT acctsessionid, username, callingstationid, host(nasipaddress), \
                     certificate_serial, certificate_issuer FROM radacct \
                     WHERE acctstoptime IS NULL AND certificate_serial IS NOT NULL",
                    &[],
                )
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    warn!("revocation: open sessions in the accounting database not read: {e}");
                    return;
                }
            };
            for row in rows {
                let text = |i: usize| row.try_get::<_, Option<String>>(i).ok().flatten();
                let (Some(sid), Some(nas), Some(serial), Some(issuer)) =
                    (text(0), text(3), text(4), text(5))
                else {
                    continue;
                };
                let Ok(nas_addr) = nas.parse::<IpAddr>() else {
                    continue;
                };
                if !revoked.contains(&(issuer.clone(), serial.clone()))
                    || handled.contains(&(nas_addr, sid.clone().into_bytes()))
                {
                    continue;
                }
                let now = super::monotonic_clock();
                let session = LiveSession {
                    nas_addr,
                    nas_name: String::new(),
                    acct_session_id: sid.into_bytes(),
                    user_name: text(1).map(String::into_bytes),
                    calling_station_id: text(2).map(String::into_bytes),
                    link: Some(Arc::new(crate::live::AuthLink {
                        class: Vec::new(),
                        certificate: Some(crate::live::LinkedCertificate {
                            serial,
                            issuer,
                            subject: String::new(),
                        }),
                        identity: Vec::new(),
                        nas_name: String::new(),
                        nas_addr,
                        calling_station_id: None,
                        user_name: None,
                        at: now,
                        directory: None,
                    })),
                    started: now,
                    expires: now,
                    disconnecting: true,
                };
                me.disconnect(session, why).await;
            }
        });
    }

    /// An OCSP answer said this certificate is revoked.
    pub fn ocsp_revoked(self: &Arc<Self>, issuer: &str, serial: &str) {
        if !self.config.disconnect_on_revocation {
            return;
        }
        let hits = self.live_revoked(|i, s| i == issuer && s == serial);
        let handled = hits
            .iter()
            .map(|s| (s.nas_addr, s.acct_session_id.clone()))
            .collect();
        for s in hits {
            self.spawn_disconnect(s, "certificate revoked per OCSP");
        }
        let revoked = std::iter::once((issuer.to_string(), serial.to_string())).collect();
        self.spawn_database_sweep(revoked, handled, "certificate revoked per OCSP");
    }

    /// The live (not expired) sessions whose certificate `is_revoked`, marked.
    fn live_revoked(&self, is_revoked: impl Fn(&str, &str) -> bool) -> Vec<LiveSession> {
        let mut live = lock(&self.live);
        live.sweep(super::monotonic_clock());
        live.revoked(is_revoked)
    }

    /// The live sessions the directory found the account of (for `revalidate_secs`).
    pub fn directory_sessions(&self) -> Vec<LiveSession> {
        let mut live = lock(&self.live);
        live.sweep(super::monotonic_clock());
        live.with_directory()
    }

    /// The directory no longer allows this session as it was granted: disconnect it (once),
    /// logged and counted like a Disconnect on revocation.
    pub fn directory_disconnect(self: &Arc<Self>, session: &LiveSession, why: &'static str) {
        let picked = lock(&self.live).mark(|s| {
            !s.disconnecting
                && s.nas_addr == session.nas_addr
                && s.acct_session_id == session.acct_session_id
        });
        for s in picked {
            self.spawn_disconnect(s, why);
        }
    }

    /// Live sessions chosen by an operator, marked as being disconnected.
    pub fn pick(&self, f: impl Fn(&LiveSession) -> bool) -> Vec<LiveSession> {
        lock(&self.live).mark(f)
    }

    fn spawn_disconnect(self: &Arc<Self>, session: LiveSession, why: &'static str) {
        let me = self.clone();
        tokio::spawn(async move {
            me.disconnect(session, why).await;
        });
    }

    /// Sends the Disconnect-Request for one session and waits for the outcome (for the log, the
    /// counters and the control socket's answer).
    pub async fn disconnect(&self, s: LiveSession, why: &'static str) -> String {
        let clients = self.core.clients();
        let Some(client) = clients.lookup(s.nas_addr) else {
            warn!(nas = %s.nas_addr, "Disconnect-Request not sent: the NAS is no longer a [[client]]");
            return "not sent: the NAS is no longer a [[client]]".into();
        };
        let to = SocketAddr::new(s.nas_addr, client.coa_port);
        let (serial, subject) = s
            .link
            .as_ref()
            .and_then(|l| l.certificate.as_ref())
            .map_or(("-", "-"), |c| (c.serial.as_str(), c.subject.as_str()));
        let mut id = [0u8; 1];
        super::os_rng(&mut id);
        let timestamp = super::wall_clock()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
        let target = Target {
            user_name: s.user_name.as_deref(),
            acct_session_id: &s.acct_session_id,
            calling_station_id: s.calling_station_id.as_deref(),
            // The NAS's own address when its accounting came over IPv4.
            nas_ip_address: match s.nas_addr {
                IpAddr::V4(a) => Some(a),
                IpAddr::V6(_) => None,
            },
            event_timestamp: timestamp,
        };
        let request = match coa::disconnect_request(id[0], &target, &client.secret) {
            Ok(r) => r,
            Err(e) => {
                warn!("Disconnect-Request not built: {e}");
                return format!("not sent: {e}");
            }
        };
        let secret = client.secret.clone();
        let nas = client.name.clone();
        drop(clients);
        let session_id = Escaped(&s.acct_session_id).to_string();
        info!(
            %to, nas = %nas, acct_session_id = %session_id,
            user_name = %or_dash(s.user_name.as_deref()),
            serial, subject = ?Escaped::str(subject),
            "{why}: sending Disconnect-Request"
        );
        // An ephemeral port; a NAS on loopback is answered from loopback only.
        let local: SocketAddr = match (to.ip().is_loopback(), to.is_ipv4()) {
            (true, _) => (to.ip(), 0).into(),
            (false, true) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            (false, false) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket: UdpSocket = match super::bind(local) {
            Ok(s) => s,
            Err(e) => {
                warn!("Disconnect-Request not sent: {e}");
                return format!("not sent: {e}");
            }
        };
        let mut wait = Duration::from_millis(self.config.timeout_ms.max(1));
        let mut buf = vec![0u8; 4096];
        let mut bad_logged = false;
        for attempt in 0..=self.config.retries {
            self.core.stats.incr(Counter::DisconnectRequests);
            if let Err(e) = socket.send_to(&request, to).await {
                warn!(%to, "Disconnect-Request attempt {}: {e}", attempt + 1);
            }
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                let got = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await;
                let Ok(Ok((n, from))) = got else {
                    break;
                };
                if from != to {
                    continue;
                }
                match coa::verify_answer(buf.get(..n).unwrap_or_default(), &request, &secret) {
                    Ok(Answer::Ack) => {
                        self.core.stats.incr(Counter::DisconnectAcks);
                        info!(%to, nas = %nas, acct_session_id = %session_id, "Disconnect-ACK: the session is ended");
                        return "Disconnect-ACK".into();
                    }
                    Ok(Answer::Nak(cause)) => {
                        self.core.stats.incr(Counter::DisconnectNaks);
                        let cause = cause.map_or_else(|| "-".to_string(), |c| c.to_string());
                        warn!(%to, nas = %nas, acct_session_id = %session_id, error_cause = %cause, "Disconnect-NAK: the NAS refused");
                        return format!("Disconnect-NAK error_cause={cause}");
                    }
                    Err(e) => {
                        // Counted every time, logged once per exchange: a flood of forged
                        // answers costs a counter increment each.
                        self.core.stats.incr(Counter::DisconnectBadAnswers);
                        if !bad_logged {
                            bad_logged = true;
                            warn!(%to, nas = %nas, "answer to Disconnect-Request ignored: {e}");
                        }
                    }
                }
            }
            wait = wait.saturating_mul(2);
        }
        self.core.stats.incr(Counter::DisconnectTimeouts);
        warn!(
            %to, nas = %nas, acct_session_id = %session_id,
            "Disconnect-Request timed out after {} attempt(s)",
            self.config.retries.saturating_add(1)
        );
        "timeout".into()
    }
}

impl AuthObserver for Coa {
    fn finished(&self, event: &AuthEvent<'_>) {
        // EAP-TLS and MAB alike: the Class links accounting to the authentication.
        if event.class.is_some() {
            lock(&self.live).authenticated(event, super::monotonic_clock());
        }
    }
}

/// An OCSP answer revoked this end-entity certificate: disconnect its live sessions (found by
/// issuer and serial, read when the certificate was parsed for the authentication).
pub fn ocsp_revoked_leaf(coa: &Arc<Coa>, leaf: &crate::x509::Leaf) {
    coa.ocsp_revoked(&leaf.issuer, &leaf.serial_hex);
}
