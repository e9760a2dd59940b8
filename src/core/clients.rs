//! The NAS devices allowed to send us requests (RFC 2865 §3: a request from a client with no
//! configured shared secret is silently discarded), matched by address or CIDR prefix, most
//! specific prefix first.
//!
//! A client is known by its name, never by its position in the list: `[[client]]` names are
//! unique (checked at load), and a client keeps its [`Client::id`] across reloads for as long
//! as its name stays, so a stream connection, the per-NAS session counts and the request queue's
//! per-NAS order cannot be rebound to another NAS by a reload that inserts, removes or reorders
//! entries.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::config::{Cidr, ClientConfig, RequireMessageAuthenticator, Transport};
use crate::radius::SharedSecret;

pub struct Client {
    /// Stable for as long as a client of this name is configured; never reused for another name.
    pub id: usize,
    pub name: String,
    /// The address or prefix as configured (the key of learned state).
    pub address: String,
    pub cidr: Cidr,
    pub secret: SharedSecret,
    pub require_message_authenticator: RequireMessageAuthenticator,
    /// "auto": this client has sent a valid Message-Authenticator, so it must from now on.
    learned: AtomicBool,
    pub max_sessions: usize,
    /// Where this NAS takes Disconnect-Requests (RFC 5176).
    pub coa_port: u16,
    /// Requests from this client by RADIUS code (exported as metrics; kept across reloads).
    pub requests: Arc<RequestCounters>,
    /// How this NAS reaches us; a UDP datagram only matches `udp` clients, a stream connection
    /// only clients of its transport.
    pub transport: Transport,
    /// For `tls`: the SAN DNS name or CN its certificate must carry.
    pub certificate_name: Option<String>,
    /// What this NAS overrides of `[tls]` (versions, client signature schemes).
    pub tls: crate::tls::NasTls,
}

/// Requests received from one client, by packet type (after the packet decoded).
#[derive(Debug, Default)]
pub struct RequestCounters {
    pub access_request: AtomicU64,
    pub status_server: AtomicU64,
    pub other: AtomicU64,
}

impl RequestCounters {
    pub fn count(&self, code: crate::radius::Code) {
        let c = match code {
            crate::radius::Code::AccessRequest => &self.access_request,
            crate::radius::Code::StatusServer => &self.status_server,
            _ => &self.other,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// (type label, count) pairs.
    pub fn values(&self) -> [(&'static str, u64); 3] {
        [
            (
                "access_request",
                self.access_request.load(Ordering::Relaxed),
            ),
            ("status_server", self.status_server.load(Ordering::Relaxed)),
            ("other", self.other.load(Ordering::Relaxed)),
        ]
    }
}

impl Client {
    /// Whether a request without Message-Authenticator must be discarded.
    pub fn requires_message_authenticator(&self) -> bool {
        match self.require_message_authenticator {
            RequireMessageAuthenticator::Yes => true,
            RequireMessageAuthenticator::No => false,
            RequireMessageAuthenticator::Auto => self.learned.load(Ordering::Relaxed),
        }
    }

    /// Records a valid Message-Authenticator; returns true the first time (state to persist).
    pub fn learn_message_authenticator(&self) -> bool {
        self.require_message_authenticator == RequireMessageAuthenticator::Auto
            && !self.learned.swap(true, Ordering::Relaxed)
    }

    pub fn has_learned(&self) -> bool {
        self.learned.load(Ordering::Relaxed)
    }

    pub fn set_learned(&self, v: bool) {
        self.learned.store(v, Ordering::Relaxed);
    }
}

pub struct Clients {
    list: Vec<Arc<Client>>,
    /// The next id for a name not seen before (ids of removed clients are never handed out
    /// again: their conversations may still be counted under them).
    next_id: usize,
}

impl Clients {
    /// Builds the table from the parsed client list.
    pub fn new(configs: &[ClientConfig]) -> Self {
        Self::after(configs, None)
    }

    /// Builds the table of a reload: a client whose name was configured before keeps its id and
    /// request counters, one whose address is unchanged keeps what it learned ("auto"
    /// Message-Authenticator).
    pub fn after(configs: &[ClientConfig], previous: Option<&Clients>) -> Self {
        let mut next_id = previous.map_or(0, |p| p.next_id);
        let mut list = Vec::with_capacity(configs.len());
        for c in configs {
            let old_by_name = previous.and_then(|p| p.by_name(&c.name));
            let id = match old_by_name {
                Some(o) => o.id,
                None => {
                    next_id += 1;
                    next_id - 1
                }
            };
            let learned = previous
                .and_then(|p| p.list.iter().find(|o| o.address == c.address.to_string()))
                .is_some_and(|o| o.has_learned())
                && c.require_message_authenticator == RequireMessageAuthenticator::Auto;
            list.push(Arc::new(Client {
                id,
                name: c.name.clone(),
                address: c.address.to_string(),
                cidr: c.address,
                secret: SharedSecret::new(c.secret.expose().as_bytes().to_vec()),
                require_message_authenticator: c.require_message_authenticator,
                learned: AtomicBool::new(learned),
                max_sessions: c.max_sessions,
                coa_port: c.coa_port,
                requests: old_by_name.map(|o| o.requests.clone()).unwrap_or_default(),
                transport: c.transport,
                certificate_name: c.certificate_name.clone(),
                tls: crate::tls::NasTls::of(c),
            }));
        }
        // Most specific prefix first, so a /32 for one AP wins over its site's /16.
        list.sort_by_key(|c| std::cmp::Reverse(c.cidr.prefix));
        Clients { list, next_id }
    }

    /// The client of this name (names are unique).
    pub fn by_name(&self, name: &str) -> Option<&Arc<Client>> {
        self.list.iter().find(|c| c.name == name)
    }

    /// The client a stream connection was bound to, as this table has it: same name, same
    /// transport, and an address prefix that still holds the connection's peer. None: the
    /// connection must be closed (its client is gone or no longer matches).
    pub fn rebind(&self, bound: &Client, peer: IpAddr) -> Option<&Arc<Client>> {
        self.by_name(&bound.name)
            .filter(|c| c.transport == bound.transport && c.cidr.contains(peer))
    }

    /// The UDP client for a datagram's source address.
    pub fn lookup(&self, ip: IpAddr) -> Option<&Arc<Client>> {
        self.list
            .iter()
            .find(|c| c.transport == Transport::Udp && c.cidr.contains(ip))
    }

    /// The clients of a stream transport whose prefix holds `ip`, most specific first (the
    /// caller then checks the certificate name).
    pub fn candidates(
        &self,
        ip: IpAddr,
        transport: Transport,
    ) -> impl Iterator<Item = &Arc<Client>> {
        self.list
            .iter()
            .filter(move |c| c.transport == transport && c.cidr.contains(ip))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Client>> {
        self.list.iter()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn cfg(name: &str, address: &str) -> ClientConfig {
        ClientConfig {
            name: name.into(),
            address: address.parse().unwrap(),
            secret: Secret::new("s"),
            require_message_authenticator: RequireMessageAuthenticator::Auto,
            max_sessions: 10,
            transport: Transport::Udp,
            certificate_name: None,
            coa_port: 3799,
            tls_min_version: None,
            tls_max_version: None,
            client_signature_schemes: None,
        }
    }

    #[test]
    fn most_specific_prefix_wins() {
        let c = Clients::new(&[cfg("site", "10.1.0.0/16"), cfg("ap", "10.1.2.3")]);
        assert_eq!(c.lookup("10.1.2.3".parse().unwrap()).unwrap().name, "ap");
        assert_eq!(c.lookup("10.1.2.4".parse().unwrap()).unwrap().name, "site");
        assert!(c.lookup("10.2.0.1".parse().unwrap()).is_none());
    }

    #[test]
    fn a_reload_keeps_learned_state_by_address_and_counters_by_name() {
        let old = Clients::new(&[cfg("ap", "10.0.0.1"), cfg("gone", "10.0.0.2")]);
        old.lookup("10.0.0.1".parse().unwrap())
            .unwrap()
            .learn_message_authenticator();
        old.lookup("10.0.0.2".parse().unwrap())
            .unwrap()
            .learn_message_authenticator();
        old.lookup("10.0.0.1".parse().unwrap())
            .unwrap()
            .requests
            .count(crate::radius::Code::AccessRequest);
        // "ap" keeps its address; "gone" is renamed and moved to a new address.
        let new = Clients::after(
            &[cfg("ap", "10.0.0.1"), cfg("moved", "10.0.0.3")],
            Some(&old),
        );
        let ap = new.lookup("10.0.0.1".parse().unwrap()).unwrap();
        assert!(ap.requires_message_authenticator());
        assert_eq!(ap.requests.values()[0], ("access_request", 1));
        assert!(
            !new.lookup("10.0.0.3".parse().unwrap())
                .unwrap()
                .requires_message_authenticator()
        );
    }

    /// The security property behind stream connections and per-NAS counts: a reload that
    /// reorders, inserts and removes entries never gives a name another client's id.
    #[test]
    fn ids_follow_names_across_reloads() {
        let old = Clients::new(&[
            cfg("a", "10.0.0.1"),
            cfg("b", "10.0.0.2"),
            cfg("c", "10.0.0.3"),
        ]);
        let id = |t: &Clients, n: &str| t.by_name(n).unwrap().id;
        let (a, b, c) = (id(&old, "a"), id(&old, "b"), id(&old, "c"));
        let new = Clients::after(
            &[
                cfg("new", "10.0.0.9"),
                cfg("c", "10.0.0.3"),
                cfg("a", "10.0.0.1"),
            ],
            Some(&old),
        );
        assert_eq!((id(&new, "a"), id(&new, "c")), (a, c));
        assert!(new.by_name("b").is_none());
        assert!(
            ![a, b, c].contains(&id(&new, "new")),
            "a removed client's id is reused"
        );
        // Rebinding checks transport and address, not only the name.
        let moved = Clients::after(&[cfg("a", "10.0.1.1")], Some(&new));
        let bound = new.by_name("a").unwrap();
        assert!(moved.rebind(bound, "10.0.0.1".parse().unwrap()).is_none());
        assert!(new.rebind(bound, "10.0.0.1".parse().unwrap()).is_some());
    }

    #[test]
    fn auto_learns_once() {
        let c = Clients::new(&[cfg("ap", "::1")]);
        let ap = c.lookup("::1".parse().unwrap()).unwrap();
        assert!(!ap.requires_message_authenticator());
        assert!(ap.learn_message_authenticator());
        assert!(!ap.learn_message_authenticator());
        assert!(ap.requires_message_authenticator());
    }
}
