//! The embedded `ConnectionPusher`: the local WebSocket server registers each open
//! socket here; a post becomes a frame on that socket, an unknown id is `Gone` (410).

use crate::ports::{ConnectionInfo, ConnectionPusher, PushError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::RwLock;
use tokio::sync::mpsc;

/// What the server should do on one socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    Text(String),
    Binary(Vec<u8>),
    Close,
}

/// Frames queued for a socket that is not reading; beyond it a post is throttled,
/// as API Gateway throttles a connection that cannot keep up.
const QUEUE: usize = 4096;

struct Conn {
    tx: mpsc::Sender<Outbound>,
    connected_at: DateTime<Utc>,
    last_active_at: DateTime<Utc>,
    source_ip: Option<String>,
}

#[derive(Default)]
pub struct Hub {
    conns: RwLock<HashMap<String, Conn>>,
}

impl Hub {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a socket; the server drains the receiver onto the socket.
    pub fn register(&self, id: &str, source_ip: Option<String>) -> mpsc::Receiver<Outbound> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let now = Utc::now();
        let conn = Conn {
            tx,
            connected_at: now,
            last_active_at: now,
            source_ip,
        };
        self.conns.write().unwrap_or_else(|e| e.into_inner()).insert(id.to_string(), conn);
        rx
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
}

#[async_trait]
impl ConnectionPusher for Hub {
    async fn post(&self, connection_id: &str, data: &[u8]) -> Result<(), PushError> {
        let msg = match std::str::from_utf8(data) {
            Ok(s) => Outbound::Text(s.to_string()),
            Err(_) => Outbound::Binary(data.to_vec()),
        };
        self.sender(connection_id)?.try_send(msg).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => PushError::Throttled,
            mpsc::error::TrySendError::Closed(_) => PushError::Gone,
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
}
