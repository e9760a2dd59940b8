//! Per-source packet budget for addresses that are no configured client: past
//! `server.bad_packet_rate_per_source` packets in a second, the rest of that second is dropped
//! unread and unlogged (RFC 2865 §3: packets from unknown sources are silently discarded; this
//! keeps a flood from costing a log line each).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Unknown sources tracked for rate limiting; past it the table is reset (a spoofed-source
/// flood must not grow it).
const MAX_TRACKED_STRANGERS: usize = 65536;

/// Unknown sources: (start of the current one-second window, packets in it).
#[derive(Default)]
pub(crate) struct SourceLimiter {
    strangers: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    stranger_rate: u32,
}

impl SourceLimiter {
    pub(crate) fn new(stranger_rate: u32) -> Self {
        SourceLimiter {
            strangers: Mutex::default(),
            stranger_rate,
        }
    }

    /// Per-source budget for packets from addresses that are no configured client
    /// (`server.bad_packet_rate_per_source` a second). A configured client's packets are always
    /// checked: its address can be spoofed, and dropping them unread would let a spoofer silence
    /// a real NAS; their cost is one HMAC and a rate-limited log line.
    pub(crate) fn over_limit(&self, ip: IpAddr, now: Instant) -> bool {
        if self.stranger_rate == 0 {
            return false;
        }
        let Ok(mut map) = self.strangers.lock() else {
            return false;
        };
        if map.len() >= MAX_TRACKED_STRANGERS && !map.contains_key(&ip) {
            map.retain(|_, (start, _)| {
                now.saturating_duration_since(*start) < Duration::from_secs(1)
            });
            if map.len() >= MAX_TRACKED_STRANGERS {
                map.clear();
            }
        }
        let entry = map.entry(ip).or_insert((now, 0));
        if now.saturating_duration_since(entry.0) >= Duration::from_secs(1) {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1 > self.stranger_rate
    }
}
