//! The WebSocket API: `$connect` (with its authorizer), routing on `action`, the frame
//! and message limits, idle and age limits, and the socket's outbound queue.

use super::*;

/// What API Gateway knows about one socket, for the events of its routes.
#[derive(Clone)]
pub(super) struct Socket {
    conn_id: String,
    peer: SocketAddr,
    connected_at: i64,
}

impl Socket {
    fn event(&self, route_key: &str, event_type: &str, headers: Option<&HeaderMap>, query: Option<&str>, body: Option<&str>) -> Value {
        let mut event = json!({
            "requestContext": {
                "routeKey": route_key, "eventType": event_type, "connectionId": self.conn_id, "messageDirection": "IN",
                "requestId": ulid::Ulid::new().to_string(), "domainName": "localhost", "stage": "local", "apiId": "local",
                "connectedAt": self.connected_at, "requestTimeEpoch": now_ms(), "identity": {"sourceIp": self.peer.ip().to_string()}
            },
            "isBase64Encoded": false
        });
        if let Some(h) = headers {
            event["headers"] = Value::Object(headers_json(h));
        }
        if let Some(q) = query {
            event["queryStringParameters"] = Value::Object(query_json(Some(q)));
        }
        if let Some(b) = body {
            event["body"] = Value::String(b.to_string());
        }
        event
    }
}

/// Runs a WebSocket route's function. When it fails (here: panics), API Gateway answers a
/// message with `{"message": "Internal server error", "connectionId", "requestId"}` on the
/// socket and refuses a `$connect` with 500.
pub(super) async fn invoke_ws(stack: &Stack, route_key: &str, event: Value) -> Option<u16> {
    let route = stack.template.ws_route(route_key)?;
    let Some(Handler::Ws(f)) = stack.handler(&route.function) else {
        return None;
    };
    let conn_id = event["requestContext"]["connectionId"].as_str().unwrap_or_default().to_owned();
    let request_id = event["requestContext"]["requestId"].as_str().unwrap_or_default().to_owned();
    let is_message = event["requestContext"]["eventType"] == "MESSAGE";
    let outcome = match &stack.remote {
        Some(remote) => {
            let binary = stack.template.binary_of(&route.function)?;
            remote
                .invoke(binary, &event)
                .await
                .map(|answer| answer["statusCode"].as_u64().unwrap_or(200) as u16)
        }
        None => {
            let req = serde_json::from_value(event).ok()?;
            tokio::spawn(f(stack.deps.clone(), req))
                .await
                .map(|resp| resp.status_code as u16)
                .map_err(|e| e.to_string())
        }
    };
    match outcome {
        Ok(status) => Some(status),
        Err(e) => {
            tracing::error!(route = route_key, error = %e, "WebSocket route function failed");
            if is_message {
                let frame = json!({"message": "Internal server error", "connectionId": conn_id, "requestId": request_id});
                let _ = stack.hub.post(&conn_id, frame.to_string().as_bytes()).await;
            }
            Some(500)
        }
    }
}

pub(super) async fn ws_upgrade(
    State(stack): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Some(prod) = &stack.production {
        let origin = headers.get("origin").map(|v| v.to_str().unwrap_or("\u{fffd}"));
        if !prod.origin_allowed(origin) {
            return json_error(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "this Origin may not open a WebSocket here",
            );
        }
    }
    let sock = Socket {
        conn_id: ulid::Ulid::new().to_string(),
        peer,
        connected_at: now_ms(),
    };
    let mut event = sock.event("$connect", "CONNECT", Some(&headers), uri.query(), None);
    if let Some(name) = stack.template.ws_route("$connect").and_then(|r| r.authorizer.clone()) {
        let arn = format!("{ARN_PREFIX}/local/$connect");
        let mut auth_event = event.clone();
        auth_event["stageVariables"] = json!({});
        match authorize(&stack, &name, auth_event, &arn, &headers, uri.query()).await {
            Ok(context) => event["requestContext"]["authorizer"] = Value::Object(context),
            Err(refused) => return refused,
        }
    }
    let user = event["requestContext"]["authorizer"]["userId"].as_str().unwrap_or_default();
    let slot = match stack.admit_socket(user) {
        Ok(slot) => slot,
        Err(why) => return json_error(StatusCode::TOO_MANY_REQUESTS, "too_many_connections", &why),
    };
    // Registered before `$connect` runs, as API Gateway accepts posts during it.
    let user_agent = headers.get("user-agent").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let outbound = stack.hub.register_with(&sock.conn_id, Some(peer.ip().to_string()), user_agent);
    match invoke_ws(&stack, "$connect", event).await {
        Some(200..=299) => {}
        status => {
            stack.hub.unregister(&sock.conn_id);
            let code = StatusCode::from_u16(status.unwrap_or(500)).unwrap_or(StatusCode::FORBIDDEN);
            return json_error(code, "connect_refused", "the $connect route refused the connection");
        }
    }
    upgrade
        // tungstenite keeps (and zero-fills) the whole read buffer per socket: axum's
        // 128 KiB default made 10,000 sockets take 1.4 GB; 4 KiB made them 167 MB.
        .read_buffer_size(4 * 1024)
        .protocols(["realtime.v1"])
        // API Gateway's limits: a frame over 32 KB or a message over 128 KB closes with 1009.
        .max_frame_size(MAX_FRAME_BYTES)
        .max_message_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| async move {
            run_socket(stack, socket, sock, outbound).await;
            drop(slot);
        })
}

pub(super) async fn run_socket(stack: Arc<Stack>, socket: WebSocket, sock: Socket, mut outbound: Outgoing) {
    let conn_id = sock.conn_id.clone();
    let (mut sink, mut stream) = socket.split();
    let cut = outbound.cut();
    let mut writer = tokio::spawn(async move {
        while let Some(msg) = outbound.recv().await {
            let msg = match msg {
                Outbound::Text(t) => Message::Text(t.into()),
                Outbound::Binary(b) => Message::Binary(b.into()),
                Outbound::Close => {
                    let _ = sink.send(Message::Close(None)).await;
                    break;
                }
                Outbound::CloseWith(code, reason) => {
                    let frame = axum::extract::ws::CloseFrame {
                        code,
                        reason: reason.into(),
                    };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    break;
                }
            };
            if sink.send(msg).await.is_err() {
                break;
            }
        }
    });
    tokio::pin!(cut);
    // API Gateway's two clocks: 10 minutes without a client message, 2 hours in all.
    let ends_at = tokio::time::Instant::now() + stack.max_connection_age;
    let mut idle_at = tokio::time::Instant::now() + stack.idle_timeout;
    // Set when the server closes with a code: the writer gets to send that close frame.
    let mut closing = false;
    loop {
        let msg = tokio::select! {
            m = stream.next() => match m {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    // tungstenite's capacity error ("Message too long") is API Gateway's 1009.
                    if e.to_string().contains("too long") {
                        stack.hub.close_with(&conn_id, 1009, "Message too big");
                        closing = true;
                    }
                    break;
                }
                None => break,
            },
            // Over its queue budget: the socket goes without a close frame it would not read.
            () = &mut cut => break,
            () = tokio::time::sleep_until(idle_at) => {
                stack.hub.close_with(&conn_id, 1001, "Going away");
                closing = true;
                break;
            }
            () = tokio::time::sleep_until(ends_at) => {
                stack.hub.close_with(&conn_id, 1001, "Going away");
                closing = true;
                break;
            }
        };
        idle_at = tokio::time::Instant::now() + stack.idle_timeout;
        let text = match msg {
            Message::Text(t) => t.to_string(),
            Message::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
            Message::Close(_) => break,
            _ => continue,
        };
        stack.hub.touch(&conn_id);
        // Route selection: `$request.body.action`, else `$default`.
        let action = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("action").and_then(Value::as_str).map(str::to_string));
        let Some(route) = stack.template.ws_route_for_action(action.as_deref()) else {
            continue;
        };
        let route_key = route.route_key.clone();
        let event = sock.event(&route_key, "MESSAGE", None, None, Some(&text));
        invoke_ws(&stack, &route_key, event).await;
    }
    stack.hub.unregister(&conn_id);
    if closing {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), &mut writer).await;
    }
    writer.abort();
    let event = sock.event("$disconnect", "DISCONNECT", None, None, None);
    invoke_ws(&stack, "$disconnect", event).await;
}
