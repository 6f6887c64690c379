//! A management API that behaves like API Gateway's under load, for benchmarks and the
//! local stack: each post takes a latency drawn from a log-normal distribution (given by
//! its median and p99), a token bucket of the account's rate and burst answers 429 above
//! it, and a fixed fraction of connections answers 410. A post that passes goes on to an
//! inner pusher (the hub's real sockets) when there is one.

use crate::hub::Hub;
use async_trait::async_trait;
use rand::Rng;
use realtime_domain::budget::TokenBucket;
use realtime_domain::ports::{ConnectionInfo, ConnectionPusher, PushError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How the simulated API behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Behaviour {
    pub median: Duration,
    pub p99: Duration,
    /// Requests a second the account allows, and how many at once.
    pub rate: f64,
    pub burst: f64,
    /// The fraction of connections that are gone (answer 410).
    pub gone: f64,
}

impl Default for Behaviour {
    /// API Gateway's documented account budget, with posts of 20 ms (p99 80 ms).
    fn default() -> Self {
        Self {
            median: Duration::from_millis(20),
            p99: Duration::from_millis(80),
            rate: 10_000.0,
            burst: 5_000.0,
            gone: 0.0,
        }
    }
}

impl std::str::FromStr for Behaviour {
    type Err = String;

    /// `median=20ms,p99=80ms,rate=10000,burst=5000,gone=0.01` (any subset; the rest default).
    fn from_str(s: &str) -> Result<Self, String> {
        let mut b = Behaviour::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| format!("{part}: expected key=value"))?;
            let ms = |v: &str| -> Result<Duration, String> {
                let n: f64 = v
                    .trim_end_matches("ms")
                    .parse()
                    .map_err(|_| format!("{k}: {v} is not milliseconds"))?;
                Ok(Duration::from_secs_f64(n.max(0.0) / 1000.0))
            };
            let num = |v: &str| -> Result<f64, String> { v.parse::<f64>().map_err(|_| format!("{k}: {v} is not a number")) };
            match k {
                "median" => b.median = ms(v)?,
                "p99" => b.p99 = ms(v)?,
                "rate" => b.rate = num(v)?,
                "burst" => b.burst = num(v)?,
                "gone" => b.gone = num(v)?.clamp(0.0, 1.0),
                _ => return Err(format!("unknown setting {k} (median, p99, rate, burst, gone)")),
            }
        }
        if b.p99 < b.median {
            return Err("p99 must be at least the median".into());
        }
        Ok(b)
    }
}

/// What the simulated API answered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    pub requests: u64,
    pub ok: u64,
    pub throttled: u64,
    pub gone: u64,
    /// The most requests the API accepted in any one second (a sliding window).
    pub peak_per_sec: u64,
}

pub struct SimulatedApiGateway {
    behaviour: Behaviour,
    bucket: TokenBucket,
    inner: Option<Arc<dyn ConnectionPusher>>,
    requests: AtomicU64,
    ok: AtomicU64,
    throttled: AtomicU64,
    gone: AtomicU64,
    started: Instant,
    /// When each accepted request arrived (milliseconds since `started`).
    accepted: Mutex<Vec<u32>>,
}

impl SimulatedApiGateway {
    pub fn new(behaviour: Behaviour) -> Self {
        Self {
            bucket: TokenBucket::new(behaviour.rate, behaviour.burst),
            behaviour,
            inner: None,
            requests: AtomicU64::new(0),
            ok: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            gone: AtomicU64::new(0),
            started: Instant::now(),
            accepted: Mutex::new(Vec::new()),
        }
    }

    /// Posts that pass go on to `inner` (the hub: real sockets).
    pub fn in_front_of(mut self, inner: Arc<Hub>) -> Self {
        self.inner = Some(inner);
        self
    }

    /// Whether a connection is one of the gone fraction (the same answer every time).
    fn is_gone(&self, connection_id: &str) -> bool {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in connection_id.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        (h % 1_000_000) as f64 / 1_000_000.0 < self.behaviour.gone
    }

    /// A latency from the log-normal distribution with this median and p99.
    fn latency(&self) -> Duration {
        let median = self.behaviour.median.as_secs_f64().max(1e-6);
        let sigma = (self.behaviour.p99.as_secs_f64().max(median) / median).ln() / 2.326;
        let mut rng = rand::rng();
        // Box-Muller: one standard normal from two uniforms.
        let (u1, u2): (f64, f64) = (rng.random_range(f64::EPSILON..1.0), rng.random());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        Duration::from_secs_f64(median * (sigma * z).exp())
    }

    pub fn counts(&self) -> Counts {
        let mut times = self.accepted.lock().unwrap_or_else(|e| e.into_inner()).clone();
        times.sort_unstable();
        let mut peak = 0;
        let mut lo = 0;
        for hi in 0..times.len() {
            while times[hi] - times[lo] >= 1000 {
                lo += 1;
            }
            peak = peak.max(hi - lo + 1);
        }
        Counts {
            requests: self.requests.load(Ordering::Relaxed),
            ok: self.ok.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            gone: self.gone.load(Ordering::Relaxed),
            peak_per_sec: peak as u64,
        }
    }
}

#[async_trait]
impl ConnectionPusher for SimulatedApiGateway {
    async fn post(&self, connection_id: &str, data: &[u8]) -> Result<(), PushError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        // Over the account's rate: 429 at once, as API Gateway answers.
        if self.bucket.reserve(Instant::now()).is_none() {
            self.throttled.fetch_add(1, Ordering::Relaxed);
            return Err(PushError::Throttled);
        }
        let at = self.started.elapsed().as_millis() as u32;
        self.accepted.lock().unwrap_or_else(|e| e.into_inner()).push(at);
        tokio::time::sleep(self.latency()).await;
        if self.is_gone(connection_id) {
            self.gone.fetch_add(1, Ordering::Relaxed);
            return Err(PushError::Gone);
        }
        if let Some(inner) = &self.inner {
            inner.post(connection_id, data).await?;
        }
        self.ok.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn close(&self, connection_id: &str) -> Result<(), PushError> {
        match &self.inner {
            Some(inner) => inner.close(connection_id).await,
            None => Ok(()),
        }
    }

    async fn info(&self, connection_id: &str) -> Result<ConnectionInfo, PushError> {
        match &self.inner {
            Some(inner) => inner.info(connection_id).await,
            None if self.is_gone(connection_id) => Err(PushError::Gone),
            None => Ok(ConnectionInfo {
                connected_at: chrono::Utc::now(),
                last_active_at: chrono::Utc::now(),
                source_ip: None,
                user_agent: None,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn posts_take_the_latency_the_bucket_throttles_and_a_fraction_is_gone() {
        let api = Arc::new(SimulatedApiGateway::new(Behaviour {
            median: Duration::from_millis(20),
            p99: Duration::from_millis(80),
            rate: 100.0,
            burst: 10.0,
            gone: 0.1,
        }));
        let mut lat: Vec<Duration> = (0..10_000).map(|_| api.latency()).collect();
        lat.sort();
        let (p50, p99) = (lat[5_000], lat[9_900]);
        assert!(p50 > Duration::from_millis(18) && p50 < Duration::from_millis(22), "{p50:?}");
        assert!(p99 > Duration::from_millis(65) && p99 < Duration::from_millis(95), "{p99:?}");

        // 50 posts at once: the burst passes, the rest is 429.
        let posts: Vec<_> = (0..50)
            .map(|i| {
                let api = api.clone();
                tokio::spawn(async move { api.post(&format!("c{i}"), b"x").await })
            })
            .collect();
        let mut throttled = 0;
        for p in posts {
            if p.await.unwrap() == Err(PushError::Throttled) {
                throttled += 1;
            }
        }
        assert_eq!(throttled, 40);
        let c = api.counts();
        assert_eq!((c.requests, c.throttled, c.ok + c.gone), (50, 40, 10));
        assert_eq!(c.peak_per_sec, 10);

        // The gone fraction: about 10% of connections, the same ones every time.
        let gone = (0..10_000).filter(|i| api.is_gone(&format!("conn-{i}"))).count();
        assert!((900..1100).contains(&gone), "{gone}");
        assert_eq!(api.is_gone("conn-7"), api.is_gone("conn-7"));
        assert!("median=5ms,p99=40,rate=2000,gone=0.5".parse::<Behaviour>().is_ok());
        assert!("p99=1ms".parse::<Behaviour>().is_err());
    }
}
