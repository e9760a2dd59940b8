//! EAP-TLS fragmentation and reassembly: RFC 5216 §2.1.5, with the L/M flag and TLS
//! Message Length rules of §3.1 (unchanged for TLS 1.3 by RFC 9190).
//!
//! EAP has no windowing: each fragment is acknowledged by an empty EAP-TLS packet before the
//! next is sent. These types only split and join octets; sending ACKs and matching EAP
//! Identifiers is the caller's state machine.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use thiserror::Error;

use super::tls_frame::{TlsFlags, TlsFrame};

/// Bounds on what a peer may make us buffer. A hostile peer controls both the announced
/// length and the number of fragments, so both are capped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyLimits {
    /// Largest reassembled TLS message, in octets.
    pub max_message_len: usize,
    /// Most fragments one message may arrive in.
    pub max_fragments: u32,
}

impl Default for ReassemblyLimits {
    /// 64 KiB in at most 64 fragments: ample for a client certificate chain.
    fn default() -> Self {
        Self {
            max_message_len: 65536,
            max_fragments: 64,
        }
    }
}

/// Reassembly octets held by all conversations together, bounded: per-conversation limits alone
/// let 65,536 conversations each pin a whole `max_message_len`. Octets are charged as they arrive
/// (never from the announced length) and given back when the message completes, fails or its
/// conversation is dropped.
#[derive(Debug)]
pub struct ReassemblyBudget {
    used: AtomicUsize,
    max: usize,
}

impl ReassemblyBudget {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            used: AtomicUsize::new(0),
            max,
        })
    }

    /// Octets currently held by reassemblies in progress.
    pub fn in_use(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn try_take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|total| *total <= self.max)
            })
            .is_ok()
    }

    fn give_back(&self, n: usize) {
        // Never below zero: each reassembler gives back exactly what it took.
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(n))
            });
    }
}

impl Drop for Reassembler {
    fn drop(&mut self) {
        self.release();
    }
}

/// Result of feeding one fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// M was set: acknowledge and wait for the next fragment.
    NeedMore,
    /// The whole TLS message (possibly empty, e.g. a bare ACK fed in by mistake).
    Complete(Vec<u8>),
}

/// Why a peer's fragment sequence was rejected. The reassembler is reset afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FragmentError {
    #[error("EAP-TLS message of {announced_or_received} octets exceeds the limit of {limit}")]
    TooLarge {
        announced_or_received: usize,
        limit: usize,
    },
    #[error("EAP-TLS message sent in more than {limit} fragments")]
    TooManyFragments { limit: u32 },
    #[error("EAP-TLS fragments carry {received} octets, more than the announced {announced}")]
    MoreThanAnnounced { announced: u32, received: usize },
    #[error("EAP-TLS message ended after {received} octets, less than the announced {announced}")]
    LessThanAnnounced { announced: u32, received: usize },
    #[error("EAP-TLS TLS Message Length changed from {first} to {now} between fragments")]
    LengthChanged { first: u32, now: u32 },
    #[error("EAP-TLS fragment with M flag set carries no data")]
    EmptyFragment,
    #[error("reassembly memory for all conversations (eap.max_reassembly_bytes_total) is in use")]
    BudgetExhausted,
}

/// Joins the fragments of one TLS message sent by the peer.
///
/// Accepted: an unfragmented message (M clear) with or without L; a fragmented message whose
/// first fragment has L and M. Later fragments may repeat L only with the same value. A
/// first fragment with M but without L violates §3.1's MUST, but some peers send it, so it
/// is accepted and only `max_message_len` bounds the total; if L shows up on a later
/// fragment it is then checked like a first announcement. The S flag is ignored here.
#[derive(Debug)]
pub struct Reassembler {
    limits: ReassemblyLimits,
    buffer: Vec<u8>,
    announced: Option<u32>,
    fragments: u32,
    in_progress: bool,
    /// The shared budget and the octets charged to it for `buffer`.
    budget: Option<Arc<ReassemblyBudget>>,
    charged: usize,
}

impl Reassembler {
    pub fn new(limits: ReassemblyLimits) -> Self {
        Self {
            limits,
            buffer: Vec::new(),
            announced: None,
            fragments: 0,
            in_progress: false,
            budget: None,
            charged: 0,
        }
    }

    /// A reassembler whose buffered octets count against `budget`.
    pub fn with_budget(limits: ReassemblyLimits, budget: Option<Arc<ReassemblyBudget>>) -> Self {
        let mut r = Self::new(limits);
        r.budget = budget;
        r
    }

    /// Octets buffered for the message in progress (the memory a peer holds here).
    pub fn buffered_capacity(&self) -> usize {
        self.buffer.capacity()
    }

    /// True after a fragment with M was accepted and before the message completes.
    pub fn in_progress(&self) -> bool {
        self.in_progress
    }

    /// Feeds one received frame. After `Complete` or any error the reassembler starts over,
    /// so the same instance serves the next message.
    pub fn push(&mut self, frame: &TlsFrame) -> Result<Progress, FragmentError> {
        let result = self.accept(frame);
        if !matches!(result, Ok(Progress::NeedMore)) {
            self.reset();
        }
        result
    }

    fn reset(&mut self) {
        self.release();
        self.buffer = Vec::new();
        self.announced = None;
        self.fragments = 0;
        self.in_progress = false;
    }

    /// Charges `n` more octets to the shared budget and makes room for exactly them, so the
    /// buffer's allocation follows what arrived (not Vec's doubling, not the announcement).
    fn charge(&mut self, n: usize) -> Result<(), FragmentError> {
        let needed = self.buffer.len().saturating_add(n);
        if needed > self.charged {
            if let Some(budget) = &self.budget
                && !budget.try_take(needed - self.charged)
            {
                return Err(FragmentError::BudgetExhausted);
            }
            self.charged = needed;
        }
        self.buffer.reserve_exact(n);
        Ok(())
    }

    fn release(&mut self) {
        if let Some(budget) = &self.budget {
            budget.give_back(self.charged);
        }
        self.charged = 0;
    }

    fn accept(&mut self, frame: &TlsFrame) -> Result<Progress, FragmentError> {
        self.fragments = self.fragments.saturating_add(1);
        if self.fragments > self.limits.max_fragments {
            return Err(FragmentError::TooManyFragments {
                limit: self.limits.max_fragments,
            });
        }

        if let Some(now) = frame.message_length {
            match self.announced {
                Some(first) if first != now => {
                    return Err(FragmentError::LengthChanged { first, now });
                }
                Some(_) => {}
                None => {
                    let announced = to_usize(now);
                    if announced > self.limits.max_message_len {
                        return Err(FragmentError::TooLarge {
                            announced_or_received: announced,
                            limit: self.limits.max_message_len,
                        });
                    }
                    // Nothing is reserved from the announcement: a peer that announces 64 KiB
                    // and sends 100 octets holds 100 octets (the buffer grows as data arrives).
                    self.announced = Some(now);
                }
            }
        }

        let more = frame.flags.more_fragments;
        if more && frame.data.is_empty() {
            // An empty non-final fragment makes no progress and would let a peer spin us
            // through fragments for free.
            return Err(FragmentError::EmptyFragment);
        }

        // Check before copying, so an oversized fragment is never buffered.
        let received = self.buffer.len().saturating_add(frame.data.len());
        if received > self.limits.max_message_len {
            return Err(FragmentError::TooLarge {
                announced_or_received: received,
                limit: self.limits.max_message_len,
            });
        }
        if let Some(announced) = self.announced
            && received > to_usize(announced)
        {
            return Err(FragmentError::MoreThanAnnounced {
                announced,
                received,
            });
        }
        self.charge(frame.data.len())?;
        self.buffer.extend_from_slice(frame.data);

        if more {
            self.in_progress = true;
            return Ok(Progress::NeedMore);
        }
        if let Some(announced) = self.announced
            && received < to_usize(announced)
        {
            return Err(FragmentError::LessThanAnnounced {
                announced,
                received,
            });
        }
        Ok(Progress::Complete(std::mem::take(&mut self.buffer)))
    }
}

/// `u32` always fits in `usize` on the targets we build for; saturating keeps the limit
/// checks correct even if it did not.
fn to_usize(value: u32) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

/// Splits one outgoing TLS message into EAP-TLS frames of at most `max_fragment_data`
/// TLS octets each.
///
/// - Message fits in one frame: a single frame with neither L nor M.
/// - Otherwise: the first frame has L and M and the total length, middle frames have M,
///   the last has no flags.
/// - Empty message: exactly one frame with no flags and no data (the same octets as an
///   ACK), so "send the message" always sends something.
///
/// The caller sends one frame, waits for the peer's ACK, then asks for the next. To fit a
/// link MTU, use `mtu - TLS_HEADER_OVERHEAD` as `max_fragment_data`.
#[derive(Debug, Clone)]
pub struct Fragmenter {
    message: Vec<u8>,
    offset: usize,
    max_fragment_data: usize,
    emitted_any: bool,
}

impl Fragmenter {
    /// `max_fragment_data` of 0 is treated as 1 so progress is always made.
    pub fn new(message: Vec<u8>, max_fragment_data: usize) -> Self {
        Self {
            message,
            offset: 0,
            max_fragment_data: max_fragment_data.max(1),
            emitted_any: false,
        }
    }

    /// The next frame to send, or `None` once every frame has been handed out.
    pub fn next_frame(&mut self) -> Option<TlsFrame<'_>> {
        if self.is_done() {
            return None;
        }
        let total = self.message.len();
        let first = !self.emitted_any;
        let fragmented = total > self.max_fragment_data;
        let start = self.offset;
        let end = start.saturating_add(self.max_fragment_data).min(total);
        self.offset = end;
        self.emitted_any = true;

        let length_included = first && fragmented;
        let data = self.message.get(start..end).unwrap_or_default();
        Some(TlsFrame {
            flags: TlsFlags {
                length_included,
                more_fragments: end < total,
                start: false,
            },
            // A TLS message beyond 4 GiB cannot occur; saturate rather than wrap.
            message_length: length_included.then(|| u32::try_from(total).unwrap_or(u32::MAX)),
            data,
        })
    }

    /// True when `next_frame` has nothing more to give.
    pub fn is_done(&self) -> bool {
        self.emitted_any && self.offset >= self.message.len()
    }

    /// Message octets not yet handed out (0 for an empty message even before its one frame).
    pub fn remaining(&self) -> usize {
        self.message.len().saturating_sub(self.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame(l: Option<u32>, more: bool, data: &[u8]) -> TlsFrame<'_> {
        TlsFrame {
            flags: TlsFlags {
                length_included: l.is_some(),
                more_fragments: more,
                start: false,
            },
            message_length: l,
            data,
        }
    }

    fn small() -> Reassembler {
        Reassembler::new(ReassemblyLimits {
            max_message_len: 10,
            max_fragments: 3,
        })
    }

    /// A peer announcing 64 KiB and sending 100 octets holds about 100 octets, not 64 KiB
    /// (the announcement used to be reserved up front: 65,536 conversations pinned ~4 GiB).
    #[test]
    fn memory_follows_what_arrived_not_the_announcement() {
        let mut r = Reassembler::new(ReassemblyLimits::default());
        assert_eq!(
            r.push(&frame(Some(65536), true, &[7u8; 100])),
            Ok(Progress::NeedMore)
        );
        assert!(
            r.buffered_capacity() <= 200,
            "capacity {} after 100 octets",
            r.buffered_capacity()
        );
        assert_eq!(
            r.push(&frame(None, true, &[7u8; 100])),
            Ok(Progress::NeedMore)
        );
        assert!(r.buffered_capacity() <= 400);
    }

    #[test]
    fn shared_budget_refuses_then_recovers() {
        let budget = ReassemblyBudget::new(1000);
        let limits = ReassemblyLimits::default();
        let mut a = Reassembler::with_budget(limits, Some(budget.clone()));
        let mut b = Reassembler::with_budget(limits, Some(budget.clone()));
        assert_eq!(
            a.push(&frame(Some(4000), true, &[1u8; 800])),
            Ok(Progress::NeedMore)
        );
        assert_eq!(budget.in_use(), 800);
        assert_eq!(
            b.push(&frame(Some(4000), true, &[2u8; 300])),
            Err(FragmentError::BudgetExhausted)
        );
        // The refused message holds nothing.
        assert_eq!(budget.in_use(), 800);
        drop(a);
        assert_eq!(budget.in_use(), 0);
        assert_eq!(
            b.push(&frame(Some(400), true, &[2u8; 300])),
            Ok(Progress::NeedMore)
        );
        assert_eq!(
            b.push(&frame(None, false, &[2u8; 100])),
            Ok(Progress::Complete(vec![2u8; 400]))
        );
        // A completed message gives its octets back.
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn unfragmented_with_and_without_length() {
        let mut r = small();
        assert_eq!(
            r.push(&frame(None, false, b"abc")),
            Ok(Progress::Complete(b"abc".to_vec()))
        );
        assert_eq!(
            r.push(&frame(Some(3), false, b"abc")),
            Ok(Progress::Complete(b"abc".to_vec()))
        );
        assert!(!r.in_progress());
    }

    #[test]
    fn fragmented_with_repeated_length() {
        let mut r = small();
        assert_eq!(r.push(&frame(Some(6), true, b"ab")), Ok(Progress::NeedMore));
        assert!(r.in_progress());
        assert_eq!(r.push(&frame(Some(6), true, b"cd")), Ok(Progress::NeedMore));
        assert_eq!(
            r.push(&frame(None, false, b"ef")),
            Ok(Progress::Complete(b"abcdef".to_vec()))
        );
        assert!(!r.in_progress());
    }

    #[test]
    fn first_fragment_without_length_is_tolerated() {
        let mut r = small();
        assert_eq!(r.push(&frame(None, true, b"abcd")), Ok(Progress::NeedMore));
        assert_eq!(
            r.push(&frame(None, false, b"ef")),
            Ok(Progress::Complete(b"abcdef".to_vec()))
        );
        // ...but the size limit still applies.
        assert_eq!(
            r.push(&frame(None, true, b"abcdef")),
            Ok(Progress::NeedMore)
        );
        assert_eq!(
            r.push(&frame(None, false, b"ghijk")),
            Err(FragmentError::TooLarge {
                announced_or_received: 11,
                limit: 10
            })
        );
        // A late L is checked against what has already arrived.
        assert_eq!(r.push(&frame(None, true, b"abcd")), Ok(Progress::NeedMore));
        assert_eq!(
            r.push(&frame(Some(5), false, b"ef")),
            Err(FragmentError::MoreThanAnnounced {
                announced: 5,
                received: 6
            })
        );
    }

    #[test]
    fn more_than_announced() {
        let mut r = small();
        assert_eq!(r.push(&frame(Some(3), true, b"ab")), Ok(Progress::NeedMore));
        assert_eq!(
            r.push(&frame(None, false, b"cd")),
            Err(FragmentError::MoreThanAnnounced {
                announced: 3,
                received: 4
            })
        );
        assert!(!r.in_progress());
        // Single frame whose data exceeds its own L.
        assert_eq!(
            r.push(&frame(Some(1), false, b"ab")),
            Err(FragmentError::MoreThanAnnounced {
                announced: 1,
                received: 2
            })
        );
    }

    #[test]
    fn less_than_announced() {
        let mut r = small();
        assert_eq!(r.push(&frame(Some(8), true, b"ab")), Ok(Progress::NeedMore));
        assert_eq!(
            r.push(&frame(None, false, b"cd")),
            Err(FragmentError::LessThanAnnounced {
                announced: 8,
                received: 4
            })
        );
        // Reset after the error: a fresh message works.
        assert_eq!(
            r.push(&frame(None, false, b"x")),
            Ok(Progress::Complete(b"x".to_vec()))
        );
    }

    #[test]
    fn too_many_fragments() {
        let mut r = small();
        for _ in 0..3 {
            assert_eq!(r.push(&frame(None, true, b"a")), Ok(Progress::NeedMore));
        }
        assert_eq!(
            r.push(&frame(None, false, b"a")),
            Err(FragmentError::TooManyFragments { limit: 3 })
        );
        assert!(!r.in_progress());
    }

    #[test]
    fn over_limit() {
        let mut r = small();
        assert_eq!(
            r.push(&frame(Some(11), true, b"a")),
            Err(FragmentError::TooLarge {
                announced_or_received: 11,
                limit: 10
            })
        );
        assert_eq!(
            r.push(&frame(Some(u32::MAX), true, b"a")),
            Err(FragmentError::TooLarge {
                announced_or_received: to_usize(u32::MAX),
                limit: 10
            })
        );
        assert_eq!(
            r.push(&frame(None, false, &[0; 11])),
            Err(FragmentError::TooLarge {
                announced_or_received: 11,
                limit: 10
            })
        );
    }

    #[test]
    fn length_changed() {
        let mut r = small();
        assert_eq!(r.push(&frame(Some(6), true, b"ab")), Ok(Progress::NeedMore));
        assert_eq!(
            r.push(&frame(Some(7), true, b"cd")),
            Err(FragmentError::LengthChanged { first: 6, now: 7 })
        );
        assert!(!r.in_progress());
    }

    #[test]
    fn empty_non_final_fragment() {
        let mut r = small();
        assert_eq!(
            r.push(&frame(Some(6), true, b"")),
            Err(FragmentError::EmptyFragment)
        );
        assert_eq!(r.push(&frame(Some(6), true, b"ab")), Ok(Progress::NeedMore));
        assert_eq!(
            r.push(&frame(None, true, b"")),
            Err(FragmentError::EmptyFragment)
        );
    }

    #[test]
    fn fragmenter_shapes() {
        let mut f = Fragmenter::new(b"abcde".to_vec(), 2);
        assert_eq!(f.remaining(), 5);
        assert_eq!(f.next_frame(), Some(frame(Some(5), true, b"ab")));
        assert_eq!(f.next_frame(), Some(frame(None, true, b"cd")));
        assert_eq!(f.remaining(), 1);
        assert!(!f.is_done());
        assert_eq!(f.next_frame(), Some(frame(None, false, b"e")));
        assert!(f.is_done());
        assert_eq!(f.next_frame(), None);

        let mut f = Fragmenter::new(b"abc".to_vec(), 3);
        assert_eq!(f.next_frame(), Some(frame(None, false, b"abc")));
        assert_eq!(f.next_frame(), None);

        let mut f = Fragmenter::new(Vec::new(), 0);
        assert!(!f.is_done());
        assert_eq!(f.next_frame(), Some(frame(None, false, b"")));
        assert!(f.is_done());
        assert_eq!(f.next_frame(), None);

        // 0 is clamped to 1.
        let mut f = Fragmenter::new(b"ab".to_vec(), 0);
        assert_eq!(f.next_frame(), Some(frame(Some(2), true, b"a")));
        assert_eq!(f.next_frame(), Some(frame(None, false, b"b")));
        assert_eq!(f.next_frame(), None);
    }

    proptest! {
        #[test]
        fn fragment_then_reassemble(
            message in proptest::collection::vec(any::<u8>(), 0..20000),
            n in 1usize..=1500,
        ) {
            let expected_frames = message.len().div_ceil(n).max(1);
            let mut r = Reassembler::new(ReassemblyLimits {
                max_message_len: 20000,
                max_fragments: 20000,
            });
            let mut f = Fragmenter::new(message.clone(), n);
            let mut count = 0;
            let mut result = None;
            while let Some(frame) = f.next_frame() {
                count += 1;
                prop_assert!(frame.data.len() <= n);
                prop_assert!(result.is_none(), "frame after Complete");
                match r.push(&frame).unwrap() {
                    Progress::NeedMore => prop_assert!(count < expected_frames),
                    Progress::Complete(m) => {
                        prop_assert_eq!(count, expected_frames);
                        result = Some(m);
                    }
                }
            }
            prop_assert_eq!(count, expected_frames);
            prop_assert!(f.is_done());
            prop_assert_eq!(f.remaining(), 0);
            prop_assert_eq!(result, Some(message));
            prop_assert!(!r.in_progress());
        }

        #[test]
        fn reassembler_never_panics(
            frames in proptest::collection::vec(
                (proptest::option::of(0u32..40), any::<bool>(),
                 proptest::collection::vec(any::<u8>(), 0..12)),
                0..12,
            ),
        ) {
            let mut r = small();
            for (l, more, data) in &frames {
                if let Ok(Progress::Complete(m)) = r.push(&frame(*l, *more, data)) {
                    prop_assert!(m.len() <= 10);
                }
            }
        }
    }
}
