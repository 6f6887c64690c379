//! WebSocket `resume`: replays a channel's events after a given seq, or answers `resync`.

use realtime_shared::ws::{WsRequest, WsResult};
use realtime_shared::{ApiError, Deps};

pub async fn handle(_deps: Deps, _req: WsRequest) -> WsResult {
    Err(ApiError::Unavailable("resume is being built".into()))
}
