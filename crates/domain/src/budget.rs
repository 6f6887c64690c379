//! A token bucket for posts to API Gateway: the account's 10,000 requests/s are shared
//! by every API and every `PostToConnection`, so a broadcast paces itself to a budget
//! and leaves the rest to the routes.

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// `rate` tokens a second, at most `burst` at once: the generic cell rate algorithm, whose
/// one clock (the theoretical arrival time of the next token) each reservation moves
/// forward, so concurrent waiters never share a token.
#[derive(Debug)]
pub struct TokenBucket {
    /// The time between two tokens.
    interval: Duration,
    /// How far ahead of the clock a token may be spent: `(burst - 1) · interval`.
    tolerance: Duration,
    tat: Mutex<Instant>,
}

impl TokenBucket {
    /// A bucket that starts full.
    pub fn new(rate: f64, burst: f64) -> Self {
        let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
        Self {
            interval,
            tolerance: interval.mul_f64(burst.max(1.0) - 1.0),
            tat: Mutex::new(Instant::now()),
        }
    }

    /// Tokens a second.
    pub fn rate(&self) -> f64 {
        1.0 / self.interval.as_secs_f64()
    }

    /// Reserves a token if one is available by `deadline`, and returns when it may be
    /// spent; `None` (nothing reserved) if it would come too late.
    pub fn reserve(&self, deadline: Instant) -> Option<Instant> {
        let mut tat = self.tat.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let at = (*tat).max(now);
        let spend = at.checked_sub(self.tolerance).unwrap_or(now).max(now);
        // A token there now is always granted (the deadline may already be a moment ago).
        if spend > now && spend > deadline {
            return None;
        }
        *tat = at + self.interval;
        Some(spend)
    }

    /// Waits for a token; false (and nothing taken) if it would come after `deadline`. A
    /// token spent late (the task woke more than [`STALE`] after it: a busy CPU) is given
    /// up and another taken, so late posts never bunch up over the rate.
    pub async fn acquire(&self, deadline: Instant) -> bool {
        loop {
            let Some(at) = self.reserve(deadline) else { return false };
            // A token there now is spent now: no timer (each one takes the runtime's timer
            // lock, once per post, and rounds up to its next millisecond).
            if at <= Instant::now() {
                return true;
            }
            tokio::time::sleep_until(at).await;
            if Instant::now() <= at + STALE {
                return true;
            }
        }
    }
}

/// How late a token may still be spent.
pub const STALE: Duration = Duration::from_millis(20);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_bucket_spends_its_burst_then_its_rate() {
        let b = TokenBucket::new(100.0, 10.0);
        let start = Instant::now();
        let far = start + Duration::from_secs(60);
        for _ in 0..10 {
            assert!(b.acquire(far).await);
        }
        assert!(start.elapsed() < Duration::from_millis(1), "the burst is free");
        for _ in 0..100 {
            assert!(b.acquire(far).await);
        }
        // 100 more at 100/s: one second, give or take a token.
        let t = start.elapsed();
        assert!(t >= Duration::from_millis(990) && t <= Duration::from_millis(1010), "{t:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_after_the_deadline_is_not_taken() {
        let b = TokenBucket::new(10.0, 1.0);
        let soon = Instant::now() + Duration::from_millis(150);
        assert!(b.acquire(soon).await);
        assert!(b.acquire(soon).await); // at 100 ms
        assert!(!b.acquire(soon).await); // 200 ms is too late
                                         // Nothing was reserved by the refusal: the next token is still at 200 ms.
        assert_eq!(
            b.reserve(Instant::now() + Duration::from_secs(1)),
            Some(soon + Duration::from_millis(50))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_waiters_never_exceed_the_rate() {
        let b = std::sync::Arc::new(TokenBucket::new(1000.0, 50.0));
        let start = Instant::now();
        let far = start + Duration::from_secs(60);
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let b = b.clone();
                tokio::spawn(async move {
                    let mut times = Vec::new();
                    for _ in 0..200 {
                        b.acquire(far).await;
                        times.push(start.elapsed());
                    }
                    times
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all.sort();
        // 3,200 tokens: 50 at once, the rest at 1,000/s.
        let last = *all.last().unwrap();
        assert!(
            last >= Duration::from_millis(3140) && last <= Duration::from_millis(3160),
            "{last:?}"
        );
        // Any window of one second holds at most rate + burst.
        for (i, t) in all.iter().enumerate() {
            let within = all[i..].iter().take_while(|u| **u < *t + Duration::from_secs(1)).count();
            assert!(within <= 1050, "{within} tokens in the second from {t:?}");
        }
    }
}
