//! The one retry policy: jittered exponential backoff, for every call that may pass on
//! a second try (a throttled AWS call, a contended transaction, a failed push).

use rand::Rng;
use std::time::Duration;

/// Jittered exponential backoff: `attempts` tries in all; before retry `n` (0-based)
/// it waits between half and all of `min(max, base * 2^n)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    pub const fn new(attempts: u32, base: Duration) -> Self {
        Self {
            attempts,
            base,
            max: Duration::from_secs(2),
        }
    }

    /// The wait before retry `retry` (0 = the first retry).
    pub fn delay(&self, retry: u32) -> Duration {
        let cap = self.base.saturating_mul(2u32.saturating_pow(retry.min(16))).min(self.max);
        let half = cap / 2;
        let jitter_ms = u64::try_from((cap - half).as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(rand::rng().random_range(0..=jitter_ms))
    }

    /// Sleeps the wait before retry `retry`.
    pub async fn sleep(&self, retry: u32) {
        tokio::time::sleep(self.delay(retry)).await;
    }
}

/// A contended transaction (a conditional write that lost a race, a throttled table):
/// short waits, growing to a few tens of milliseconds, since the winner is already done.
/// Callers bound their own attempts (`trips::ATTEMPTS`, the chat's turn loop).
pub const CONTENDED: Backoff = Backoff {
    attempts: u32::MAX,
    base: Duration::from_millis(2),
    max: Duration::from_millis(64),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let b = Backoff {
            attempts: 5,
            base: Duration::from_millis(50),
            max: Duration::from_millis(300),
        };
        for _ in 0..100 {
            let d0 = b.delay(0);
            assert!(d0 >= Duration::from_millis(25) && d0 <= Duration::from_millis(50), "{d0:?}");
            let d2 = b.delay(2);
            assert!(d2 >= Duration::from_millis(100) && d2 <= Duration::from_millis(200), "{d2:?}");
            assert!(b.delay(10) <= Duration::from_millis(300));
        }
    }
}
