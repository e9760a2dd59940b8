//! `--pace-ms`: the supplicants' think time. A real supplicant (or eapol_test, which is
//! wpa_supplicant's EAP code in one process per authentication) does not answer a server flight
//! at once: it parses certificates, signs, derives keys, and between two authentications a new
//! process starts. The server therefore sees idle gaps between a conversation's packets and, at
//! a few conversations in flight, is asleep when most requests arrive. The pacer holds each
//! request (and the start of the slot's next conversation) until its due time; the NAS task
//! sleeps on a timer until the earliest one is due, so waiting costs the generator no CPU.
//!
//! Each wait is drawn uniformly from [0.8, 1.2] × the pace (mean: the pace), and the first
//! conversation of every slot starts at a random point of one pace, so that the supplicants do
//! not fall into step and arrive at the server together. The wait runs from the moment the reply
//! was received, so the supplicant's own work on the reply is inside it, not added to it.
//!
//! The NAS task sleeps on a [`PreciseTimer`] (a timerfd in the tokio reactor), not on tokio's
//! timer wheel, which rounds every deadline up to the next millisecond: at a 3 ms pace that
//! would add a third to every gap.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
    timerfd_settime,
};
use tokio::io::unix::AsyncFd;

/// Jitter around the pace: each wait is `pace × (1 - JITTER .. 1 + JITTER)`.
const JITTER: f64 = 0.2;

/// Items waiting for their due time. A NAS socket holds at most 256 conversations, so a
/// linear scan is cheaper than a heap.
pub struct Pacer<T> {
    pace: Duration,
    waiting: Vec<Waiting<T>>,
}

struct Waiting<T> {
    due: Instant,
    /// When the reply (or the end of the conversation) that this item answers came in.
    since: Instant,
    item: T,
}

impl<T> Pacer<T> {
    pub fn new(pace: Duration) -> Self {
        Pacer {
            pace,
            waiting: Vec::new(),
        }
    }

    /// Whether items wait at all (`--pace-ms 0`: no, send at once as before).
    pub fn enabled(&self) -> bool {
        !self.pace.is_zero()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Holds `item`, which answers something received at `now`, for about one pace. `unit` is
    /// a uniform random number in [0, 1).
    pub fn hold(&mut self, now: Instant, item: T, unit: f64) {
        let factor = 1.0 - JITTER + 2.0 * JITTER * unit.clamp(0.0, 1.0);
        self.push(now, self.pace.mul_f64(factor), item);
    }

    /// Holds a slot's first item for a random share of one pace (its phase).
    pub fn hold_first(&mut self, now: Instant, item: T, unit: f64) {
        self.push(now, self.pace.mul_f64(unit.clamp(0.0, 1.0)), item);
    }

    fn push(&mut self, now: Instant, wait: Duration, item: T) {
        self.waiting.push(Waiting {
            due: now + wait,
            since: now,
            item,
        });
    }

    /// The earliest due time, for the NAS task's timer.
    pub fn next_due(&self) -> Option<Instant> {
        self.waiting.iter().map(|w| w.due).min()
    }

    /// Takes the earliest item due at `now`, with the time it was held for.
    pub fn take_due(&mut self, now: Instant) -> Option<(T, Duration)> {
        let (i, _) = self
            .waiting
            .iter()
            .enumerate()
            .filter(|(_, w)| w.due <= now)
            .min_by_key(|(_, w)| w.due)?;
        let w = self.waiting.swap_remove(i);
        Some((w.item, now.saturating_duration_since(w.since)))
    }
}

/// A one-shot timer with the kernel's resolution: a `CLOCK_MONOTONIC` timerfd, awaited through
/// the tokio reactor like a socket, so the task wakes within tens of microseconds of the due time
/// and burns no CPU meanwhile.
pub struct PreciseTimer {
    fd: AsyncFd<OwnedFd>,
}

impl PreciseTimer {
    /// Must be called inside a tokio runtime (the timer registers with its reactor).
    pub fn new() -> Result<Self, String> {
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )
        .map_err(|e| format!("timerfd: {e}"))?;
        // `AsyncFd::new` is deprecated because a borrowed descriptor could be closed (and its
        // number reused) while registered; this one is an `OwnedFd` moved into the `AsyncFd`,
        // which deregisters it before closing it. (`AsyncFd::register` says the same but is
        // `unsafe`, which this crate forbids.)
        #[allow(deprecated)]
        let fd = AsyncFd::new(fd).map_err(|e| format!("timerfd: {e}"))?;
        Ok(PreciseTimer { fd })
    }

    /// Returns at `due` (at once if it has passed). Re-arming replaces an earlier deadline, so a
    /// sleep abandoned for a datagram leaves nothing behind but a stale readiness, which the
    /// read below clears.
    pub async fn sleep_until(&self, due: Instant) {
        // A zero it_value would disarm the timer: wait at least a nanosecond.
        let wait = due
            .saturating_duration_since(Instant::now())
            .max(Duration::from_nanos(1));
        let spec = Itimerspec {
            it_interval: Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: Timespec {
                tv_sec: i64::try_from(wait.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(wait.subsec_nanos()),
            },
        };
        if timerfd_settime(self.fd.get_ref(), TimerfdTimerFlags::empty(), &spec).is_err() {
            return;
        }
        loop {
            let Ok(mut ready) = self.fd.readable().await else {
                return;
            };
            // The expiration count (8 octets); EAGAIN: the readiness was stale.
            let mut count = [0u8; 8];
            match rustix::io::read(self.fd.get_ref(), &mut count) {
                Ok(_) => return,
                Err(rustix::io::Errno::AGAIN) => ready.clear_ready(),
                Err(_) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn nothing_is_due_before_its_wait_and_everything_after() {
        let t0 = Instant::now();
        let mut p = Pacer::new(3 * MS);
        assert!(p.enabled());
        p.hold(t0, "a", 0.5); // 3 ms
        p.hold(t0, "b", 0.0); // 2.4 ms, the shortest wait
        p.hold(t0, "c", 1.0); // 3.6 ms, the longest
        assert_eq!(p.next_due(), Some(t0 + Duration::from_micros(2400)));
        assert!(
            p.take_due(t0 + 2 * MS).is_none(),
            "held for less than 0.8 pace"
        );
        let (first, held) = p.take_due(t0 + 3 * MS).unwrap();
        assert_eq!(first, "b", "the earliest due goes first");
        assert_eq!(held, 3 * MS, "held from the reply until it was taken");
        assert_eq!(p.take_due(t0 + 3 * MS).unwrap().0, "a");
        assert!(p.take_due(t0 + 3 * MS).is_none(), "c waits 3.6 ms");
        assert!(!p.is_empty());
        assert_eq!(p.take_due(t0 + 4 * MS).unwrap().0, "c");
        assert!(p.is_empty());
        assert_eq!(p.next_due(), None);
    }

    #[test]
    fn waits_average_the_pace() {
        let t0 = Instant::now();
        let mut p = Pacer::new(10 * MS);
        let n = 1000;
        for i in 0..n {
            p.hold(t0, i, f64::from(i) / f64::from(n));
        }
        let mut total = Duration::ZERO;
        while let Some(due) = p.next_due() {
            let (_, held) = p.take_due(due).unwrap();
            assert!((8 * MS..=12 * MS).contains(&held), "{held:?}");
            total += held;
        }
        let mean = total / n;
        assert!((9900..=10100).contains(&mean.as_micros()), "{mean:?}");
    }

    #[test]
    fn first_items_spread_over_one_pace() {
        let t0 = Instant::now();
        let mut p = Pacer::new(4 * MS);
        for (i, unit) in [0.0, 0.25, 0.5, 0.75].into_iter().enumerate() {
            p.hold_first(t0, i, unit);
        }
        let mut dues = Vec::new();
        while let Some(due) = p.next_due() {
            dues.push(due.duration_since(t0));
            p.take_due(due);
        }
        assert_eq!(dues, [Duration::ZERO, MS, 2 * MS, 3 * MS]);
    }

    #[test]
    fn the_precise_timer_wakes_on_time() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let timer = PreciseTimer::new().unwrap();
            for wait in [Duration::from_micros(300), 3 * MS, Duration::ZERO] {
                let t0 = Instant::now();
                timer.sleep_until(t0 + wait).await;
                let slept = t0.elapsed();
                assert!(slept >= wait, "woke early: {slept:?} < {wait:?}");
                // Tens of microseconds late on an idle machine; a bound a busy one keeps too.
                assert!(slept < wait + 100 * MS, "{slept:?} for {wait:?}");
            }
            // A deadline re-armed before it fired replaces the earlier one.
            let t0 = Instant::now();
            let far = Duration::from_secs(5);
            let abandoned = tokio::time::timeout(MS, timer.sleep_until(t0 + far));
            assert!(abandoned.await.is_err());
            timer.sleep_until(Instant::now() + MS).await;
            assert!(
                t0.elapsed() < far / 2,
                "the abandoned deadline was not replaced"
            );
        });
    }

    #[test]
    fn zero_pace_is_off() {
        let p: Pacer<()> = Pacer::new(Duration::ZERO);
        assert!(!p.enabled());
    }
}
