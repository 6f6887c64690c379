//! Helpers for the test suites in `tests/tests/`: they start the servers a test needs
//! (DynamoDB Local, moto, the local stack) on free loopback ports and stop them on drop.

pub mod client;
pub mod dynamodb_local;
pub mod moto;
pub mod procs;

/// Serves a fake (an AWS API, a model provider) on a free loopback port, for the
/// rest of the test.
pub async fn serve(app: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A local stack on a free loopback port with a fresh data dir.
pub async fn start_stack() -> anyhow::Result<realtime_local::Running> {
    start_stack_with(realtime_local::stack::Options::default()).await
}

/// The JWT secret of the stacks tests start.
pub const TEST_SECRET: &str = "test-secret-test-secret-0123456789";

/// A local stack with options (faults, short retention, ...); a fresh data dir and
/// the test secret unless the options say otherwise.
pub async fn start_stack_with(mut opts: realtime_local::stack::Options) -> anyhow::Result<realtime_local::Running> {
    if opts.data_dir.as_os_str().is_empty() {
        opts.data_dir = std::env::temp_dir().join(format!("realtime-test-{}", ulid::Ulid::new()));
    }
    opts.jwt_secret.get_or_insert_with(|| TEST_SECRET.into());
    realtime_local::start("127.0.0.1:0".parse()?, &opts).await
}
