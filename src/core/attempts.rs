//! The last authentication attempts of each supplicant, kept in memory for `certradius why KEY`:
//! "why was this device refused" answered from the running server without searching logs.
//!
//! Fed by every finished authentication (the [`AuthEvent`]s of RFC 2865 §4.2/§4.3 outcomes that
//! the audit log and metrics also see: EAP-TLS accepts and rejects, refusals before a
//! conversation, MAB). A supplicant is found by its MAC — Calling-Station-Id (RFC 3580 §3.21),
//! read in any spelling by `mab::Mac` — and by its identity (the EAP identity, else the
//! User-Name): an attempt is kept under its MAC when the NAS sent one, else under its identity,
//! and an identity seen with a MAC points to that device (the one it used last).
//!
//! Bounded, whatever the peers send:
//! - [`ATTEMPTS_PER_SUPPLICANT`] attempts per key, the oldest dropped first;
//! - at most `max_keys` keys (MACs and identities, see [`DEFAULT_MAX_KEYS`]); beyond, the least
//!   recently used eighth is evicted at once (so eviction costs O(1) per attempt on average);
//! - a refusal's detail is cut at [`MAX_DETAIL`] octets, and shared with the previous attempt
//!   of the same key when it is the same text (a device retrying fails the same way);
//! - NAS (name and address) and rule names are interned (at most [`MAX_NAMES`] each; beyond,
//!   shown as `?`).
//!
//! Memory, measured by `tests/attempts_memory.rs` (real allocations counted by stats_alloc,
//! plus 16 octets of malloc overhead per block): 100,000 supplicants, each with a MAC and an
//! identity and 8 attempts (200,000 keys, 800,000 attempts), take about 54 MiB when a device
//! fails the same way each time (the detail is then stored once per device) — within the
//! ~64 MiB aimed at — and about 126 MiB in the worst case, where every one of the 800,000
//! attempts carries a different 60-octet detail (within 64 MiB that case fits about 50,000
//! supplicants). The default bound is 200,000 keys. The time is the caller's (the
//! shell reads the clock; this module reads none).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::events::AuthEvent;
use super::guard::lock;
use crate::mab::Mac;
use crate::reason::ReasonCode;

/// Attempts kept per supplicant (per MAC, per identity without a MAC).
pub const ATTEMPTS_PER_SUPPLICANT: usize = 8;

/// Keys kept by default: 100,000 devices, each known by its MAC and its identity.
pub const DEFAULT_MAX_KEYS: usize = 200_000;

/// Octets of a refusal's detail kept.
pub const MAX_DETAIL: usize = 160;

/// Distinct NAS and rule names interned.
pub const MAX_NAMES: usize = 4096;

/// How a supplicant is looked up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Mac(Mac),
    Identity(Box<[u8]>),
}

impl Key {
    /// A MAC in any spelling, else an identity.
    pub fn parse(text: &str) -> Key {
        match Mac::parse(text.as_bytes()) {
            Ok(mac) => Key::Mac(mac),
            Err(_) => Key::Identity(text.as_bytes().into()),
        }
    }
}

/// One attempt in 32 octets: the NAS (name and address) and the rule are indices into the
/// interner, the detail is shared with the attempt before when it is the same text.
#[derive(Debug, Clone)]
struct Attempt {
    unix_secs: u32,
    round_trips: u16,
    accepted: bool,
    mab: bool,
    tls: u8,
    reason: Option<ReasonCode>,
    nas: u16,
    rule: u16,
    detail: Arc<str>,
}

/// One attempt as `why` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AttemptView {
    /// RFC 3339, UTC.
    pub time: String,
    /// Seconds since the Unix epoch.
    pub unix_time: u64,
    pub nas: String,
    pub nas_address: String,
    pub method: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub detail: String,
    pub tls_version: String,
    pub round_trips: u32,
    pub rule: Option<String>,
}

/// What `why KEY` answers: the supplicant's identity and MAC as last seen, and its attempts,
/// oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WhyAnswer {
    pub mac: Option<String>,
    pub identity: Option<String>,
    pub attempts: Vec<AttemptView>,
}

/// A device, by MAC: its attempts and the identity it last used.
#[derive(Default)]
struct Device {
    ring: Vec<Attempt>,
    last_used: u64,
    identity: Option<Arc<[u8]>>,
}

/// An identity: its attempts without a MAC, and the device it last used.
#[derive(Default)]
struct Identity {
    ring: Vec<Attempt>,
    last_used: u64,
    mac: Option<Mac>,
}

/// A NAS as the attempt saw it: `[[client]]` name and source address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Nas(Box<str>, IpAddr);

/// Values many attempts share (NAS, rule names), each stored once.
struct Interner<T> {
    index: HashMap<T, u16>,
    values: Vec<T>,
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            index: HashMap::new(),
            values: Vec::new(),
        }
    }
}

/// Index 0 is "none"; a name past [`MAX_NAMES`] is [`u16::MAX`], shown as `?`.
const NO_NAME: u16 = 0;
const TOO_MANY: u16 = u16::MAX;

impl<T: Clone + Eq + std::hash::Hash> Interner<T> {
    fn intern(&mut self, value: Option<T>) -> u16 {
        let Some(value) = value else {
            return NO_NAME;
        };
        if let Some(&i) = self.index.get(&value) {
            return i;
        }
        if self.values.len() >= MAX_NAMES {
            return TOO_MANY;
        }
        self.values.push(value.clone());
        let i = u16::try_from(self.values.len()).unwrap_or(TOO_MANY);
        self.index.insert(value, i);
        i
    }

    /// None for "none"; Err(()) for a value past the cap (or unknown).
    fn get(&self, i: u16) -> Option<Result<&T, ()>> {
        match i {
            NO_NAME => None,
            i => Some(
                self.values
                    .get(usize::from(i).saturating_sub(1))
                    .filter(|_| i != TOO_MANY)
                    .ok_or(()),
            ),
        }
    }
}

#[derive(Default)]
struct Inner {
    devices: HashMap<Mac, Device>,
    identities: HashMap<Arc<[u8]>, Identity>,
    nas: Interner<Nas>,
    rules: Interner<Box<str>>,
    tick: u64,
}

impl Inner {
    fn keys(&self) -> usize {
        self.devices.len() + self.identities.len()
    }
}

/// The last attempts of every supplicant seen, bounded (see the module doc).
pub struct Attempts {
    inner: Mutex<Inner>,
    max_keys: usize,
}

impl Default for Attempts {
    fn default() -> Self {
        Attempts::new(DEFAULT_MAX_KEYS)
    }
}

const TLS_VERSIONS: [&str; 3] = ["-", "TLSv1.2", "TLSv1.3"];

impl Attempts {
    pub fn new(max_keys: usize) -> Attempts {
        Attempts {
            inner: Mutex::new(Inner::default()),
            max_keys: max_keys.max(8),
        }
    }

    /// Keys held (MACs and identities).
    pub fn len(&self) -> usize {
        lock(&self.inner).keys()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records one finished authentication that happened at `unix_secs`.
    pub fn record(&self, e: &AuthEvent<'_>, unix_secs: u64) {
        let mac = e.calling_station_id.and_then(|c| Mac::parse(c).ok());
        let identity = Some(e.identity)
            .filter(|i| !i.is_empty())
            .or(e.user_name)
            .filter(|i| !i.is_empty())
            // A MAB User-Name is the MAC itself: no second key for it.
            .filter(|i| mac.is_none() || Mac::parse(i).ok() != mac);
        let mut detail = e.detail;
        if detail.len() > MAX_DETAIL {
            let mut end = MAX_DETAIL;
            while !detail.is_char_boundary(end) {
                end -= 1;
            }
            detail = detail.get(..end).unwrap_or("");
        }
        let mut inner = lock(&self.inner);
        let inner = &mut *inner;
        inner.tick += 1;
        let attempt = Attempt {
            unix_secs: u32::try_from(unix_secs).unwrap_or(u32::MAX),
            round_trips: u16::try_from(e.round_trips).unwrap_or(u16::MAX),
            accepted: e.outcome == "accept",
            mab: e.method == crate::authz::Method::Mab.as_str(),
            tls: TLS_VERSIONS
                .iter()
                .position(|v| *v == e.tls_version)
                .and_then(|i| u8::try_from(i).ok())
                .unwrap_or(0),
            reason: e
                .reason
                .and_then(|r| ReasonCode::ALL.iter().copied().find(|c| c.as_str() == r)),
            nas: inner.nas.intern(Some(Nas(e.nas_name.into(), e.nas_addr))),
            rule: inner.rules.intern(e.rule.map(Box::from)),
            detail: detail.into(),
        };
        let tick = inner.tick;
        // One copy of the identity, shared by its key and the device pointing to it.
        let identity: Option<Arc<[u8]>> =
            identity.map(|i| match inner.identities.get_key_value(i) {
                Some((k, _)) => k.clone(),
                None => Arc::from(i),
            });
        match (mac, identity) {
            (Some(m), identity) => {
                let device = inner.devices.entry(m).or_default();
                device.last_used = tick;
                push(&mut device.ring, attempt);
                if let Some(i) = identity {
                    device.identity = Some(i.clone());
                    // The identity points to the device it used last.
                    let by_identity = inner.identities.entry(i).or_default();
                    by_identity.last_used = tick;
                    by_identity.mac = Some(m);
                }
            }
            (None, Some(i)) => {
                let by_identity = inner.identities.entry(i).or_default();
                by_identity.last_used = tick;
                push(&mut by_identity.ring, attempt);
            }
            (None, None) => return,
        }
        if inner.keys() > self.max_keys {
            evict(inner, self.max_keys);
        }
    }

    /// The attempts of `key`, oldest first: under a MAC, its own; under an identity, those
    /// without a MAC and those of the device it used last.
    pub fn why(&self, key: &Key) -> WhyAnswer {
        let inner = lock(&self.inner);
        let mut answer = WhyAnswer::default();
        let mut attempts: Vec<&Attempt> = Vec::new();
        match key {
            Key::Mac(m) => {
                let Some(device) = inner.devices.get(m) else {
                    return answer;
                };
                answer.mac = Some(m.ietf());
                answer.identity = device.identity.as_deref().map(text);
                attempts.extend(device.ring.iter());
            }
            Key::Identity(i) => {
                let Some(entry) = inner.identities.get(&**i) else {
                    return answer;
                };
                answer.identity = Some(text(i));
                answer.mac = entry.mac.map(|m| m.ietf());
                attempts.extend(entry.ring.iter());
                if let Some(device) = entry.mac.and_then(|m| inner.devices.get(&m)) {
                    attempts.extend(device.ring.iter());
                }
            }
        }
        attempts.sort_by_key(|a| a.unix_secs);
        let skip = attempts.len().saturating_sub(ATTEMPTS_PER_SUPPLICANT);
        answer.attempts = attempts
            .into_iter()
            .skip(skip)
            .map(|a| view(a, &inner))
            .collect();
        answer
    }
}

/// Appends, dropping the oldest past the cap (a Vec, not a VecDeque: 8 octets less per key,
/// and moving 7 attempts down is nothing); a detail equal to the previous one is shared.
fn push(ring: &mut Vec<Attempt>, mut attempt: Attempt) {
    if let Some(last) = ring.last()
        && last.detail == attempt.detail
    {
        attempt.detail = last.detail.clone();
    }
    if ring.len() >= ATTEMPTS_PER_SUPPLICANT {
        ring.remove(0);
    }
    if ring.capacity() == 0 {
        ring.reserve_exact(ATTEMPTS_PER_SUPPLICANT);
    }
    ring.push(attempt);
}

/// Evicts the least recently used keys, an eighth of `max_keys` at once (so the scan is paid
/// once per `max_keys / 8` new keys).
fn evict(inner: &mut Inner, max_keys: usize) {
    let target = max_keys - max_keys / 8;
    let excess = inner.keys().saturating_sub(target);
    if excess == 0 {
        return;
    }
    let mut ticks: Vec<u64> = inner.devices.values().map(|d| d.last_used).collect();
    ticks.extend(inner.identities.values().map(|i| i.last_used));
    let (_, &mut cutoff, _) = ticks.select_nth_unstable(excess - 1);
    inner.devices.retain(|_, d| d.last_used > cutoff);
    inner.identities.retain(|_, i| i.last_used > cutoff);
}

fn text(bytes: &[u8]) -> String {
    crate::escape::json_text(bytes)
}

fn view(a: &Attempt, inner: &Inner) -> AttemptView {
    let (nas, nas_address) = match inner.nas.get(a.nas) {
        Some(Ok(Nas(name, addr))) => (name.to_string(), addr.to_string()),
        _ => ("?".into(), "?".into()),
    };
    AttemptView {
        time: crate::timefmt::rfc3339(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::from(a.unix_secs)),
        ),
        unix_time: u64::from(a.unix_secs),
        nas,
        nas_address,
        method: if a.mab {
            crate::authz::Method::Mab.as_str()
        } else {
            crate::authz::Method::EapTls.as_str()
        }
        .into(),
        outcome: if a.accepted { "accept" } else { "reject" }.into(),
        reason: a.reason.map(|r| r.as_str().into()),
        detail: a.detail.to_string(),
        tls_version: TLS_VERSIONS
            .get(usize::from(a.tls))
            .copied()
            .unwrap_or("-")
            .into(),
        round_trips: u32::from(a.round_trips),
        rule: inner.rules.get(a.rule).map(|r| match r {
            Ok(name) => name.to_string(),
            Err(()) => "?".into(),
        }),
    }
}

#[cfg(test)]
mod tests;
