//! rustls's clock, fed from the conversation's [`Now`](crate::session::Now) instead of the system
//! clock.
//!
//! rustls reads the time through `ServerConfig::time_provider` during a handshake: to judge the
//! client certificate's validity and the CRLs' nextUpdate (RFC 5280 §6.1.3, §6.3.3; WebPKI's
//! `verify_client_cert(.., now)`), to stamp and age TLS 1.3 tickets (RFC 8446 §4.6.1), and our
//! ticketer and session cache ask for it to enforce the session lifetime. One `ServerConfig`
//! serves every conversation, so the time cannot live in it: [`TlsEngine`](super::TlsEngine)
//! installs the wall time of the datagram being processed for the duration of its call into
//! rustls ([`enter`]), on the thread doing that work, and [`ConversationClock`] reads it back.
//! Outside such a call there is no time: rustls then fails the step (`FailedToGetCurrentTime`),
//! and the ticketer seals and opens nothing, rather than fall back to a clock the core must not
//! read.

use std::cell::Cell;

use rustls::pki_types::UnixTime;
use rustls::time_provider::TimeProvider;

thread_local! {
    static WALL: Cell<Option<UnixTime>> = const { Cell::new(None) };
}

/// The `time_provider` of the EAP-TLS server configuration: the wall time the engine installed
/// for the conversation this thread is processing.
#[derive(Debug, Default, Clone, Copy)]
pub struct ConversationClock;

impl TimeProvider for ConversationClock {
    fn current_time(&self) -> Option<UnixTime> {
        current()
    }
}

/// The wall time installed on this thread, if a conversation is being processed.
pub(crate) fn current() -> Option<UnixTime> {
    WALL.with(Cell::get)
}

/// Installs `now` as this thread's time until the guard is dropped (the previous value, if any,
/// is put back, so nested calls and an unwinding panic leave no stale time behind).
pub(crate) fn enter(now: UnixTime) -> Entered {
    Entered {
        previous: WALL.with(|w| w.replace(Some(now))),
    }
}

/// The time installed by [`enter`]; dropping it restores what was there before.
#[must_use]
pub(crate) struct Entered {
    previous: Option<UnixTime>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        WALL.with(|w| w.set(self.previous));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn installed_for_the_call_only_and_nested_calls_restore() {
        let t = |s| UnixTime::since_unix_epoch(Duration::from_secs(s));
        assert_eq!(ConversationClock.current_time(), None);
        {
            let _outer = enter(t(100));
            assert_eq!(ConversationClock.current_time(), Some(t(100)));
            {
                let _inner = enter(t(200));
                assert_eq!(ConversationClock.current_time(), Some(t(200)));
            }
            assert_eq!(ConversationClock.current_time(), Some(t(100)));
        }
        assert_eq!(ConversationClock.current_time(), None);
    }
}
