//! The local stack: every function in-process behind an API Gateway-like WebSocket
//! server, the HTTP API, the `@connections` management API and EventBridge
//! `PutEvents`, routed by the rules and routes it reads from `template.yaml`.

pub mod page;
pub mod registry;
pub mod relay;
pub mod remote;
pub mod server;
pub mod sigv4;
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

/// Open TCP connections at most; past it new ones wait in the listen backlog.
pub const MAX_OPEN_CONNECTIONS: usize = 12_000;

/// Binds `addr` and serves the stack until `stop`. Refuses a non-loopback address unless
/// the stack runs with `--production`.
pub async fn start(addr: SocketAddr, opts: &stack::Options) -> anyhow::Result<Running> {
    if opts.production.is_none() && !addr.ip().is_loopback() {
        anyhow::bail!(
            "refusing to serve the development stack on {addr}: it mints tokens for anyone (/api/dev/token) and \
             takes unsigned management-API and PutEvents calls, so it listens on loopback addresses only. \
             Use --production for a network address (README \"Running it for real\")."
        );
    }
    let stack = stack::Stack::new(opts).await?;
    stack.start_schedules();
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = server::router(stack.clone());
    let task = tokio::spawn(serve(listener, app, stack.clone(), rx));
    Ok(Running {
        addr,
        stack,
        shutdown: Some(tx),
        task,
    })
}

/// The accept loop: hyper with a header read timeout (axum's `serve` sets none), bounded
/// open connections, WebSocket upgrades, and a graceful end.
async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    stack: Arc<stack::Stack>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use tower::ServiceExt;
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(stack.header_read_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let open = Arc::new(tokio::sync::Semaphore::new(MAX_OPEN_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            p = open.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = &mut shutdown => break,
        };
        let (io, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors, say: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let app = app.clone();
        let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            app.clone().oneshot(req.map(axum::body::Body::new))
        });
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc).into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::trace!(error = %e, "connection ended");
            }
            drop(permit);
        });
    }
    // Upgraded sockets and streams outlive a graceful shutdown unless told to end.
    stack.hub.close_all();
    stack.end_streams();
    if tokio::time::timeout(std::time::Duration::from_secs(5), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after 5 s: stopping anyway");
    }
}
