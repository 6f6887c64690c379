//! WebSocket `$disconnect`: deletes the connection and its subscriptions (best effort: TTL and 410 cleanup cover the rest),
//! and clears its user's typing indicators.

use realtime_shared::events::{Cause, ConnectionChanged, Envelope, Event, Priority};
use realtime_shared::ws::{self, WsRequest, WsResult};
use realtime_shared::{connections, Deps};

pub async fn handle(deps: Deps, req: WsRequest) -> WsResult {
    let conn_id = ws::connection_id(&req)?;
    let conn = connections::get(deps.table.as_ref(), conn_id).await?;
    connections::remove(deps.table.as_ref(), conn_id).await?;
    if let Some(conn) = conn {
        let cause = Cause {
            correlation_id: req.request_context.request_id.clone().unwrap_or_default(),
            ..Cause::default()
        };
        // A user who left stops typing (their indicators would expire anyway, later).
        if let Err(e) = realtime_shared::chat::typing::clear_user(&deps, &conn.user_id, &cause).await {
            tracing::warn!(error = %e, "typing indicators not cleared; they expire by TTL");
        }
        let closed = Event::ConnectionClosed(ConnectionChanged {
            connection_id: conn_id.into(),
            user_id: conn.user_id,
        });
        if let Err(e) = deps
            .publisher
            .publish(&[Envelope::new(closed, &cause).with_priority(Priority::Low)])
            .await
        {
            tracing::warn!(error = %e, "connection.closed not published");
        }
    }
    Ok(ws::ok())
}
