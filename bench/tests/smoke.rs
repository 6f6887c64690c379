//! The benchmark harness works (not a timed test): the e2e measurement at 10
//! subscribers against an in-process local stack delivers every message to every
//! client, and the counting ports see one post per subscriber.

use realtime_bench::e2e::{self, Options, Target};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_receives_every_message() {
    let data_dir = std::env::temp_dir().join(format!("realtime-bench-smoke-{}", ulid::Ulid::new()));
    let opts = realtime_local::stack::Options {
        data_dir: data_dir.clone(),
        jwt_secret: Some("bench-smoke-secret-0123456789".into()),
        ..Default::default()
    };
    let stack = realtime_local::start("127.0.0.1:0".parse().unwrap(), &opts).await.unwrap();

    let mut o = Options::new(Target::Realtime, stack.http_url());
    o.levels = vec![1, 10];
    o.messages = 5;
    o.min_messages = 5;
    o.warmup = 1;
    o.burst = 5;
    o.burst_inflight = 2;
    o.server_pid = Some(std::process::id());
    o.message_timeout = Duration::from_secs(5);
    o.deadline = Duration::from_secs(15);
    let report = e2e::run(&o).await.unwrap();

    assert!(report.notes.is_empty(), "{:?}", report.notes);
    assert_eq!((report.connected, report.connect_failures), (10, 0));
    let sizes: Vec<usize> = report.levels.iter().map(|l| l.subscribers).collect();
    assert_eq!(sizes, vec![1, 10]);
    for l in &report.levels {
        assert_eq!((l.deliveries, l.missing), (l.messages * l.subscribers, 0), "{l:?}");
        assert_eq!(l.latency.n, l.deliveries);
    }
    let b = report.burst.as_ref().unwrap();
    assert_eq!((b.deliveries, b.missing), (50, 0), "{b:?}");
    assert!(report.frame_bytes > 100.0);
    stack.stop().await;
    let _ = std::fs::remove_dir_all(data_dir);
}
