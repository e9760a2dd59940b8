//! The response cache: RFC 5019 responses are reused until `nextUpdate` (bounded in entries and
//! age; `now` passed in).

use super::*;

/// Verdicts by certificate (issuer name and key hash, serial), until the earlier of the response's
/// nextUpdate and `max_age` after caching. Only Good and Revoked are kept: an Unknown or a failure
/// is asked again next time. Sans IO: the caller passes `now`.
#[derive(Debug)]
pub struct Cache {
    pub(super) max_entries: usize,
    pub(super) max_age: Duration,
    pub(super) entries: HashMap<CertIdentity, (Verdict, SystemTime)>,
}

impl Cache {
    pub fn new(max_entries: usize, max_age: Duration) -> Self {
        Self {
            max_entries,
            max_age,
            entries: HashMap::new(),
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&mut self, leaf: &Leaf, issuer_der: &[u8], now: SystemTime) -> Option<Verdict> {
        let key = cert_identity(leaf, issuer_der).ok()?;
        let (verdict, expires) = self.entries.get(&key)?;
        if now < *expires {
            return Some(verdict.clone());
        }
        self.entries.remove(&key);
        None
    }

    pub fn put(&mut self, leaf: &Leaf, issuer_der: &[u8], verdict: &Verdict, now: SystemTime) {
        if verdict.status == CertStatus::Unknown || self.max_entries == 0 {
            return;
        }
        let Ok(key) = cert_identity(leaf, issuer_der) else {
            return;
        };
        let capped = now.checked_add(self.max_age).unwrap_or(now);
        let expires = verdict.next_update.map_or(capped, |next| next.min(capped));
        if expires <= now {
            return;
        }
        if !self.entries.contains_key(&key) && self.entries.len() >= self.max_entries {
            self.entries.retain(|_, (_, exp)| *exp > now);
            if self.entries.len() >= self.max_entries {
                // Still full: drop whatever would have expired first.
                let soonest = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, exp))| *exp)
                    .map(|(k, _)| k.clone());
                if let Some(k) = soonest {
                    self.entries.remove(&k);
                }
            }
        }
        self.entries.insert(key, (verdict.clone(), expires));
    }
}
