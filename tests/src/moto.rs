//! moto (`moto_server`), the AWS mock the EventBridge adapter is tested against: one
//! server per `Moto`, on a free loopback port, killed when the `Moto` is dropped.

use crate::procs::{free_port, tools_dir, wait_for_http, ChildGuard};
use anyhow::Context;
use std::process::{Command, Stdio};
use std::time::Duration;

pub struct Moto {
    /// `http://127.0.0.1:{port}`: give it to `realtime_aws::sdk::local_config`.
    pub endpoint: String,
    _child: ChildGuard,
}

/// Starts `moto_server` (installed by `bash infra/setup.sh`) and waits until it answers.
pub async fn start() -> anyhow::Result<Moto> {
    let bin = tools_dir().join("venv/bin/moto_server");
    if !bin.is_file() {
        anyhow::bail!(
            "moto is not installed ({} is missing): run `bash infra/setup.sh` first",
            bin.display()
        );
    }
    let port = free_port();
    let log_path = std::env::temp_dir().join(format!("realtime-moto-{port}.log"));
    let log = std::fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let child = Command::new(&bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let mut guard = ChildGuard(child);
    let endpoint = format!("http://127.0.0.1:{port}");
    if let Err(e) = wait_for_http(&format!("{endpoint}/moto-api/"), Duration::from_secs(30), &mut guard.0).await {
        let tail = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: String = tail
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        anyhow::bail!("moto did not start: {e}\n--- {} ---\n{tail}", log_path.display());
    }
    let _ = std::fs::remove_file(&log_path);
    Ok(Moto { endpoint, _child: guard })
}
