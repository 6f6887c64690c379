//! Child processes for tests: free loopback ports, readiness waits, kill on drop.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (the OS picks it; a tiny race with other binders).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// The workspace root (the folder holding the top-level Cargo.toml).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Where `infra/setup.sh` installs the pinned tools the tests need.
pub fn tools_dir() -> PathBuf {
    std::env::var_os("REALTIME_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".tools"))
}

/// Waits until something accepts TCP connections on 127.0.0.1:port.
pub async fn wait_for_port(port: u16, timeout: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        if start.elapsed() > timeout {
            anyhow::bail!("nothing listened on 127.0.0.1:{port} within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Kills and reaps the child when dropped, so a failing test leaves no server behind.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `url` answers an HTTP GET with a success status, and fails early when
/// `child` (the server that should answer) has exited.
pub async fn wait_for_http(url: &str, timeout: Duration, child: &mut Child) -> anyhow::Result<()> {
    let start = Instant::now();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
    loop {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("the server exited ({status}) before {url} answered");
        }
        if http.get(url).send().await.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        if start.elapsed() > timeout {
            anyhow::bail!("{url} did not answer within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
