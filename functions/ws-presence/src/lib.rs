//! WebSocket `presence`: who is on a channel (its members, users not connections, and its
//! occupancy), authorized like `subscribe`; answered with a `presence` frame.

use realtime_domain::frames::{ClientFrame, ServerFrame};
use realtime_domain::{presence, ApiError, Deps};
use realtime_edge::ws::{self, WsRequest, WsResult};

pub async fn handle(deps: Deps, req: WsRequest) -> WsResult {
    let conn_id = ws::connection_id(&req)?;
    let ClientFrame::Presence(f) = ws::frame(&req)? else {
        return Err(ApiError::BadRequest("expected a presence frame".into()));
    };
    let channel = ws::channel(&f.channel)?;
    let table = deps.table.as_ref();
    let conn = ws::connection(&deps, conn_id).await?;
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
