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
use tracing::{debug, info, warn};

use crate::accounting::AcctRecord;
use crate::config::CoaConfig;
use crate::core::Core;
use crate::core::events::{AuthEvent, AuthObserver};
use crate::core::guard::lock;
use crate::core::stats::Counter;
use crate::escape::{Escaped, or_dash};
use crate::live::{Live, LiveSession};
use crate::radius::coa::{self, Answer, Target};

mod claim;

/// Live sessions and the Disconnect-Requests sent for them.
pub struct Coa {
    core: Arc<Core>,
    live: Mutex<Live>,
    config: CoaConfig,
    /// `accounting.database_url`: the open sessions of every instance (and of this one before
    /// a restart) are in `radacct`, with the certificate they were authenticated with.
    db: Option<crate::config::database::DatabaseTarget>,
    /// This process among the instances sharing the database: who holds a Disconnect claim.
    instance: String,
    /// Links (Class → certificate and chain) for the database writer, so that every instance
    /// of the pool can link accounting of sessions this one authenticated.
    links: Option<tokio::sync::mpsc::Sender<LinkRow>>,
}

/// One `certradius_auth` row, written after the Access-Accept went out.
struct LinkRow {
    class: String,
    serial: String,
    issuer: String,
    subject: String,
    chain: String,
}

/// Links waiting for the writer; beyond it they are dropped (logged): the reply never waits.
const LINK_CHANNEL: usize = 4096;
/// Links are kept this long (a session's radacct row has its certificate once linked).
const LINK_RETENTION: &str = "30 days";

/// Writes the links, reconnecting as needed, and prunes old ones now and then.
async fn link_writer(
    db: crate::config::database::DatabaseTarget,
    mut rx: tokio::sync::mpsc::Receiver<LinkRow>,
) {
    let mut client: Option<(tokio_postgres::Client, tokio::task::JoinHandle<()>)> = None;
    let mut written: u64 = 0;
    while let Some(link) = rx.recv().await {
        if client.as_ref().is_none_or(|(c, _)| c.is_closed()) {
            client = match super::acct_db::connect(&db).await {
                Ok(c) => Some(c),
                Err(e) => {
                    warn!("pool link not written (the session links on this instance only): {e}");
                    continue;
                }
            };
        }
        let Some((c, _)) = &client else {
            continue;
        };
        let result = c
            .execute(
                "INSERT INTO certradius_auth (class, certificate_serial, certificate_issuer, \
                 certificate_subject, ca_chain) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (class) DO NOTHING",
                &[
                    &link.class,
                    &link.serial,
                    &link.issuer,
                    &link.subject,
                    &link.chain,
                ],
            )
            .await;
        if let Err(e) = result {
            warn!("pool link not written (the session links on this instance only): {e}");
            continue;
        }
        // A Start that reached the database first.
        let _ = c
            .execute(
                "UPDATE radacct SET certificate_serial = $2, certificate_issuer = $3 \
                 WHERE class = $1 AND certificate_serial IS NULL",
                &[&link.class, &link.serial, &link.issuer],
            )
            .await;
        written = written.wrapping_add(1);
        if written % 1000 == 1 {
            let _ = c
                .execute(
                    &format!(
                        "DELETE FROM certradius_auth WHERE created < now() - interval '{LINK_RETENTION}'"
                    ),
                    &[],
                )
                .await;
        }
    }
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
            links: database_url
                .and_then(|u| crate::config::database::parse(u.expose()).ok())
                .map(|db| {
                    let (tx, rx) = tokio::sync::mpsc::channel(LINK_CHANNEL);
                    tokio::spawn(link_writer(db, rx));
                    tx
                }),
            db: database_url.and_then(|u| crate::config::database::parse(u.expose()).ok()),
            instance: {
                let mut r = [0u8; 8];
                super::os_rng(&mut r);
                format!("{}-{:016x}", std::process::id(), u64::from_be_bytes(r))
            },
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
                let serial = crate::hex::lower(r.raw_serial());
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
            // With the pool's links: the certificate and chain of sessions accounted on an
            // instance that did not authenticate them; without (not migrated): the leaf only.
            let linked = client
                .query(
                    "SELECT r.acctsessionid, r.username, r.callingstationid, \
                     host(r.nasipaddress), COALESCE(r.certificate_serial, a.certificate_serial), \
                     COALESCE(r.certificate_issuer, a.certificate_issuer), a.ca_chain \
                     FROM radacct r LEFT JOIN certradius_auth a ON a.class = r.class \
                     WHERE r.acctstoptime IS NULL \
                     AND COALESCE(r.certificate_serial, a.certificate_serial) IS NOT NULL",
                    &[],
                )
                .await;
            let rows = match linked {
                Ok(r) => Ok(r),
                Err(_) => {
                    client
                        .query(
                            "SELECT acctsessionid, username, callingstationid, \
                             host(nasipaddress), certificate_serial, certificate_issuer, \
                             NULL::text FROM radacct \
                             WHERE acctstoptime IS NULL AND certificate_serial IS NOT NULL",
                            &[],
                        )
                        .await
                }
            };
            let rows = match rows {
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
                let chain: Vec<(String, String)> = text(6)
                    .and_then(|c| serde_json::from_str(&c).ok())
                    .unwrap_or_default();
                let certificate = crate::live::LinkedCertificate {
                    serial,
                    issuer,
                    subject: String::new(),
                    chain,
                };
                let is_revoked =
                    |i: &str, s: &str| revoked.contains(&(i.to_string(), s.to_string()));
                if !certificate.revoked_by(&is_revoked)
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
                        certificate: Some(certificate),
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
                me.disconnect_claimed(session, why).await;
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
            me.disconnect_claimed(session, why).await;
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
        let socket = match super::bind(local).and_then(UdpSocket::from_std) {
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
        if let (Some(tx), "accept", Some(class), Some(serial), Some(issuer)) = (
            &self.links,
            event.outcome,
            event.class,
            event.serial,
            event.issuer,
        ) {
            let hex = crate::hex::lower(class);
            let text = |s: &str| crate::accounting::sql::db_text(s.as_bytes());
            let link = LinkRow {
                class: format!("0x{hex}"),
                serial: text(serial),
                issuer: text(issuer),
                subject: text(event.subject.unwrap_or("")),
                chain: serde_json::to_string(event.ca_chain).unwrap_or_default(),
            };
            if tx.try_send(link).is_err() {
                debug!("pool link dropped: the writer is behind or gone");
            }
        }
    }
}

/// An OCSP answer revoked this end-entity certificate: disconnect its live sessions (found by
/// issuer and serial, read when the certificate was parsed for the authentication).
pub fn ocsp_revoked_leaf(coa: &Arc<Coa>, leaf: &crate::x509::Leaf) {
    coa.ocsp_revoked(&leaf.issuer, &leaf.serial_hex);
}
