//! Live sessions, sans IO: which certificate every session on the network was authenticated with
//! (none for a MAC Authentication Bypass session: it is linked and can be disconnected by
//! session all the same, but no revocation ever names it).
//!
//! - Every Access-Accept carries a Class (RFC 2865 §5.25) made by `core::replies::new_class`; the
//!   NAS echoes it unchanged in its Accounting-Requests. [`Live::authenticated`] remembers the
//!   recent authentications by Class (bounded, oldest forgotten first), with a fallback key
//!   (NAS address, Calling-Station-Id, User-Name) for NAS that drop Class.
//! - Accounting (RFC 2866 §5.1, RFC 2869 §5.4 Interim-Update) keeps the session table:
//!   Start/Interim-Update make a session live, Stop removes it, a session not heard of for
//!   3 × Acct-Interim-Interval (RFC 2869 §5.16; one hour when the NAS sends none) expires, and
//!   Accounting-On/Off (RFC 2866 §5.1: the NAS restarted) ends every session of that NAS. The
//!   table is bounded; when full, the session closest to expiry makes room.
//! - [`Live::revoked`] lists the live sessions whose certificate a revocation check now refuses,
//!   once each, for the shell to send Disconnect-Requests (RFC 5176).
//!
//! The caller passes the time in; nothing here reads a clock or touches a socket.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::accounting::{AcctRecord, StatusType};
use crate::core::events::AuthEvent;

/// Authentications remembered for linking (an AP sends its Start within seconds).
pub const MAX_AUTHS: usize = 65536;
/// Live sessions kept at most.
pub const MAX_SESSIONS: usize = 65536;
/// Expiry of a session whose NAS sends no Acct-Interim-Interval.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(3600);

/// The verified client certificate of an EAP-TLS authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedCertificate {
    pub serial: String,
    pub issuer: String,
    pub subject: String,
    /// The CA certificates of its verified chain as (issuer, serial hex), leaf excluded: a CRL
    /// that revokes any of them ends the session too.
    pub chain: Vec<(String, String)>,
}

impl LinkedCertificate {
    /// The leaf or a CA certificate of its chain is one `is_revoked(issuer, serial)` refuses.
    pub fn revoked_by(&self, is_revoked: &impl Fn(&str, &str) -> bool) -> bool {
        is_revoked(&self.issuer, &self.serial) || self.chain.iter().any(|(i, s)| is_revoked(i, s))
    }
}

/// One accepted authentication that sent a Class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthLink {
    pub class: Vec<u8>,
    /// The client certificate (EAP-TLS); None for MAB, which has none.
    pub certificate: Option<LinkedCertificate>,
    pub identity: Vec<u8>,
    pub nas_name: String,
    pub nas_addr: IpAddr,
    pub calling_station_id: Option<Vec<u8>>,
    pub user_name: Option<Vec<u8>>,
    pub at: Instant,
    /// What `[directory] revalidate_secs` needs to check the account again; None when no
    /// directory found it.
    pub directory: Option<Arc<DirectoryLink>>,
}

/// An authentication the directory found the account of: its search facts, and what the rules
/// decided with its groups (the verified certificate and the request fields they saw).
#[derive(Debug, Clone)]
pub struct DirectoryLink {
    pub facts: crate::directory::filter::FilterFacts,
    pub peer: crate::tls::VerifiedPeer,
    pub groups: Vec<String>,
    /// The rule that granted access.
    pub rule: Option<String>,
    pub called_station_id: Option<Vec<u8>>,
    pub nas_port_type: Option<u32>,
}

impl PartialEq for DirectoryLink {
    fn eq(&self, other: &Self) -> bool {
        self.facts == other.facts
            && self.peer.serial == other.peer.serial
            && self.peer.issuer == other.peer.issuer
            && self.groups == other.groups
            && self.rule == other.rule
    }
}

impl Eq for DirectoryLink {}

/// A session the NAS reported through accounting and has not stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSession {
    /// Where its accounting comes from: the NAS to disconnect it on.
    pub nas_addr: IpAddr,
    pub nas_name: String,
    pub acct_session_id: Vec<u8>,
    pub user_name: Option<Vec<u8>>,
    pub calling_station_id: Option<Vec<u8>>,
    /// The authentication it belongs to, when linked.
    pub link: Option<Arc<AuthLink>>,
    pub started: Instant,
    pub expires: Instant,
    /// A Disconnect-Request has been started for it.
    pub disconnecting: bool,
}

type Fallback = (IpAddr, Vec<u8>, Vec<u8>);
type SessionKey = (IpAddr, Vec<u8>);

/// The authentications by Class and the live sessions.
#[derive(Debug)]
pub struct Live {
    auths: HashMap<Vec<u8>, Arc<AuthLink>>,
    order: VecDeque<Vec<u8>>,
    fallback: HashMap<Fallback, Arc<AuthLink>>,
    sessions: HashMap<SessionKey, LiveSession>,
    max_auths: usize,
    max_sessions: usize,
}

impl Default for Live {
    fn default() -> Self {
        Live::new(MAX_AUTHS, MAX_SESSIONS)
    }
}

fn fallback_key(
    nas: IpAddr,
    calling: Option<&[u8]>,
    user: Option<&[u8]>,
) -> Option<(IpAddr, Vec<u8>, Vec<u8>)> {
    Some((nas, calling?.to_vec(), user?.to_vec()))
}

impl Live {
    pub fn new(max_auths: usize, max_sessions: usize) -> Self {
        Live {
            auths: HashMap::new(),
            order: VecDeque::new(),
            fallback: HashMap::new(),
            sessions: HashMap::new(),
            max_auths: max_auths.max(1),
            max_sessions: max_sessions.max(1),
        }
    }

    /// Remembers an accepted authentication that sent a Class, with its client certificate
    /// when it had one.
    pub fn authenticated(&mut self, event: &AuthEvent<'_>, now: Instant) {
        let Some(class) = event.class else {
            return;
        };
        let certificate = match (event.serial, event.issuer) {
            (Some(serial), Some(issuer)) => Some(LinkedCertificate {
                serial: serial.to_string(),
                issuer: issuer.to_string(),
                subject: event.subject.unwrap_or("").to_string(),
                chain: event.ca_chain.to_vec(),
            }),
            _ => None,
        };
        if event.outcome != "accept" {
            return;
        }
        while self.order.len() >= self.max_auths {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(link) = self.auths.remove(&old)
                && let Some(key) = fallback_key(
                    link.nas_addr,
                    link.calling_station_id.as_deref(),
                    link.user_name.as_deref(),
                )
                && self.fallback.get(&key).is_some_and(|l| l.class == old)
            {
                self.fallback.remove(&key);
            }
        }
        let link = Arc::new(AuthLink {
            class: class.to_vec(),
            certificate,
            identity: event.identity.to_vec(),
            nas_name: event.nas_name.to_string(),
            nas_addr: event.nas_addr,
            calling_station_id: event.calling_station_id.map(<[u8]>::to_vec),
            user_name: event.user_name.map(<[u8]>::to_vec),
            at: now,
            directory: match (event.directory_facts, event.peer, event.directory_groups) {
                (Some(facts), Some(peer), Some(groups)) => Some(Arc::new(DirectoryLink {
                    facts: facts.clone(),
                    peer: peer.clone(),
                    groups: groups.to_vec(),
                    rule: event.rule.map(str::to_string),
                    called_station_id: event.called_station_id.map(<[u8]>::to_vec),
                    nas_port_type: event.nas_port_type,
                })),
                _ => None,
            },
        });
        if let Some(key) = fallback_key(event.nas_addr, event.calling_station_id, event.user_name) {
            self.fallback.insert(key, link.clone());
        }
        if self.auths.insert(class.to_vec(), link).is_none() {
            self.order.push_back(class.to_vec());
        }
    }

    /// The authentication an accounting record belongs to: by Class, else by (NAS,
    /// Calling-Station-Id, User-Name), else the one its live session was linked to.
    pub fn link_of(&self, record: &AcctRecord) -> Option<Arc<AuthLink>> {
        if let Some(l) = record.class.iter().find_map(|c| self.auths.get(c)) {
            return Some(l.clone());
        }
        if let Some(key) = fallback_key(
            record.nas_addr,
            record.calling_station_id.as_deref(),
            record.user_name.as_deref(),
        ) && let Some(l) = self.fallback.get(&key)
        {
            return Some(l.clone());
        }
        self.sessions
            .get(&(record.nas_addr, record.acct_session_id.clone()))
            .and_then(|s| s.link.clone())
    }

    /// Applies a durable accounting record to the session table.
    pub fn observe(&mut self, record: &AcctRecord, now: Instant) {
        self.sweep(now);
        let key = (record.nas_addr, record.acct_session_id.clone());
        match record.status {
            StatusType::AccountingOn | StatusType::AccountingOff => {
                self.sessions.retain(|(nas, _), _| *nas != record.nas_addr);
            }
            StatusType::Stop => {
                self.sessions.remove(&key);
            }
            StatusType::Start | StatusType::InterimUpdate => {
                let link = self.link_of(record);
                let ttl = record
                    .interim_interval
                    .filter(|&i| i > 0)
                    .map_or(DEFAULT_EXPIRY, |i| {
                        Duration::from_secs(u64::from(i).saturating_mul(3))
                    });
                let expires = now.checked_add(ttl).unwrap_or(now);
                if let Some(s) = self.sessions.get_mut(&key) {
                    s.expires = expires;
                    if link.is_some() {
                        s.link = link;
                    }
                    return;
                }
                if self.sessions.len() >= self.max_sessions
                    && let Some(victim) = self
                        .sessions
                        .iter()
                        .min_by_key(|(_, s)| s.expires)
                        .map(|(k, _)| k.clone())
                {
                    self.sessions.remove(&victim);
                }
                self.sessions.insert(
                    key,
                    LiveSession {
                        nas_addr: record.nas_addr,
                        nas_name: record.nas_name.clone(),
                        acct_session_id: record.acct_session_id.clone(),
                        user_name: record.user_name.clone(),
                        calling_station_id: record.calling_station_id.clone(),
                        link,
                        started: now,
                        expires,
                        disconnecting: false,
                    },
                );
            }
            StatusType::Other(_) => {}
        }
    }

    /// Forgets the sessions not heard of in time.
    pub fn sweep(&mut self, now: Instant) {
        self.sessions.retain(|_, s| s.expires > now);
    }

    /// The live sessions, in no particular order.
    pub fn sessions(&self) -> impl Iterator<Item = &LiveSession> {
        self.sessions.values()
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// The live sessions whose certificate, or a CA certificate of whose chain,
    /// `is_revoked(issuer, serial)` refuses and that are not
    /// being disconnected yet; they are marked, so each is returned once.
    pub fn revoked(&mut self, is_revoked: impl Fn(&str, &str) -> bool) -> Vec<LiveSession> {
        self.mark(|s| {
            !s.disconnecting
                && s.link
                    .as_ref()
                    .and_then(|l| l.certificate.as_ref())
                    .is_some_and(|c| c.revoked_by(&is_revoked))
        })
    }

    /// The live sessions the directory found the account of, not being disconnected (for
    /// `[directory] revalidate_secs`; not marked).
    pub fn with_directory(&self) -> Vec<LiveSession> {
        self.sessions
            .values()
            .filter(|s| !s.disconnecting && s.link.as_ref().is_some_and(|l| l.directory.is_some()))
            .cloned()
            .collect()
    }

    /// The sessions `pick` selects (an operator's `disconnect --session`), marked as being
    /// disconnected.
    pub fn mark(&mut self, pick: impl Fn(&LiveSession) -> bool) -> Vec<LiveSession> {
        let mut out = Vec::new();
        for s in self.sessions.values_mut() {
            if pick(s) {
                s.disconnecting = true;
                out.push(s.clone());
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests may read the clock
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const NAS: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn event<'a>(class: &'a [u8], serial: &'a str) -> AuthEvent<'a> {
        AuthEvent {
            outcome: "accept",
            method: "eap-tls",
            reason: None,
            detail: "",
            identity: b"alice",
            user_name: Some(b"alice"),
            nas_name: "ap",
            nas_addr: NAS,
            calling_station_id: Some(b"02-00-00-00-00-01"),
            called_station_id: None,
            tls_version: "TLSv1.3",
            cipher_suite: "",
            serial: Some(serial),
            subject: Some("CN=alice"),
            ca_chain: &[],
            issuer: Some("CN=CA"),
            resumed: false,
            round_trips: 4,
            duration: Duration::ZERO,
            rule: None,
            granted: &[],
            class: Some(class),
            client_hello: None,
            signature_scheme: None,
            group: None,
            nas_port_type: None,
            framed_mtu: None,
            directory_groups: None,
            directory_facts: None,
            peer: None,
        }
    }

    fn record(status: StatusType, id: &[u8], class: Option<&[u8]>) -> AcctRecord {
        AcctRecord {
            nas_name: "ap".into(),
            nas_addr: NAS,
            status,
            acct_session_id: id.to_vec(),
            user_name: Some(b"alice".to_vec()),
            calling_station_id: Some(b"02-00-00-00-00-01".to_vec()),
            called_station_id: None,
            nas_identifier: None,
            framed_ip: None,
            input_octets: None,
            output_octets: None,
            input_packets: None,
            output_packets: None,
            session_time: None,
            terminate_cause: None,
            event_timestamp: None,
            delay_time: None,
            interim_interval: Some(60),
            class: class.map(|c| vec![c.to_vec()]).unwrap_or_default(),
        }
    }

    #[test]
    fn start_links_by_class_stop_removes_and_revoked_is_returned_once() {
        let t = Instant::now();
        let mut live = Live::default();
        live.authenticated(&event(b"CRad-one", "0a"), t);
        let start = record(StatusType::Start, b"s1", Some(b"CRad-one"));
        assert_eq!(serial_of(&live.link_of(&start).unwrap()), "0a");
        live.observe(&start, t);
        assert_eq!(live.len(), 1);
        let hit = live.revoked(|issuer, serial| issuer == "CN=CA" && serial == "0a");
        assert_eq!(hit.len(), 1);
        assert_eq!(hit[0].acct_session_id, b"s1");
        assert!(live.revoked(|_, _| true).is_empty(), "once");
        live.observe(&record(StatusType::Stop, b"s1", None), t);
        assert!(live.is_empty());
    }

    #[test]
    fn fallback_without_class_and_not_revoked_untouched() {
        let t = Instant::now();
        let mut live = Live::default();
        live.authenticated(&event(b"CRad-two", "0b"), t);
        let start = record(StatusType::Start, b"s2", None);
        live.observe(&start, t);
        let s = live.sessions().next().unwrap();
        assert_eq!(serial_of(s.link.as_ref().unwrap()), "0b");
        assert!(live.revoked(|_, serial| serial == "ff").is_empty());
    }

    /// A CRL from the root revoking the intermediate (its issuer is the root, its serial the
    /// intermediate's) ends the sessions of every leaf the intermediate issued.
    #[test]
    fn revoking_a_ca_of_the_chain_picks_the_session() {
        let t = Instant::now();
        let mut live = Live::default();
        let chain = [("CN=Root".to_string(), "1f".to_string())];
        live.authenticated(
            &AuthEvent {
                ca_chain: &chain,
                ..event(b"CRad-chain", "0c")
            },
            t,
        );
        live.observe(&record(StatusType::Start, b"s3", Some(b"CRad-chain")), t);
        assert!(live.revoked(|i, s| i == "CN=Root" && s == "0c").is_empty());
        let hit = live.revoked(|i, s| i == "CN=Root" && s == "1f");
        assert_eq!(hit.len(), 1);
        assert_eq!(hit[0].acct_session_id, b"s3");
    }

    fn serial_of(link: &AuthLink) -> &str {
        &link.certificate.as_ref().unwrap().serial
    }

    /// A MAB authentication (no certificate) links its accounting by Class like EAP-TLS, so its
    /// session is live and can be disconnected; no revocation ever picks it.
    #[test]
    fn mab_sessions_link_without_a_certificate() {
        let t = Instant::now();
        let mut live = Live::default();
        let mab = AuthEvent {
            method: "mab",
            identity: b"020000000001",
            user_name: Some(b"020000000001"),
            tls_version: "-",
            serial: None,
            subject: None,
            issuer: None,
            ..event(b"CRad-mab", "unused")
        };
        live.authenticated(&mab, t);
        let start = record(StatusType::Start, b"m1", Some(b"CRad-mab"));
        let link = live.link_of(&start).unwrap();
        assert_eq!(link.certificate, None);
        assert_eq!(link.identity, b"020000000001");
        live.observe(&start, t);
        assert_eq!(live.len(), 1);
        assert!(live.revoked(|_, _| true).is_empty());
        let picked = live.mark(|s| s.acct_session_id == b"m1");
        assert_eq!(picked.len(), 1, "Disconnect by session");
    }

    #[test]
    fn interim_interval_times_three_expires_and_accounting_on_clears_the_nas() {
        let t = Instant::now();
        let mut live = Live::default();
        live.observe(&record(StatusType::Start, b"a", None), t);
        live.observe(&record(StatusType::Start, b"b", None), t);
        assert_eq!(live.len(), 2);
        live.observe(
            &record(StatusType::InterimUpdate, b"a", None),
            t + Duration::from_secs(100),
        );
        live.sweep(t + Duration::from_secs(181));
        assert_eq!(live.len(), 1, "b expired after 3 × 60 s, a was refreshed");
        live.observe(&record(StatusType::AccountingOn, b"", None), t);
        assert!(live.is_empty());
        let mut r = record(StatusType::Start, b"c", None);
        r.interim_interval = None;
        live.observe(&r, t);
        live.sweep(t + DEFAULT_EXPIRY - Duration::from_secs(1));
        assert_eq!(live.len(), 1);
    }

    #[test]
    fn bounded() {
        let t = Instant::now();
        let mut live = Live::new(2, 2);
        for (i, c) in [b"c1", b"c2", b"c3"].iter().enumerate() {
            live.authenticated(&event(*c, "01"), t);
            live.observe(
                &record(StatusType::Start, format!("s{i}").as_bytes(), None),
                t + Duration::from_secs(i as u64),
            );
        }
        assert_eq!(live.auths.len(), 2);
        assert_eq!(live.order.len(), 2);
        assert_eq!(live.len(), 2);
        let one = record(StatusType::Start, b"x", Some(b"c1"));
        assert!(!live.auths.contains_key(b"c1".as_slice()));
        assert!(live.link_of(&one).is_some(), "fallback still points at c3");
    }
}
