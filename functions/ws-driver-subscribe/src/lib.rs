//! WebSocket `driver:subscribe` `{filters: {maxDistance, minEarnings, tripTypes}}`: subscribes a
//! driver's connection to `drivers` for `trip.offer.*`, with the filters as an EventBridge
//! content filter over the offer (`distanceKm`, `estimatedEarnings`, `tripType`), so the fan-out
//! pushes only the offers that match. Answers `subscribed`, then the offers still open that
//! match (what the driver missed: `drivers` keeps no log, see `Channel::is_logged`).

use realtime_domain::channels::Channel;
use realtime_domain::frames::ServerFrame;
use realtime_domain::trips::access::{DriverSubscribe, DRIVER_EVENTS};
use realtime_domain::trips::offer;
use realtime_domain::{connections, fanout, presence, ApiError, Deps};
use realtime_edge::ws::{self, WsRequest, WsResult};

pub async fn handle(deps: Deps, req: WsRequest) -> WsResult {
    let conn_id = ws::connection_id(&req)?;
    let f: DriverSubscribe = ws::frame(&req)?;
    if f.action != "driver:subscribe" {
        return Err(ApiError::BadRequest("expected a driver:subscribe frame".into()));
    }
    let filter = f.filters.content_filter()?;
    let table = deps.table.as_ref();
    let conn = ws::connection(&deps, conn_id).await?;
    let channel = Channel::Drivers;
    connections::authorize(table, &conn, &channel).await?;
    let events: Vec<String> = DRIVER_EVENTS.iter().map(|e| e.to_string()).collect();
    connections::subscribe(table, &conn, &channel, &events, filter.as_ref()).await?;
    connections::acknowledge(&deps, conn_id, f.id, &channel).await?;
    // The open offers follow `subscribed` at once; presence settles last, since it may wait
    // for the channel's next announcement (offers caught up seconds later would be stale).
    catch_up(&deps, conn_id, &conn.user_id, filter.as_ref()).await?;
    presence::settle_all(&deps, std::slice::from_ref(&channel)).await;
    Ok(ws::ok())
}

/// The open offers, to a driver who is not busy (a busy driver gets none, live or these).
async fn catch_up(deps: &Deps, conn_id: &str, user_id: &str, filter: Option<&serde_json::Value>) -> Result<(), ApiError> {
    let table = deps.table.as_ref();
    let channel = Channel::Drivers;
    let busy = realtime_domain::trips::driver::availability(table, user_id).await?;
    if busy.driver_status == realtime_domain::trips::driver::DriverStatus::Busy {
        return Ok(());
    }
    for offer in offer::open_offers(table).await? {
        if filter.is_some_and(|f| !fanout::filter_matches(f, &offer.data)) {
            continue;
        }
        let frame = ServerFrame::Event {
            channel: channel.to_string(),
            seq: None,
            epoch: None,
            event: Box::new(offer),
        };
        ws::reply(deps, conn_id, &frame).await?;
    }
    Ok(())
}
