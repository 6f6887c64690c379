//! WebSocket `presence`: who is on a channel (its members, users not connections, and its
//! occupancy), authorized like `subscribe`; answered with a `presence` frame.

use realtime_domain::channels::Channel;
use realtime_domain::frames::{ClientFrame, ServerFrame};
use realtime_domain::{connections, presence, ApiError, Deps};
use realtime_edge::ws::{self, WsRequest, WsResult};

pub async fn handle(deps: Deps, req: WsRequest) -> WsResult {
    let conn_id = ws::connection_id(&req)?;
    let ClientFrame::Presence(f) = ws::frame(&req)? else {
        return Err(ApiError::BadRequest("expected a presence frame".into()));
    };
    let channel: Channel = f
        .channel
        .parse()
        .map_err(|e: realtime_domain::channels::ChannelError| ApiError::BadRequest(e.to_string()))?;
    let table = deps.table.as_ref();
    let conn = connections::get(table, conn_id)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("connection is gone".into()))?;
    let p = presence::read_for(table, &conn, &channel).await?;
    let answer = ServerFrame::Presence {
        id: f.id,
        channel: p.channel,
        members: p.members,
        occupancy: p.occupancy,
    };
    ws::reply(&deps, conn_id, &answer).await?;
    Ok(ws::ok())
}
