//! The page and the browser client in a real browser: `tests/browser/chat.mjs` drives
//! Debian's Chromium with playwright-core (both installed by `infra/setup.sh`) against
//! a local stack this test starts. The screenshot lands in `target/artifacts/`.

use realtime_tests::procs::{tools_dir, workspace_root};
use realtime_tests::start_stack_with;
use std::time::Duration;

/// Runs `tests/browser/{script}` in node against a fresh local stack, with the stack's
/// URL and the screenshot paths (under `target/artifacts/`, or `REALTIME_ARTIFACTS`) as
/// arguments; asserts it passed within `limit` and left each screenshot.
async fn run_browser_script(script: &str, shots: &[&str], limit: Duration) {
    let node_modules = tools_dir().join("node_modules");
    assert!(
        node_modules.join("playwright-core").exists(),
        "playwright-core is missing: run bash infra/setup.sh"
    );
    // Presence on a short clock: a 2 s grace period, the sweeper every 300 ms.
    let stack = start_stack_with(realtime_local::stack::Options {
        presence_grace: Some(Duration::from_secs(2)),
        schedule_period: Some(Duration::from_millis(300)),
        presence_sweep: Some(Duration::from_millis(250)),
        ..Default::default()
    })
    .await
    .unwrap();
    let artifacts: std::path::PathBuf = std::env::var_os("REALTIME_ARTIFACTS")
        .map(Into::into)
        .unwrap_or_else(|| workspace_root().join("target/artifacts"));
    std::fs::create_dir_all(&artifacts).unwrap();
    let shots: Vec<_> = shots.iter().map(|s| artifacts.join(s)).collect();
    for shot in &shots {
        let _ = std::fs::remove_file(shot);
    }
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(workspace_root().join("tests/browser").join(script))
        .arg(stack.http_url())
        .args(&shots)
        .env("NODE_PATH", &node_modules)
        .kill_on_drop(true);
    let out = tokio::time::timeout(limit, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{script} ends within {limit:?}"))
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{script} failed\n{stdout}\n{stderr}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_chat_and_one_survives_a_dropped_socket() {
    run_browser_script("chat.mjs", &["browser.png"], Duration::from_secs(120)).await;
}

/// The admin console (`/admin/events`, `/admin/websocket`; `tests/browser/admin.mjs`): live
/// plots, the live tail and its filter, the latency histogram, the busiest channels, then
/// connections and deliveries. Screenshots of both pages land in `target/artifacts/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_console_plots_live_traffic() {
    run_browser_script("admin.mjs", &["admin-events.png", "admin-websocket.png"], Duration::from_secs(90)).await;
}
