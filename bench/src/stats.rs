//! Percentiles of latency samples (microseconds).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub n: usize,
    pub p50_us: u32,
    pub p99_us: u32,
    pub max_us: u32,
    pub mean_us: f64,
}

/// Nearest-rank percentiles; sorts `v`.
pub fn summarize(v: &mut [u32]) -> Summary {
    if v.is_empty() {
        return Summary::default();
    }
    v.sort_unstable();
    let rank = |p: f64| v[(((p / 100.0) * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Summary {
        n: v.len(),
        p50_us: rank(50.0),
        p99_us: rank(99.0),
        max_us: v[v.len() - 1],
        mean_us: v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64,
    }
}

/// Microseconds as milliseconds with two decimals.
pub fn ms(us: u32) -> String {
    format!("{:.2}", f64::from(us) / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut v: Vec<u32> = (1..=100).rev().collect();
        let s = summarize(&mut v);
        assert_eq!((s.n, s.p50_us, s.p99_us, s.max_us), (100, 50, 99, 100));
        assert_eq!(summarize(&mut []).n, 0);
        assert_eq!(summarize(&mut [7]).p99_us, 7);
    }
}
