//! WebSocket `$disconnect`: deletes the connection and its subscriptions (best effort: TTL and 410 cleanup cover the rest),
//! clears its user's typing indicators, and starts its channels' presence grace period.

use realtime_domain::events::{Cause, ConnectionChanged, Envelope, Event, Priority};
use realtime_domain::{connections, presence, Deps};
use realtime_edge::ws::{self, WsRequest, WsResult};

pub async fn handle(deps: Deps, req: WsRequest) -> WsResult {
    let conn_id = ws::connection_id(&req)?;
    let conn = connections::get(deps.table.as_ref(), conn_id).await?;
    let removed = connections::remove(deps.table.as_ref(), conn_id).await?;
    if removed.existed {
        realtime_edge::stats::connections_closed(deps.table.as_ref(), 1).await;
    }
    // Its user's grace period starts on each channel it was on (no `presence.left` yet).
    presence::settle_all(&deps, &removed.channels).await;
    if let Some(conn) = conn {
        let cause = Cause {
            correlation_id: req.request_context.request_id.clone().unwrap_or_default(),
            ..Cause::default()
        };
        // A user who left stops typing (their indicators would expire anyway, later).
        if let Err(e) = realtime_domain::chat::typing::clear_user(&deps, &conn.user_id, &cause).await {
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
