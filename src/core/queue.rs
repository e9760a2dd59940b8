//! The queue of Access-Requests waiting for a worker, and the order they are served in when
//! more arrive than the CPU can take: what decides whether a re-authentication storm (a
//! controller or switch stack rebooting, every supplicant behind it starting at once) ends with
//! everybody authenticated a little late, or with a crowd of failures.
//!
//! - **Round-robin across NAS.** One switch stack rebooting must not starve the access points of
//!   another building: each client (NAS) with something waiting gets its turn, one request at a
//!   time, whatever the other NAS have queued.
//! - **Within a NAS, conversations in progress first.** A request carrying State (RFC 2865
//!   §5.24) continues a handshake the server has already paid for; it goes ahead of that NAS's
//!   requests that would start a new one. Finishing started work is what turns "everybody slow"
//!   into "most done".
//! - **No duplicate work.** A NAS retransmits a request it has had no answer to (RFC 5080
//!   §2.2.1); a copy of a request still waiting here (same source, Identifier and Request
//!   Authenticator) is not queued twice: the one answer serves both.
//! - **No work for a NAS that has given up.** A request that has waited longer than
//!   `max_wait` is thrown away instead of served: its NAS has retransmitted it (that copy is
//!   served) or abandoned the conversation, and a first TLS flight nobody reads would only delay
//!   the requests that can still succeed.
//! - **Bounded by what arrived.** At most `capacity` requests, each the datagram as received.
//!   When full, a request continuing a conversation pushes out the newest request for a new
//!   one, from the NAS with the most waiting; a new conversation does the same to a NAS with more
//!   new ones waiting than its own would then have, and is dropped otherwise. Nothing is answered with a Reject for being busy: a
//!   dropped request is retransmitted by its NAS, a Reject would fail the supplicant at once.
//!
//! No sockets, no clock: the shell passes `now` in and owns the workers.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Whether a request continues a conversation (it carries State) or would start one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Continuing,
    New,
}

/// Identifies one request and its retransmissions (RFC 5080 §2.2.2: same source, same
/// Identifier, same Request Authenticator).
pub type RequestKey = (SocketAddr, u8, [u8; 16]);

/// The key of a datagram, if it is long enough to be a RADIUS packet.
pub fn request_key(from: SocketAddr, datagram: &[u8]) -> Option<RequestKey> {
    let id = crate::radius::peek::identifier(datagram)?;
    let auth = crate::radius::peek::authenticator(datagram)?;
    Some((from, id, auth))
}

/// Why a request was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A copy of it is already waiting.
    Duplicate,
    /// The queue is full of work at least as urgent.
    Full,
}

/// What [`RequestQueue::push`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed<T> {
    Queued,
    /// Queued, and to make room this waiting request for a new conversation was dropped.
    QueuedDisplacing(T),
    Refused(Refused),
}

struct Entry<T> {
    item: T,
    key: Option<RequestKey>,
    arrived: Instant,
}

/// What one client (NAS) has waiting: its conversations in progress, then its new ones.
struct Lane<T> {
    continuing: VecDeque<Entry<T>>,
    new: VecDeque<Entry<T>>,
}

impl<T> Lane<T> {
    fn is_empty(&self) -> bool {
        self.continuing.is_empty() && self.new.is_empty()
    }
}

/// Requests waiting for a worker; see the module documentation for the order.
pub struct RequestQueue<T> {
    lanes: HashMap<usize, Lane<T>>,
    /// Clients with something waiting, in turn order.
    turns: VecDeque<usize>,
    waiting: HashSet<RequestKey>,
    len: usize,
    capacity: usize,
    max_wait: Duration,
}

/// What [`RequestQueue::pop`] hands out: the next request, and the ones thrown away because
/// they had waited too long (for the shell to count).
pub struct Popped<T> {
    pub next: Option<T>,
    pub expired: usize,
}

impl<T> RequestQueue<T> {
    pub fn new(capacity: usize, max_wait: Duration) -> Self {
        RequestQueue {
            lanes: HashMap::new(),
            turns: VecDeque::new(),
            waiting: HashSet::new(),
            len: 0,
            capacity: capacity.max(1),
            max_wait,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues a request from client `client` (its index in the client table).
    pub fn push(
        &mut self,
        item: T,
        class: Class,
        client: usize,
        key: Option<RequestKey>,
        now: Instant,
    ) -> Pushed<T> {
        if let Some(k) = key
            && self.waiting.contains(&k)
        {
            return Pushed::Refused(Refused::Duplicate);
        }
        let mut displaced = None;
        if self.len >= self.capacity {
            // A continuing request takes the place of any new one; a new one only that of a NAS
            // with more new requests waiting than this one's would then have, so a full queue
            // is shared out between NAS instead of belonging to whoever filled it first.
            let own = match class {
                Class::Continuing => None,
                Class::New => Some(self.lanes.get(&client).map_or(0, |l| l.new.len()) + 1),
            };
            match self.drop_newest_new(own) {
                Some(d) => displaced = Some(d),
                None => return Pushed::Refused(Refused::Full),
            }
        }
        if let Some(k) = key {
            self.waiting.insert(k);
        }
        self.len += 1;
        let entry = Entry {
            item,
            key,
            arrived: now,
        };
        let lane = self.lanes.entry(client).or_insert_with(|| Lane {
            continuing: VecDeque::new(),
            new: VecDeque::new(),
        });
        if lane.is_empty() {
            self.turns.push_back(client);
        }
        match class {
            Class::Continuing => lane.continuing.push_back(entry),
            Class::New => lane.new.push_back(entry),
        }
        match displaced {
            Some(d) => Pushed::QueuedDisplacing(d),
            None => Pushed::Queued,
        }
    }

    /// The next request to serve: one client at a time, and from each client its conversations
    /// in progress before its new ones. Requests older than `max_wait` are skipped and counted.
    pub fn pop(&mut self, now: Instant) -> Popped<T> {
        let mut expired = 0;
        loop {
            let Some(entry) = self.pop_next() else {
                return Popped {
                    next: None,
                    expired,
                };
            };
            self.forget(&entry);
            if now.saturating_duration_since(entry.arrived) > self.max_wait {
                expired += 1;
                continue;
            }
            return Popped {
                next: Some(entry.item),
                expired,
            };
        }
    }

    fn pop_next(&mut self) -> Option<Entry<T>> {
        while let Some(client) = self.turns.pop_front() {
            let Some(lane) = self.lanes.get_mut(&client) else {
                continue;
            };
            let entry = match lane.continuing.pop_front() {
                Some(e) => Some(e),
                None => lane.new.pop_front(),
            };
            if lane.is_empty() {
                self.lanes.remove(&client);
            } else {
                self.turns.push_back(client);
            }
            if entry.is_some() {
                return entry;
            }
        }
        None
    }

    /// Makes room: the newest new-conversation request of the client with the most of them
    /// waiting goes (it has waited least, and its NAS will retransmit it), provided that client
    /// has more than `more_than` waiting (None: any).
    fn drop_newest_new(&mut self, more_than: Option<usize>) -> Option<T> {
        let client = self
            .lanes
            .iter()
            .filter(|(_, lane)| !lane.new.is_empty())
            .max_by_key(|(_, lane)| lane.new.len())
            .filter(|(_, lane)| more_than.is_none_or(|n| lane.new.len() > n))
            .map(|(c, _)| *c)?;
        let lane = self.lanes.get_mut(&client)?;
        let entry = lane.new.pop_back()?;
        if lane.is_empty() {
            self.lanes.remove(&client);
            self.turns.retain(|c| *c != client);
        }
        self.forget(&entry);
        Some(entry.item)
    }

    fn forget(&mut self, entry: &Entry<T>) {
        self.len = self.len.saturating_sub(1);
        if let Some(k) = &entry.key {
            self.waiting.remove(k);
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests may read the clock
mod tests {
    use super::*;

    fn key(n: u8) -> Option<RequestKey> {
        Some(("127.0.0.1:1000".parse().unwrap(), n, [n; 16]))
    }

    fn drain(q: &mut RequestQueue<u32>, now: Instant) -> Vec<u32> {
        std::iter::from_fn(|| q.pop(now).next).collect()
    }

    #[test]
    fn conversations_in_progress_go_first() {
        let now = Instant::now();
        let mut q = RequestQueue::new(10, Duration::from_secs(10));
        q.push(1, Class::New, 0, key(1), now);
        q.push(2, Class::Continuing, 0, key(2), now);
        q.push(3, Class::New, 0, key(3), now);
        q.push(4, Class::Continuing, 0, key(4), now);
        assert_eq!(drain(&mut q, now), vec![2, 4, 1, 3]);
        assert!(q.is_empty());
    }

    #[test]
    fn new_conversations_take_turns_across_nas() {
        let now = Instant::now();
        let mut q = RequestQueue::new(100, Duration::from_secs(10));
        // NAS 0 floods first, NAS 1 and 2 come after: they must not wait for the whole flood.
        for i in 0..5 {
            q.push(i, Class::New, 0, key(i as u8), now);
        }
        q.push(10, Class::New, 1, key(10), now);
        q.push(11, Class::New, 1, key(11), now);
        q.push(20, Class::New, 2, key(20), now);
        assert_eq!(drain(&mut q, now), vec![0, 10, 20, 1, 11, 2, 3, 4]);
    }

    #[test]
    fn a_quiet_nas_is_served_between_the_requests_of_a_storming_one() {
        let now = Instant::now();
        let mut q = RequestQueue::new(100, Duration::from_secs(10));
        // NAS 0's conversations in progress must not hold back NAS 1: neither the conversation
        // NAS 1 has in progress, nor the one it starts.
        for i in 0..3 {
            q.push(i, Class::Continuing, 0, key(i as u8), now);
        }
        q.push(10, Class::Continuing, 1, key(10), now);
        q.push(20, Class::New, 1, key(20), now);
        assert_eq!(drain(&mut q, now), vec![0, 10, 1, 20, 2]);
    }

    #[test]
    fn a_retransmission_of_a_waiting_request_is_not_queued_twice() {
        let now = Instant::now();
        let mut q = RequestQueue::new(10, Duration::from_secs(10));
        assert_eq!(q.push(1, Class::New, 0, key(1), now), Pushed::Queued);
        assert_eq!(
            q.push(2, Class::New, 0, key(1), now),
            Pushed::Refused(Refused::Duplicate)
        );
        assert_eq!(drain(&mut q, now), vec![1]);
        // Once served, the same key may come again (the core's reply cache answers it).
        assert_eq!(q.push(3, Class::New, 0, key(1), now), Pushed::Queued);
    }

    #[test]
    fn when_full_new_conversations_are_refused_and_continuing_ones_displace_them() {
        let now = Instant::now();
        let mut q = RequestQueue::new(3, Duration::from_secs(10));
        q.push(1, Class::New, 0, key(1), now);
        q.push(2, Class::New, 0, key(2), now);
        q.push(3, Class::New, 1, key(3), now);
        // NAS 1 has one new request waiting, NAS 0 two: NAS 1's second would leave them equal,
        // so it is refused rather than displace one of NAS 0's.
        assert_eq!(
            q.push(4, Class::New, 1, key(4), now),
            Pushed::Refused(Refused::Full)
        );
        // NAS 0 has the most waiting: its newest request makes room.
        assert_eq!(
            q.push(5, Class::Continuing, 0, key(5), now),
            Pushed::QueuedDisplacing(2)
        );
        assert_eq!(q.len(), 3);
        q.push(6, Class::Continuing, 0, key(6), now);
        q.push(7, Class::Continuing, 0, key(7), now);
        // Nothing left to displace: full of conversations in progress.
        assert_eq!(
            q.push(8, Class::Continuing, 0, key(8), now),
            Pushed::Refused(Refused::Full)
        );
        assert_eq!(drain(&mut q, now), vec![5, 6, 7]);
        // The displaced request's key is free again for its retransmission.
        assert_eq!(q.push(2, Class::New, 0, key(2), now), Pushed::Queued);
    }

    #[test]
    fn a_full_queue_is_shared_between_nas() {
        let now = Instant::now();
        let mut q = RequestQueue::new(4, Duration::from_secs(10));
        for i in 0..4 {
            q.push(i, Class::New, 0, key(i as u8), now);
        }
        // A storming NAS filled the queue: another NAS's new conversation still gets in, in
        // place of the storm's newest; the storming NAS's next one does not.
        assert_eq!(
            q.push(10, Class::New, 1, key(10), now),
            Pushed::QueuedDisplacing(3)
        );
        assert_eq!(
            q.push(4, Class::New, 0, key(4), now),
            Pushed::Refused(Refused::Full)
        );
        assert_eq!(drain(&mut q, now), vec![0, 10, 1, 2]);
    }

    #[test]
    fn requests_older_than_max_wait_are_thrown_away_and_counted() {
        let t0 = Instant::now();
        let mut q = RequestQueue::new(10, Duration::from_secs(5));
        q.push(1, Class::New, 0, key(1), t0);
        q.push(2, Class::New, 0, key(2), t0 + Duration::from_secs(4));
        let p = q.pop(t0 + Duration::from_secs(6));
        assert_eq!((p.next, p.expired), (Some(2), 1));
        let p = q.pop(t0 + Duration::from_secs(6));
        assert_eq!((p.next, p.expired), (None, 0));
        assert!(q.is_empty());
    }
}
