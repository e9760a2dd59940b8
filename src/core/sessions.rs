//! The table of EAP conversations in progress, keyed by the RADIUS State attribute
//! (RFC 2865 §5.24, RFC 3579 §2.1: the State of an Access-Challenge comes back unmodified in the
//! next Access-Request of the conversation).
//!
//! A session is *checked out* (removed, a `Busy` marker left behind) while one request is being
//! processed, so no lock is held across TLS work and a second request for the same conversation
//! that slips past the duplicate cache is dropped instead of processed twice. Bounded in total and
//! per NAS; every slot has an idle deadline after which it is evicted and its State rejected.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use crate::session::Session;

pub type StateKey = [u8; 16];

enum Slot {
    Idle(Box<Session>),
    Busy,
}

struct Entry {
    slot: Slot,
    client: usize,
    nas: IpAddr,
    deadline: Instant,
}

pub enum Checkout {
    Found(Box<Session>),
    Busy,
    Unknown,
    /// A State issued to another NAS: never hand one NAS's conversation to another.
    WrongNas,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Full {
    Total,
    Client,
}

pub struct SessionTable {
    map: HashMap<StateKey, Entry>,
    per_client: HashMap<usize, usize>,
    max_total: usize,
}

impl SessionTable {
    pub fn new(max_total: usize) -> Self {
        SessionTable {
            map: HashMap::new(),
            per_client: HashMap::new(),
            max_total,
        }
    }

    /// The State keys of every conversation in the table (idle or being processed).
    pub fn keys(&self) -> Vec<StateKey> {
        self.map.keys().copied().collect()
    }

    pub fn contains(&self, key: &StateKey) -> bool {
        self.map.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Room for one more conversation from this client?
    pub fn has_room(&self, client: usize, client_max: usize) -> Result<(), Full> {
        if self.map.len() >= self.max_total {
            return Err(Full::Total);
        }
        if client_max > 0 && self.per_client.get(&client).copied().unwrap_or(0) >= client_max {
            return Err(Full::Client);
        }
        Ok(())
    }

    /// Adds a new conversation (after `has_room`); the caller drew a fresh random key.
    pub fn insert(
        &mut self,
        key: StateKey,
        session: Box<Session>,
        client: usize,
        nas: IpAddr,
        deadline: Instant,
    ) {
        let old = self.map.insert(
            key,
            Entry {
                slot: Slot::Idle(session),
                client,
                nas,
                deadline,
            },
        );
        match old {
            Some(old) if old.client != client => {
                self.dec(old.client);
                self.inc(client);
            }
            Some(_) => {}
            None => self.inc(client),
        }
    }

    pub fn checkout(&mut self, key: &StateKey, nas: IpAddr, now: Instant) -> Checkout {
        let Some(entry) = self.map.get_mut(key) else {
            return Checkout::Unknown;
        };
        if entry.nas != nas {
            return Checkout::WrongNas;
        }
        if entry.deadline <= now {
            self.remove(key);
            return Checkout::Unknown;
        }
        match std::mem::replace(&mut entry.slot, Slot::Busy) {
            Slot::Idle(s) => Checkout::Found(s),
            Slot::Busy => Checkout::Busy,
        }
    }

    /// Puts a checked-out conversation back with a fresh idle deadline.
    pub fn checkin(&mut self, key: &StateKey, session: Box<Session>, deadline: Instant) {
        if let Some(entry) = self.map.get_mut(key) {
            entry.slot = Slot::Idle(session);
            entry.deadline = deadline;
        }
    }

    pub fn remove(&mut self, key: &StateKey) {
        if let Some(old) = self.map.remove(key) {
            self.dec(old.client);
        }
    }

    /// Evicts every conversation idle past its deadline; returns the abandoned sessions so the
    /// caller can log them (outside this table's lock).
    #[expect(
        clippy::vec_box,
        reason = "the table holds sessions boxed; returning them unboxed would move each one"
    )]
    pub fn sweep(&mut self, now: Instant) -> Vec<Box<Session>> {
        let expired: Vec<StateKey> = self
            .map
            .iter()
            .filter(|(_, e)| e.deadline <= now)
            .map(|(k, _)| *k)
            .collect();
        let mut out = Vec::new();
        for k in expired {
            if let Some(old) = self.map.remove(&k) {
                self.dec(old.client);
                if let Slot::Idle(s) = old.slot {
                    out.push(s);
                }
            }
        }
        out
    }

    fn inc(&mut self, client: usize) {
        *self.per_client.entry(client).or_insert(0) += 1;
    }

    fn dec(&mut self, client: usize) {
        if let Some(n) = self.per_client.get_mut(&client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_client.remove(&client);
            }
        }
    }
}
