//! Helpers for the test suites in `tests/tests/`: they start the servers a test needs
//! (DynamoDB Local, moto, the local stack) on free loopback ports and stop them on drop.

pub mod client;
pub mod dynamodb_local;
pub mod moto;
pub mod procs;

/// A local stack on a free loopback port with a fresh data dir.
pub async fn start_stack() -> anyhow::Result<realtime_local::Running> {
    let dir = std::env::temp_dir().join(format!("realtime-test-{}", ulid::Ulid::new()));
    let opts = realtime_local::stack::Options {
        data_dir: dir,
        template: None,
        jwt_secret: Some("test-secret-test-secret-0123456789".into()),
    };
    realtime_local::start("127.0.0.1:0".parse()?, &opts).await
}
