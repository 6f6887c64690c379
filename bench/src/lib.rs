//! Benchmarks of issue 7, as a library so that the binaries and the smoke test share
//! one harness:
//!
//! * [`e2e`]: the load client. It connects N WebSocket subscribers to one channel of a
//!   server (the local stack, Socket.IO 4, or the bare broadcast server), publishes
//!   messages over HTTP and times each one from just before the POST to its receipt on
//!   every subscriber. Bounded in count and time; 127.0.0.1 only.
//! * [`procfs`]: the server's CPU time and RSS, read from `/proc/<pid>`.
//! * [`counting`]: the three ports wrapped to count the AWS calls they stand for.
//! * [`runtime_api`]: a minimal Lambda Runtime API on loopback, for cold starts.
//! * [`cost`]: AWS list prices and the cost per million delivered messages.
//! * [`plot`]: a PNG of latency against subscribers, with no font or system dependency.

pub mod cost;
pub mod counting;
pub mod e2e;
pub mod plot;
pub mod procfs;
pub mod runtime_api;
pub mod stats;

/// Refuses any address that is not loopback: the load never leaves this machine.
pub fn ensure_loopback(url: &str) -> anyhow::Result<()> {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow::anyhow!("not a URL: {url}"))?;
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    anyhow::ensure!(
        host == "localhost" || host.starts_with("127.") || host == "[::1]",
        "the benchmark only talks to loopback addresses, not {host}"
    );
    Ok(())
}

/// Raises the soft limit of open files to the hard limit (10,000 sockets need it).
pub fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) != 0 {
            return 0;
        }
        if l.rlim_cur < l.rlim_max {
            let want = libc::rlimit {
                rlim_cur: l.rlim_max,
                rlim_max: l.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return want.rlim_cur;
            }
        }
        l.rlim_cur
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_loopback_is_a_target() {
        assert!(super::ensure_loopback("http://127.0.0.1:3000/api").is_ok());
        assert!(super::ensure_loopback("ws://localhost:1/ws").is_ok());
        assert!(super::ensure_loopback("http://10.0.0.1:3000").is_err());
        assert!(super::ensure_loopback("http://example.com").is_err());
    }
}
