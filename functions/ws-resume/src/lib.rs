//! WebSocket `resume`: replays a channel's events after a given seq from the channel
//! log, in order, then `resumed`; or `resync` when the log no longer has them.

use realtime_domain::frames::ClientFrame;
use realtime_domain::{connections, resume, ApiError, Deps};
use realtime_edge::ws::{self, WsRequest, WsResult};

pub async fn handle(deps: Deps, req: WsRequest) -> WsResult {
    let conn_id = ws::connection_id(&req)?;
    let ClientFrame::Resume(f) = ws::frame(&req)? else {
        return Err(ApiError::BadRequest("expected a resume frame".into()));
    };
    let channel = ws::channel(&f.channel)?;
    let table = deps.table.as_ref();
    let conn = ws::connection(&deps, conn_id).await?;
    // The log holds what the channel's members may see: the same rule as subscribing.
    connections::authorize(table, &conn, &channel).await?;
    let replayed = resume::replay_to(&deps, conn_id, f.id, &channel, &f.epoch, f.after).await?;
    realtime_edge::stats::resumed(table, replayed.events, replayed.resync).await;
    Ok(ws::ok())
}
