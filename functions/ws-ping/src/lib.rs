//! WebSocket `ping`: answers `pong` (keeps the connection under API Gateway's idle timeout).

use realtime_shared::frames::{ClientFrame, ServerFrame};
use realtime_shared::ws::{self, WsRequest, WsResult};
use realtime_shared::{ApiError, Deps};

pub async fn handle(deps: Deps, req: WsRequest) -> WsResult {
    let conn_id = ws::connection_id(&req)?;
    let ClientFrame::Ping(f) = ws::frame(&req)? else {
        return Err(ApiError::BadRequest("expected a ping frame".into()));
    };
    ws::reply(&deps, conn_id, &ServerFrame::Pong { id: f.id }).await?;
    Ok(ws::ok())
}
