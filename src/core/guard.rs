//! Locks that survive a panic elsewhere.
//!
//! A panic while a table's mutex is held poisons it. Treating a poisoned lock as "nothing there"
//! silently switched duplicate detection off (RFC 5080 §2.2.2 then answers every retransmission
//! afresh) and refused every new conversation. The tables guarded here (the reply cache, the
//! session table) stay structurally valid whatever line a panic interrupted — at worst an entry is
//! stale and expires — so the request path takes the data back and keeps serving.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, recovering the data if an earlier holder panicked.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_poisoned_lock_still_yields_its_data() {
        let m = Arc::new(Mutex::new(vec![1, 2, 3]));
        let held = m.clone();
        let _ = std::thread::spawn(move || {
            let _guard = held.lock().unwrap();
            panic!("poison the lock on purpose");
        })
        .join();
        assert!(m.is_poisoned());
        assert_eq!(*lock(&m), vec![1, 2, 3]);
        lock(&m).push(4);
        assert_eq!(lock(&m).len(), 4);
    }
}
