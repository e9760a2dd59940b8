//! TLS session resumption, safe by design (RFC 5216 §2.1.3, RFC 9190 §2.1.3, §5.7).
//!
//! - TLS 1.2: session tickets (RFC 5077) and session IDs; TLS 1.3: PSK tickets (RFC 8446 §4.6.1).
//! - Tickets are sealed with AES-256-GCM (`crate::crypto`: aws-lc-rs by default, *ring* when built
//!   with it alone) under keys that can be loaded from a file shared
//!   by several certradius instances, so a pool of servers resumes each other's sessions. The
//!   first key of the file seals new tickets; every key in it opens them (rotation: put a new key
//!   first, keep the previous ones a lifetime longer). Without a file, resumption is stateful
//!   (session IDs, and TLS 1.3 tickets that only name a cache entry) — see [`StatefulOnly`].
//! - A ticket carries the time it was sealed and is refused once older than the configured
//!   lifetime, whatever the client claims. The time is the conversation's `now` (`tls::clock`):
//!   rustls asks the ticketer and the cache without giving them the time.
//! - A resumed session is not a free pass: rustls does not re-verify the client certificate on
//!   resumption, so the session re-runs the certificate verifier (chain, validity *now*, CRLs as
//!   loaded *now*) and the policy on the certificate restored from the ticket.
//!
//! Ticket key file: one key per line, 64 hex digits (32 octets); `#` comments and blank lines
//! ignored. `certradius ticket-key FILE` writes or rotates one.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::crypto::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use crate::crypto::rand::{SecureRandom, SystemRandom};

/// Octets of key id that prefix every ticket (the first octets of SHA-256 of the key).
const KEY_ID_LEN: usize = 8;
const KEY_LEN: usize = 32;

struct TicketKey {
    id: [u8; KEY_ID_LEN],
    key: LessSafeKey,
}

/// Seals and opens session tickets; the first key seals, all keys open.
pub struct Ticketer {
    keys: Vec<TicketKey>,
    lifetime_secs: u32,
    rng: SystemRandom,
}

impl fmt::Debug for Ticketer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticketer")
            .field("keys", &self.keys.len())
            .field("lifetime_secs", &self.lifetime_secs)
            .finish()
    }
}

/// The conversation's wall time in seconds; None outside a conversation (nothing is sealed,
/// opened or cached then).
fn now_secs() -> Option<u64> {
    super::clock::current().map(|t| t.as_secs())
}

/// A ticket key file that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TicketKeyError {
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: expected 64 hex digits (a 32-octet key)", path.display())]
    BadLine {
        path: std::path::PathBuf,
        line: usize,
    },
    #[error("not a 32-octet key")]
    BadKey,
    #[error("{}: no key in the file", path.display())]
    Empty { path: std::path::PathBuf },
    #[error("the OS random number generator failed")]
    Rng,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TicketKeyError + '_ {
    move |source| TicketKeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn make_key(raw: &[u8]) -> Result<TicketKey, TicketKeyError> {
    let digest = crate::crypto::digest::digest(&crate::crypto::digest::SHA256, raw);
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(
        digest
            .as_ref()
            .get(..KEY_ID_LEN)
            .unwrap_or(&[0; KEY_ID_LEN]),
    );
    let key = UnboundKey::new(&AES_256_GCM, raw).map_err(|_| TicketKeyError::BadKey)?;
    Ok(TicketKey {
        id,
        key: LessSafeKey::new(key),
    })
}

fn parse_hex(line: &str) -> Option<Vec<u8>> {
    if line.len() != KEY_LEN * 2 {
        return None;
    }
    (0..line.len())
        .step_by(2)
        .map(|i| {
            line.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

impl Ticketer {
    /// Keys from a ticket key file.
    pub fn from_file(path: &Path, lifetime_secs: u32) -> Result<Self, TicketKeyError> {
        let text = std::fs::read_to_string(path).map_err(io_err(path))?;
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let raw = parse_hex(line).ok_or_else(|| TicketKeyError::BadLine {
                path: path.to_path_buf(),
                line: n + 1,
            })?;
            keys.push(make_key(&raw)?);
        }
        if keys.is_empty() {
            return Err(TicketKeyError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(Ticketer {
            keys,
            lifetime_secs,
            rng: SystemRandom::new(),
        })
    }

    fn seal(&self, plain: &[u8], issued: u64) -> Option<Vec<u8>> {
        let current = self.keys.first()?;
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        // ticket = key id || nonce || AES-256-GCM(issued time || rustls state), the key id and
        // nonce bound in as associated data.
        let mut out = Vec::with_capacity(KEY_ID_LEN + NONCE_LEN + 8 + plain.len() + 16);
        out.extend_from_slice(&current.id);
        out.extend_from_slice(&nonce);
        let header_len = out.len();
        let mut body = Vec::with_capacity(8 + plain.len() + 16);
        body.extend_from_slice(&issued.to_be_bytes());
        body.extend_from_slice(plain);
        current
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(out.as_slice()),
                &mut body,
            )
            .ok()?;
        out.extend_from_slice(&body);
        debug_assert!(out.len() > header_len);
        Some(out)
    }

    fn open(&self, ticket: &[u8], now: u64) -> Option<Vec<u8>> {
        let (id, rest) = ticket.split_at_checked(KEY_ID_LEN)?;
        let (nonce, sealed) = rest.split_at_checked(NONCE_LEN)?;
        let key = self.keys.iter().find(|k| k.id == id)?;
        let aad = ticket.get(..KEY_ID_LEN + NONCE_LEN)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = sealed.to_vec();
        let plain = key
            .key
            .open_in_place(nonce, Aad::from(aad), &mut body)
            .ok()?;
        let (issued, state) = plain.split_at_checked(8)?;
        let issued = u64::from_be_bytes(issued.try_into().ok()?);
        // A ticket from the future (clock skew between pool members) is tolerated a minute.
        if issued > now.saturating_add(60)
            || now.saturating_sub(issued) > u64::from(self.lifetime_secs)
        {
            return None;
        }
        Some(state.to_vec())
    }
}

impl rustls::server::ProducesTickets for Ticketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        self.lifetime_secs
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.seal(plain, now_secs()?)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        self.open(cipher, now_secs()?)
    }
}

/// The session cache (TLS 1.2 session IDs, TLS 1.3 stateful tickets) with the configured
/// lifetime enforced: each entry carries the time it was stored and is not handed back once
/// older than the lifetime. At most `size` entries; when full, the oldest stored goes.
///
/// Our own rather than rustls's `ServerSessionMemoryCache`, which reserves its whole capacity at
/// start (about 8 MB of table for the default 65,536 sessions, then faulted in a page at a time
/// by the first tens of thousands of authentications) and scans its whole insertion queue to
/// remove one entry (`take`, on every TLS 1.3 resumption). This one grows with what is stored,
/// and a taken entry's place in the queue is skipped when its turn to go comes.
pub struct LifetimeCache {
    store: std::sync::Mutex<SessionStore>,
    size: usize,
    lifetime_secs: u64,
}

#[derive(Default)]
struct SessionStore {
    /// Session key → (when it was stored, seconds since the epoch; rustls's encoded session).
    map: std::collections::HashMap<Vec<u8>, (u64, Vec<u8>)>,
    /// Keys in the order they were first stored. A key taken since is still here (and no
    /// longer in `map`); the queue is never longer than `size` + 1.
    order: std::collections::VecDeque<Vec<u8>>,
}

impl fmt::Debug for LifetimeCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LifetimeCache")
            .field("size", &self.size)
            .field("lifetime_secs", &self.lifetime_secs)
            .finish_non_exhaustive()
    }
}

impl LifetimeCache {
    pub fn new(size: usize, lifetime_secs: u32) -> Arc<Self> {
        Arc::new(LifetimeCache {
            store: std::sync::Mutex::new(SessionStore::default()),
            size: size.max(1),
            lifetime_secs: u64::from(lifetime_secs),
        })
    }

    fn store(&self) -> std::sync::MutexGuard<'_, SessionStore> {
        // Nothing panics while the lock is held; a poisoned lock still holds a whole store.
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn fresh(&self, stored_at: u64, now: u64) -> bool {
        now.saturating_sub(stored_at) <= self.lifetime_secs
    }

    /// How many sessions are stored (tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.store().map.len()
    }
}

impl rustls::server::StoresServerSessions for LifetimeCache {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        let Some(now) = now_secs() else {
            return false;
        };
        let mut store = self.store();
        let SessionStore { map, order } = &mut *store;
        match map.entry(key) {
            std::collections::hash_map::Entry::Occupied(mut e) => {
                e.insert((now, value));
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                order.push_back(e.key().clone());
                e.insert((now, value));
            }
        }
        while order.len() > self.size {
            if let Some(oldest) = order.pop_front() {
                map.remove(&oldest);
            }
        }
        true
    }
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let now = now_secs()?;
        let store = self.store();
        let (at, value) = store.map.get(key)?;
        self.fresh(*at, now).then(|| value.clone())
    }
    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let now = now_secs()?;
        let (at, value) = self.store().map.remove(key)?;
        self.fresh(at, now).then_some(value)
    }
    fn can_cache(&self) -> bool {
        true
    }
}

/// Stateless tickets off: TLS 1.2 resumes by session ID and TLS 1.3 gets small stateful tickets,
/// both from the in-memory session cache. Used when no ticket key file is configured, because a
/// stateless ticket carries the client's certificate chain (1-2 KB for RSA) and would add a
/// round trip to every full TLS 1.3 authentication at common fragment sizes; a single server
/// gains nothing from it.
#[derive(Debug)]
pub struct StatefulOnly;

impl rustls::server::ProducesTickets for StatefulOnly {
    fn enabled(&self) -> bool {
        false
    }
    fn lifetime(&self) -> u32 {
        0
    }
    fn encrypt(&self, _: &[u8]) -> Option<Vec<u8>> {
        None
    }
    fn decrypt(&self, _: &[u8]) -> Option<Vec<u8>> {
        None
    }
}

/// Writes a new random key at the top of `path`, keeping at most `keep` previous keys: the
/// rotation step for a pool sharing the file.
pub fn rotate_key_file(path: &Path, keep: usize) -> Result<usize, TicketKeyError> {
    let old: Vec<String> = match std::fs::read_to_string(path) {
        Ok(t) => t
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_err(path)(e)),
    };
    let mut raw = [0u8; KEY_LEN];
    SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| TicketKeyError::Rng)?;
    let new: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let mut text = String::from(
        "# certradius TLS session ticket keys: the first seals new tickets, all open them.\n\
         # Secret: readable by certradius only. Rotate with `certradius ticket-key FILE`.\n",
    );
    text.push_str(&new);
    text.push('\n');
    for k in old.iter().take(keep) {
        text.push_str(k);
        text.push('\n');
    }
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        f.write_all(text.as_bytes()).map_err(io_err(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    Ok(1 + old.len().min(keep))
}

/// The long-lived resumption state: kept across TLS reloads (CRL changes) so sessions survive
/// them; the ticket keys are re-read when the key file changes.
#[derive(Clone)]
pub struct Resumption {
    pub cache: Arc<dyn rustls::server::StoresServerSessions>,
    pub ticketer: Arc<dyn rustls::server::ProducesTickets>,
    pub tls13_tickets: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::UnixTime;

    fn ticketer(keys: &[[u8; 32]]) -> Ticketer {
        Ticketer {
            keys: keys.iter().map(|k| make_key(k).unwrap()).collect(),
            lifetime_secs: 3600,
            rng: SystemRandom::new(),
        }
    }

    #[test]
    fn seal_open_rotation_and_lifetime() {
        let a = ticketer(&[[1; 32]]);
        let t = a.seal(b"state", 1000).unwrap();
        assert_eq!(a.open(&t, 1000).unwrap(), b"state");
        // Another instance with the same key opens it; after rotation the old key still opens.
        let rotated = ticketer(&[[2; 32], [1; 32]]);
        assert_eq!(rotated.open(&t, 1001).unwrap(), b"state");
        // A pool member without the key cannot.
        assert!(ticketer(&[[3; 32]]).open(&t, 1001).is_none());
        // Too old, or tampered.
        assert!(a.open(&t, 1000 + 3601).is_none());
        let mut bad = t.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(a.open(&bad, 1000).is_none());
        assert!(a.open(&t[..10], 1000).is_none());
        assert!(a.open(&[], 1000).is_none());
    }

    #[test]
    fn cache_entries_expire() {
        use rustls::server::StoresServerSessions;
        let c = LifetimeCache::new(10, 100);
        // Outside a conversation there is no time: nothing is stored.
        assert!(!c.put(b"k".to_vec(), b"v".to_vec()));
        let at = |s| UnixTime::since_unix_epoch(std::time::Duration::from_secs(s));
        {
            let _t = super::super::clock::enter(at(1000));
            assert!(c.put(b"k".to_vec(), b"v".to_vec()));
            assert_eq!(c.get(b"k").unwrap(), b"v");
        }
        {
            let _t = super::super::clock::enter(at(1000 + 100));
            assert_eq!(c.get(b"k").unwrap(), b"v", "still fresh at the lifetime");
        }
        let _t = super::super::clock::enter(at(1000 + 101));
        assert!(c.get(b"k").is_none(), "expired by the conversation's time");
        assert!(c.put(b"t".to_vec(), b"w".to_vec()));
        assert!(c.take(b"k").is_none(), "an expired entry is not handed out");
        assert_eq!(c.take(b"t").unwrap(), b"w");
        assert!(c.get(b"t").is_none(), "taken once");
    }

    #[test]
    fn cache_keeps_the_newest_size_entries() {
        use rustls::server::StoresServerSessions;
        let c = LifetimeCache::new(3, 100);
        let _t = super::super::clock::enter(UnixTime::since_unix_epoch(
            std::time::Duration::from_secs(1000),
        ));
        for k in 0u8..5 {
            assert!(c.put(vec![k], vec![k]));
        }
        assert_eq!(c.len(), 3);
        assert!(c.get(&[0]).is_none() && c.get(&[1]).is_none());
        assert_eq!(c.get(&[4]).unwrap(), [4]);
        // Replacing a stored key keeps its place in the queue; a taken key's place still
        // comes up in turn (the store is then below `size` until it does).
        assert!(c.put(vec![2], vec![22]));
        assert_eq!(c.get(&[2]).unwrap(), [22]);
        assert_eq!(c.take(&[3]).unwrap(), [3]);
        assert!(c.put(vec![5], vec![5]));
        assert!(c.put(vec![6], vec![6]));
        assert_eq!(c.len(), 3, "never more than size");
        assert!(c.get(&[2]).is_none(), "the oldest went first");
        assert_eq!(c.get(&[4]).unwrap(), [4]);
        assert_eq!(c.get(&[6]).unwrap(), [6]);
    }

    #[test]
    fn key_file_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tickets.keys");
        assert_eq!(rotate_key_file(&path, 2).unwrap(), 1);
        let first = Ticketer::from_file(&path, 60).unwrap();
        let t = first.seal(b"x", 5).unwrap();
        assert_eq!(rotate_key_file(&path, 2).unwrap(), 2);
        let second = Ticketer::from_file(&path, 60).unwrap();
        assert_eq!(
            second.open(&t, 6).unwrap(),
            b"x",
            "previous key still opens"
        );
        rotate_key_file(&path, 2).unwrap();
        rotate_key_file(&path, 2).unwrap();
        let fourth = Ticketer::from_file(&path, 60).unwrap();
        assert!(
            fourth.open(&t, 6).is_none(),
            "rotated out after `keep` rotations"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::write(&path, "nothex\n").unwrap();
        assert!(
            Ticketer::from_file(&path, 60)
                .unwrap_err()
                .to_string()
                .contains(":1:")
        );
    }
}
