//! Replaying a channel's missed events to one connection (the `resume` action and
//! `subscribe` with `resume`), in order, from the channel log.

use crate::channels::Channel;
use crate::deps::Deps;
use crate::error::ApiError;
use crate::events::Envelope;
use crate::frames::ServerFrame;
use crate::log::{self, Replay};
use crate::ports::PushError;
use crate::stats;
use crate::ws;

/// Events replayed per request; a client that is further behind resumes again.
pub const MAX_REPLAY: u32 = 500;

/// Pushes the events after `after` then a `resumed` frame, or a `resync` frame.
pub async fn replay_to(deps: &Deps, conn_id: &str, id: Option<String>, channel: &Channel, epoch: &str, after: u64) -> Result<(), ApiError> {
    let ch = channel.to_string();
    match log::replay(deps.table.as_ref(), channel, epoch, after, MAX_REPLAY).await? {
        Replay::Resync(reason) => {
            stats::resumed(deps.table.as_ref(), 0, true).await;
            ws::reply(
                deps,
                conn_id,
                &ServerFrame::Resync {
                    id,
                    channel: ch,
                    reason: reason.into(),
                },
            )
            .await
        }
        Replay::Events { events, head, more } => {
            let mut last = after;
            let mut replayed = 0;
            // In order, one at a time: a client reads them as they were first sent. A
            // push that fails leaves a gap the client sees by seq and resumes again.
            for (seq, event) in events {
                last = seq;
                let Ok(event) = serde_json::from_value::<Envelope>(event) else {
                    continue;
                };
                let frame = ServerFrame::Event {
                    channel: ch.clone(),
                    seq: Some(seq),
                    epoch: Some(head.epoch.clone()),
                    event: Box::new(event),
                };
                match deps.pusher.post(conn_id, frame.to_json().as_bytes()).await {
                    Ok(()) => replayed += 1,
                    Err(PushError::Gone) => return Ok(()),
                    Err(e) => tracing::debug!(seq, error = %e, "replayed event not pushed"),
                }
            }
            stats::resumed(deps.table.as_ref(), replayed, false).await;
            let seq = if more { last } else { head.seq };
            ws::reply(
                deps,
                conn_id,
                &ServerFrame::Resumed {
                    id,
                    channel: ch,
                    epoch: head.epoch,
                    seq,
                    replayed,
                    more,
                },
            )
            .await
        }
    }
}
