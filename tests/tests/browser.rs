//! The page and the browser client in a real browser: `tests/browser/chat.mjs` drives
//! Debian's Chromium with playwright-core (both installed by `infra/setup.sh`) against
//! a local stack this test starts. The screenshot lands in `target/artifacts/`.

use realtime_tests::procs::{tools_dir, workspace_root};
use realtime_tests::start_stack;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_chat_and_one_survives_a_dropped_socket() {
    let node_modules = tools_dir().join("node_modules");
    assert!(
        node_modules.join("playwright-core").exists(),
        "playwright-core is missing: run bash infra/setup.sh"
    );
    let stack = start_stack().await.unwrap();
    let artifacts = std::env::var_os("REALTIME_ARTIFACTS")
        .map(Into::into)
        .unwrap_or_else(|| workspace_root().join("target/artifacts"));
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("browser.png");
    let _ = std::fs::remove_file(&shot);
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(workspace_root().join("tests/browser/chat.mjs"))
        .arg(stack.http_url())
        .arg(&shot)
        .env("NODE_PATH", &node_modules)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("the browser test ends within 2 minutes")
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "browser test failed\n{stdout}\n{stderr}");
    println!("{stdout}");
    assert!(
        std::fs::metadata(&shot).map(|m| m.len() > 10_000).unwrap_or(false),
        "no screenshot at {}",
        shot.display()
    );
    stack.stop().await;
}

/// The admin console (`/admin/events`, `/admin/websocket`; `tests/browser/admin.mjs`): live
/// plots, the live tail and its filter, the latency histogram, the busiest channels, then
/// connections and deliveries. Screenshots of both pages land in `target/artifacts/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_console_plots_live_traffic() {
    let node_modules = tools_dir().join("node_modules");
    assert!(
        node_modules.join("playwright-core").exists(),
        "playwright-core is missing: run bash infra/setup.sh"
    );
    let stack = start_stack().await.unwrap();
    let artifacts = std::env::var_os("REALTIME_ARTIFACTS")
        .map(Into::into)
        .unwrap_or_else(|| workspace_root().join("target/artifacts"));
    std::fs::create_dir_all(&artifacts).unwrap();
    let shots = [artifacts.join("admin-events.png"), artifacts.join("admin-websocket.png")];
    for shot in &shots {
        let _ = std::fs::remove_file(shot);
    }
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(workspace_root().join("tests/browser/admin.mjs"))
        .arg(stack.http_url())
        .args(&shots)
        .env("NODE_PATH", &node_modules)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .expect("the admin console test ends within 90 s")
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "admin console test failed\n{stdout}\n{stderr}");
    println!("{stdout}");
    for shot in &shots {
        assert!(
            std::fs::metadata(shot).map(|m| m.len() > 10_000).unwrap_or(false),
            "no screenshot at {}",
            shot.display()
        );
    }
    stack.stop().await;
}
