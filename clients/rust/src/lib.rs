//! A small Rust client of the realtime event system: a WebSocket client speaking the
//! frames of API.md (token as subprotocol or query, subscribe, send, wait for frames)
//! and a JSON HTTP client. The end-to-end tests drive the system with it; the benchmark
//! sets up its runs with it (its timed paths stay raw sockets).

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct Http {
    pub base: String,
    client: reqwest::Client,
}

impl Http {
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            base: base.into(),
            client: reqwest::Client::new(),
        }
    }

    /// Sends a request; returns the status and the JSON body (Null when empty).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self.client.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            },
        ))
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> anyhow::Result<(u16, Value)> {
        self.send(reqwest::Method::POST, path, token, Some(body)).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> anyhow::Result<(u16, Value)> {
        self.send(reqwest::Method::GET, path, token, None).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: &Value) -> anyhow::Result<(u16, Value)> {
        self.send(reqwest::Method::PUT, path, token, Some(body)).await
    }

    /// A GET whose answer is not JSON: the status, the content type and the text.
    pub async fn get_text(&self, path: &str, token: Option<&str>) -> anyhow::Result<(u16, String, String)> {
        let mut req = self.client.get(format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        Ok((status, content_type, resp.text().await?))
    }

    /// A token from the local stack's `POST /api/dev/token`.
    pub async fn dev_token(&self, sub: &str, roles: &[&str]) -> anyhow::Result<String> {
        let (status, body) = self
            .post("/api/dev/token", None, &json!({"sub": sub, "roles": roles, "name": sub}))
            .await?;
        anyhow::ensure!(status == 200, "dev token: {status} {body}");
        Ok(body["token"].as_str().unwrap_or_default().to_string())
    }
}

pub struct WsClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The subprotocol the server chose.
    pub protocol: Option<String>,
}

/// How the token travels on connect.
#[derive(Debug, Clone, Copy)]
pub enum TokenIn {
    Subprotocol,
    Query,
}

impl WsClient {
    pub async fn connect(url: &str, token: Option<&str>, how: TokenIn) -> anyhow::Result<Self> {
        let url = match (token, how) {
            (Some(t), TokenIn::Query) => format!("{url}?token={t}"),
            _ => url.to_string(),
        };
        let mut req = url.into_client_request()?;
        let protocols = match (token, how) {
            (Some(t), TokenIn::Subprotocol) => format!("realtime.v1, bearer.{t}"),
            _ => "realtime.v1".into(),
        };
        req.headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_str(&protocols)?);
        let (ws, resp) = tokio_tungstenite::connect_async(req).await?;
        let protocol = resp
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(Self { ws, protocol })
    }

    pub async fn send(&mut self, frame: &Value) -> anyhow::Result<()> {
        self.ws.send(Message::Text(frame.to_string().into())).await?;
        Ok(())
    }

    pub async fn send_raw(&mut self, text: &str) -> anyhow::Result<()> {
        self.ws.send(Message::Text(text.to_string().into())).await?;
        Ok(())
    }

    /// The next JSON frame, or None when the socket closed or nothing came in time.
    pub async fn next(&mut self, timeout: Duration) -> Option<Value> {
        loop {
            match tokio::time::timeout(timeout, self.ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).ok(),
                Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) | Err(_) => return None,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// The next frame for which `pred` holds (others are skipped), within `timeout`.
    pub async fn next_where(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(f) if pred(&f) => return Ok(f),
                Some(_) => continue,
                None => anyhow::bail!("no matching frame within {timeout:?}"),
            }
        }
    }

    /// Every frame until (and with) the first for which `pred` holds, within `timeout`.
    pub async fn collect_until(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> anyhow::Result<Vec<Value>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut frames = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(f) => {
                    let done = pred(&f);
                    frames.push(f);
                    if done {
                        return Ok(frames);
                    }
                }
                None => anyhow::bail!("no matching frame within {timeout:?}; got {} frames: {frames:?}", frames.len()),
            }
        }
    }

    /// Subscribes and waits for the `subscribed` (or `error`) answer to it.
    pub async fn subscribe(&mut self, id: &str, channel: &str, events: &[&str]) -> anyhow::Result<Value> {
        self.send(&json!({"action": "subscribe", "id": id, "channel": channel, "events": events}))
            .await?;
        self.next_where(Duration::from_secs(5), |f| f["id"] == id).await
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        // Drain until the server's close arrives.
        let _ = tokio::time::timeout(Duration::from_secs(2), async { while let Some(Ok(_)) = self.ws.next().await {} }).await;
    }
}

impl Http {
    /// Sends a request with extra headers; returns the status and the JSON body.
    pub async fn send_with(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self.client.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }
}

/// One server-sent event: its `id` (if any) and its `data`, parsed as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub data: Value,
}

/// A plain HTTP client reading a `text/event-stream` answer as it arrives.
pub struct SseClient {
    resp: reqwest::Response,
    buf: String,
    pub status: u16,
    pub content_type: Option<String>,
}

impl SseClient {
    /// GETs `url` with the token (as `Authorization: Bearer`) and `Last-Event-ID`, if given.
    pub async fn connect(url: &str, token: Option<&str>, last_event_id: Option<&str>) -> anyhow::Result<Self> {
        let mut req = reqwest::Client::new().get(url).header("accept", "text/event-stream");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let resp = req.send().await?;
        Ok(Self {
            status: resp.status().as_u16(),
            content_type: resp.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string),
            resp,
            buf: String::new(),
        })
    }

    /// The whole body of a non-stream answer (an error), as JSON.
    pub async fn json(self) -> anyhow::Result<Value> {
        Ok(serde_json::from_str(&self.resp.text().await?)?)
    }

    /// The next event with data, or None when the stream ended or nothing came in time.
    pub async fn next(&mut self, timeout: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut id = None;
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.trim_start().to_string());
                    }
                }
                if !data.is_empty() {
                    let data = data.join("\n");
                    return Some(SseEvent {
                        id,
                        data: serde_json::from_str(&data).unwrap_or(Value::String(data)),
                    });
                }
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.resp.chunk()).await {
                Ok(Ok(Some(chunk))) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }

    /// The next event whose `data.type` is `ty` (others skipped), within `timeout`.
    pub async fn next_of(&mut self, ty: &str, timeout: Duration) -> anyhow::Result<SseEvent> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(e) if e.data["type"] == ty => return Ok(e),
                Some(_) => continue,
                None => anyhow::bail!("no {ty} event within {timeout:?}"),
            }
        }
    }
}
