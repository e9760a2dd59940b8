//! The generator's dice: Request Authenticators, the `--loss` draws and the `--pace-ms` jitter.

/// A small, fast generator for Request Authenticators and the loss dice. Request
/// Authenticators must be unpredictable in production (RFC 2865 §3); a load test only needs
/// them distinct.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    fn next_u64(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn authenticator(&mut self) -> [u8; 16] {
        let mut a = [0u8; 16];
        let (hi, lo) = a.split_at_mut(8);
        hi.copy_from_slice(&self.next_u64().to_ne_bytes());
        lo.copy_from_slice(&self.next_u64().to_ne_bytes());
        a
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64) / ((1u64 << 53) as f64)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }
}
