//! The time, as the shell read it once for one datagram.
//!
//! The core reads no clock (sans IO; `.clippy.toml` bans clock reads outside the shell): the
//! monotonic time drives timeouts and rate limits, the wall time is what certificates and CRLs
//! are judged against when a resumed session's certificate is verified again.

use std::ops::{Add, AddAssign};
use std::time::{Duration, Instant};

use rustls::pki_types::UnixTime;

/// Both clocks, read together by the shell.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub monotonic: Instant,
    pub wall: UnixTime,
}

impl Now {
    pub fn new(monotonic: Instant, wall: UnixTime) -> Self {
        Now { monotonic, wall }
    }
}

/// Both clocks advanced together (tests and the fuzz harness run on virtual time).
impl Add<Duration> for Now {
    type Output = Now;
    fn add(self, d: Duration) -> Now {
        let wall = UnixTime::since_unix_epoch(Duration::from_secs(
            self.wall.as_secs().saturating_add(d.as_secs()),
        ));
        Now {
            monotonic: self.monotonic.checked_add(d).unwrap_or(self.monotonic),
            wall,
        }
    }
}

impl AddAssign<Duration> for Now {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}
