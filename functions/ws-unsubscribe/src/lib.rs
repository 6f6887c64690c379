//! WebSocket `unsubscribe`: removes the connection's subscription to a channel and answers `unsubscribed`.

use realtime_shared::channels::Channel;
use realtime_shared::frames::{ClientFrame, ServerFrame};
use realtime_shared::ws::{self, WsRequest, WsResult};
use realtime_shared::{connections, ApiError, Deps};

pub async fn handle(deps: Deps, req: WsRequest) -> WsResult {
    let conn_id = ws::connection_id(&req)?;
    let ClientFrame::Unsubscribe(f) = ws::frame(&req)? else {
        return Err(ApiError::BadRequest("expected a unsubscribe frame".into()));
    };
    let channel: Channel = f
        .channel
        .parse()
        .map_err(|e: realtime_shared::channels::ChannelError| ApiError::BadRequest(e.to_string()))?;
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
    Ok(ws::ok())
}
