//! WebSocket `unsubscribe`: removes the connection's subscription to a channel and answers `unsubscribed`.

use realtime_domain::frames::{ClientFrame, ServerFrame};
use realtime_domain::{connections, presence, ApiError, Deps};
use realtime_edge::ws::{self, WsRequest, WsResult};

pub async fn handle(deps: Deps, req: WsRequest) -> WsResult {
    let conn_id = ws::connection_id(&req)?;
    let ClientFrame::Unsubscribe(f) = ws::frame(&req)? else {
        return Err(ApiError::BadRequest("expected a unsubscribe frame".into()));
    };
    let channel = ws::channel(&f.channel)?;
    connections::unsubscribe(deps.table.as_ref(), conn_id, &channel).await?;
    ws::reply(
        &deps,
        conn_id,
        &ServerFrame::Unsubscribed {
            id: f.id,
            channel: channel.to_string(),
        },
    )
    .await?;
    presence::settle_all(&deps, std::slice::from_ref(&channel)).await;
    Ok(ws::ok())
}
