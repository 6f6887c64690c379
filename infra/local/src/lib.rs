//! The local stack: every function in-process behind an API Gateway-like WebSocket
//! server, the HTTP API, the `@connections` management API and EventBridge
//! `PutEvents`, routed by the rules and routes it reads from `template.yaml`.

pub mod page;
pub mod registry;
pub mod relay;
pub mod server;
pub mod specs;
pub mod stack;
pub mod template;

use std::net::SocketAddr;
use std::sync::Arc;

/// A running local stack (tests start one per case on port 0).
pub struct Running {
    pub addr: SocketAddr,
    pub stack: Arc<stack::Stack>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
    /// Stops accepting, closes every socket, and waits for the server to end.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Binds `addr` and serves the stack until `stop` (or until `shutdown` resolves).
pub async fn start(addr: SocketAddr, opts: &stack::Options) -> anyhow::Result<Running> {
    let stack = stack::Stack::new(opts).await?;
    stack.start_schedules();
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = server::router(stack.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let hub = stack.hub.clone();
    let streams = stack.clone();
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = rx.await;
            // Upgraded sockets outlive graceful shutdown unless told to close.
            hub.close_all();
            streams.end_streams();
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::error!(error = %e, "server failed");
        }
    });
    Ok(Running {
        addr,
        stack,
        shutdown: Some(tx),
        task,
    })
}
