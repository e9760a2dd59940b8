//! Duplicate detection (RFC 5080 §2.2.2): a retransmitted Access-Request — same source address
//! and port, Identifier and Request Authenticator — is answered with the reply we already sent,
//! byte for byte, and never reaches the EAP state machine twice. While the original is still
//! being processed the retransmission is dropped (the NAS will retransmit again and then get the
//! cached reply). A new request reusing the Identifier with another authenticator replaces the
//! entry. Bounded in entries and lifetime.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub type DedupKey = (SocketAddr, u8);

struct Entry {
    authenticator: [u8; 16],
    reply: Option<Arc<[u8]>>,
    expires: Instant,
    seq: u64,
}

pub enum Seen {
    New,
    InProgress,
    Replay(Arc<[u8]>),
}

pub struct Dedup {
    map: HashMap<DedupKey, Entry>,
    /// Insertion order (= expiry order, the lifetime being fixed); an item whose `seq` no longer
    /// matches its entry is stale (the entry was replaced) and skipped.
    order: VecDeque<(DedupKey, u64)>,
    next_seq: u64,
    max_entries: usize,
    lifetime: Duration,
}

impl Dedup {
    pub fn new(max_entries: usize, lifetime: Duration) -> Self {
        Dedup {
            map: HashMap::new(),
            order: VecDeque::new(),
            next_seq: 0,
            max_entries,
            lifetime,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }

    /// Looks the request up; a new one is recorded as in progress.
    pub fn check(&mut self, key: DedupKey, authenticator: &[u8; 16], now: Instant) -> Seen {
        if self.max_entries == 0 {
            return Seen::New;
        }
        self.expire(now);
        if let Some(e) = self.map.get(&key)
            && &e.authenticator == authenticator
        {
            return match &e.reply {
                Some(r) => Seen::Replay(r.clone()),
                None => Seen::InProgress,
            };
        }
        while self.map.len() >= self.max_entries {
            let Some((old, seq)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&old).is_some_and(|e| e.seq == seq) {
                self.map.remove(&old);
            }
        }
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.map.insert(
            key,
            Entry {
                authenticator: *authenticator,
                reply: None,
                // Bounded at load (server.duplicate_cache_secs); never panics with the lock held.
                expires: now.checked_add(self.lifetime).unwrap_or(now),
                seq,
            },
        );
        self.order.push_back((key, seq));
        if self.order.len() > self.max_entries.saturating_mul(2) {
            self.compact();
        }
        Seen::New
    }

    /// Records the reply for a request `check` returned `New` for; `None` (nothing was sent)
    /// forgets the request so a retransmission is processed afresh.
    pub fn complete(&mut self, key: DedupKey, authenticator: &[u8; 16], reply: Option<Arc<[u8]>>) {
        let Some(e) = self.map.get_mut(&key) else {
            return;
        };
        if &e.authenticator != authenticator {
            return;
        }
        match reply {
            Some(r) => e.reply = Some(r),
            None => {
                self.map.remove(&key);
            }
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some((key, seq)) = self.order.front().copied() {
            match self.map.get(&key) {
                Some(e) if e.seq == seq => {
                    if e.expires > now {
                        break;
                    }
                    self.map.remove(&key);
                }
                _ => {}
            }
            self.order.pop_front();
        }
    }

    /// Drops stale order items (entries replaced many times over).
    fn compact(&mut self) {
        let map = &self.map;
        self.order
            .retain(|(k, seq)| map.get(k).is_some_and(|e| e.seq == *seq));
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests may read the clock
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "127.0.0.1:5000".parse().unwrap()
    }

    #[test]
    fn replay_in_progress_and_replacement() {
        let mut d = Dedup::new(10, Duration::from_secs(5));
        let t = Instant::now();
        let a1 = [1u8; 16];
        let a2 = [2u8; 16];
        assert!(matches!(d.check((addr(), 7), &a1, t), Seen::New));
        assert!(matches!(d.check((addr(), 7), &a1, t), Seen::InProgress));
        d.complete((addr(), 7), &a1, Some(Arc::from(&b"reply"[..])));
        match d.check((addr(), 7), &a1, t) {
            Seen::Replay(r) => assert_eq!(&*r, b"reply"),
            _ => panic!("expected replay"),
        }
        assert!(matches!(d.check((addr(), 7), &a2, t), Seen::New));
        assert!(matches!(d.check((addr(), 7), &a1, t), Seen::New));
    }

    #[test]
    fn entries_expire_and_are_bounded() {
        let mut d = Dedup::new(3, Duration::from_secs(5));
        let t = Instant::now();
        for id in 0..10u8 {
            d.check((addr(), id), &[id; 16], t);
            d.complete((addr(), id), &[id; 16], Some(Arc::from(&[id][..])));
            assert!(d.len() <= 3);
        }
        let later = t + Duration::from_secs(6);
        assert!(matches!(d.check((addr(), 9), &[9; 16], later), Seen::New));
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn nothing_sent_means_retransmission_is_processed() {
        let mut d = Dedup::new(10, Duration::from_secs(5));
        let t = Instant::now();
        assert!(matches!(d.check((addr(), 1), &[1; 16], t), Seen::New));
        d.complete((addr(), 1), &[1; 16], None);
        assert!(matches!(d.check((addr(), 1), &[1; 16], t), Seen::New));
    }
}
