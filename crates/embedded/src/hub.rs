//! The embedded `ConnectionPusher`: the local WebSocket server registers each open
//! socket here; a post becomes a frame on that socket, an unknown id is `Gone` (410).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use realtime_domain::ports::{ConnectionInfo, ConnectionPusher, PushError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::{mpsc, Notify};

/// What the server should do on one socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    Text(String),
    Binary(Vec<u8>),
    Close,
    /// A close frame with a code and reason (1009 "Message too big", 1001 "Going away").
    CloseWith(u16, String),
}

impl Outbound {
    fn len(&self) -> usize {
        match self {
            Outbound::Text(t) => t.len(),
            Outbound::Binary(b) => b.len(),
            Outbound::Close | Outbound::CloseWith(..) => 0,
        }
    }
}

/// Frames queued for one socket at most (a post beyond it is throttled).
const QUEUE: usize = 4096;

/// The bytes of frames one socket may have queued by default ([`Hub::with_budget`]). A
/// socket that falls this far behind (a client that stopped reading) is cut: the post that
/// would pass the budget answers `Gone`, the socket closes, and the client reconnects and
/// resumes from its last seq. Without it 100 sockets that never read held 1.78 GB.
pub const DEFAULT_QUEUE_BUDGET: usize = 2 * 1024 * 1024;

struct Conn {
    tx: mpsc::Sender<Outbound>,
    queued: Arc<AtomicUsize>,
    cut: Arc<Notify>,
    connected_at: DateTime<Utc>,
    last_active_at: DateTime<Utc>,
    source_ip: Option<String>,
    user_agent: Option<String>,
}

pub struct Hub {
    conns: RwLock<HashMap<String, Conn>>,
    budget: usize,
}

impl Default for Hub {
    fn default() -> Self {
        Self {
            conns: RwLock::default(),
            budget: DEFAULT_QUEUE_BUDGET,
        }
    }
}

/// The frames queued for one socket, for the server to write in order.
pub struct Outgoing {
    rx: mpsc::Receiver<Outbound>,
    queued: Arc<AtomicUsize>,
    cut: Arc<Notify>,
}

impl Outgoing {
    /// The next frame (None once the socket is unregistered and drained).
    pub async fn recv(&mut self) -> Option<Outbound> {
        let m = self.rx.recv().await?;
        self.queued.fetch_sub(m.len(), Ordering::Relaxed);
        Some(m)
    }

    pub fn try_recv(&mut self) -> Result<Outbound, mpsc::error::TryRecvError> {
        let m = self.rx.try_recv()?;
        self.queued.fetch_sub(m.len(), Ordering::Relaxed);
        Ok(m)
    }

    /// Resolves when the hub cut the socket (over its budget): drop it at once, since a
    /// client that does not read would never take a close frame either.
    pub fn cut(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let cut = self.cut.clone();
        async move { cut.notified().await }
    }
}

impl Hub {
    pub fn new() -> Self {
        Self::default()
    }

    /// A hub whose sockets may each have `bytes` of frames queued.
    pub fn with_budget(bytes: usize) -> Self {
        Self {
            budget: bytes.max(1),
            ..Self::default()
        }
    }

    /// Registers a socket; the server drains what it returns onto the socket.
    pub fn register(&self, id: &str, source_ip: Option<String>) -> Outgoing {
        self.register_with(id, source_ip, None)
    }

    /// [`Hub::register`] with the client's `User-Agent` (what `GetConnection` reports).
    pub fn register_with(&self, id: &str, source_ip: Option<String>, user_agent: Option<String>) -> Outgoing {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (queued, cut) = (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()));
        let now = Utc::now();
        let conn = Conn {
            queued: queued.clone(),
            cut: cut.clone(),
            tx,
            connected_at: now,
            last_active_at: now,
            source_ip,
            user_agent,
        };
        self.conns.write().unwrap_or_else(|e| e.into_inner()).insert(id.to_string(), conn);
        Outgoing { rx, queued, cut }
    }

    pub fn unregister(&self, id: &str) {
        self.conns.write().unwrap_or_else(|e| e.into_inner()).remove(id);
    }

    /// Records client activity (what `LastActiveAt` reports).
    pub fn touch(&self, id: &str) {
        if let Some(c) = self.conns.write().unwrap_or_else(|e| e.into_inner()).get_mut(id) {
            c.last_active_at = Utc::now();
        }
    }

    /// Closes every socket (the server is shutting down).
    pub fn close_all(&self) {
        let conns = std::mem::take(&mut *self.conns.write().unwrap_or_else(|e| e.into_inner()));
        for c in conns.into_values() {
            let _ = c.tx.try_send(Outbound::Close);
        }
    }

    /// The ids of the open sockets.
    pub fn ids(&self) -> Vec<String> {
        self.conns.read().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.conns.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn sender(&self, id: &str) -> Result<mpsc::Sender<Outbound>, PushError> {
        self.conns
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .map(|c| c.tx.clone())
            .ok_or(PushError::Gone)
    }

    /// Closes a socket with a code and reason, as API Gateway does (1009 for a frame or
    /// message over its limits, 1001 at the idle timeout or the connection cap).
    pub fn close_with(&self, id: &str, code: u16, reason: &str) {
        if let Ok(tx) = self.sender(id) {
            self.unregister(id);
            let _ = tx.try_send(Outbound::CloseWith(code, reason.to_string()));
        }
    }

    /// Bytes queued for a socket.
    pub fn queued(&self, id: &str) -> Option<usize> {
        let conns = self.conns.read().unwrap_or_else(|e| e.into_inner());
        conns.get(id).map(|c| c.queued.load(Ordering::Relaxed))
    }
}

#[async_trait]
impl ConnectionPusher for Hub {
    async fn post(&self, connection_id: &str, data: &[u8]) -> Result<(), PushError> {
        let (tx, queued, cut) = {
            let conns = self.conns.read().unwrap_or_else(|e| e.into_inner());
            let c = conns.get(connection_id).ok_or(PushError::Gone)?;
            (c.tx.clone(), c.queued.clone(), c.cut.clone())
        };
        let len = data.len();
        if len > realtime_domain::ports::pusher::MAX_PUSH_BYTES {
            // API Gateway's PayloadTooLargeException (413).
            return Err(PushError::Other(format!("payload of {len} bytes is over 128 KB")));
        }
        if queued.fetch_add(len, Ordering::Relaxed) + len > self.budget {
            queued.fetch_sub(len, Ordering::Relaxed);
            tracing::warn!(connection_id, budget = self.budget, "socket over its queue budget: cut");
            self.unregister(connection_id);
            cut.notify_one();
            return Err(PushError::Gone);
        }
        let msg = match std::str::from_utf8(data) {
            Ok(s) => Outbound::Text(s.to_string()),
            Err(_) => Outbound::Binary(data.to_vec()),
        };
        tx.try_send(msg).map_err(|e| {
            queued.fetch_sub(len, Ordering::Relaxed);
            match e {
                mpsc::error::TrySendError::Full(_) => PushError::Throttled,
                mpsc::error::TrySendError::Closed(_) => PushError::Gone,
            }
        })
    }

    async fn close(&self, connection_id: &str) -> Result<(), PushError> {
        let tx = self.sender(connection_id)?;
        self.unregister(connection_id);
        // The socket may already be going away; it is gone either way.
        let _ = tx.try_send(Outbound::Close);
        Ok(())
    }

    async fn info(&self, connection_id: &str) -> Result<ConnectionInfo, PushError> {
        let conns = self.conns.read().unwrap_or_else(|e| e.into_inner());
        let c = conns.get(connection_id).ok_or(PushError::Gone)?;
        Ok(ConnectionInfo {
            connected_at: c.connected_at,
            last_active_at: c.last_active_at,
            source_ip: c.source_ip.clone(),
            user_agent: c.user_agent.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn posts_reach_the_registered_socket_and_unknown_ids_are_gone() {
        let hub = Hub::new();
        let mut rx = hub.register("c1", Some("127.0.0.1".into()));
        hub.post("c1", b"{\"a\":1}").await.unwrap();
        assert_eq!(rx.recv().await, Some(Outbound::Text("{\"a\":1}".into())));
        assert_eq!(hub.post("nope", b"x").await, Err(PushError::Gone));
        assert!(hub.info("c1").await.is_ok());
        hub.close("c1").await.unwrap();
        assert_eq!(rx.recv().await, Some(Outbound::Close));
        assert_eq!(hub.post("c1", b"x").await, Err(PushError::Gone));
    }

    #[tokio::test]
    async fn a_socket_over_its_byte_budget_is_cut_and_gone() {
        let hub = Hub::with_budget(10_000);
        let mut rx = hub.register("c1", None);
        let frame = vec![b'x'; 4_000];
        hub.post("c1", &frame).await.unwrap();
        hub.post("c1", &frame).await.unwrap();
        assert_eq!(hub.queued("c1"), Some(8_000));
        // Reading frees budget.
        assert!(rx.try_recv().is_ok());
        assert_eq!(hub.queued("c1"), Some(4_000));
        hub.post("c1", &frame).await.unwrap();
        // The next would pass 10,000 bytes: the socket is cut.
        assert_eq!(hub.post("c1", &frame).await, Err(PushError::Gone));
        tokio::time::timeout(std::time::Duration::from_secs(1), rx.cut())
            .await
            .expect("the server is told to drop the socket");
        assert!(hub.is_empty());
        assert_eq!(hub.post("c1", b"x").await, Err(PushError::Gone));
    }
}
