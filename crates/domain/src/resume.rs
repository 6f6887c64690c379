//! Replaying a channel's missed events to one connection (the `resume` action and
//! `subscribe` with `resume`), in order, from the channel log, filtered as its
//! subscription's live pushes are.

use crate::channels::Channel;
use crate::connections::{reply, ConnectionError};
use crate::deps::Deps;
use crate::events::Envelope;
use crate::frames::ServerFrame;
use crate::log::Replay;
use crate::ports::PushError;

/// Events replayed per request; a client that is further behind resumes again.
pub const MAX_REPLAY: u32 = 500;

/// Extra attempts of a replayed event's push before the replay stops at it.
const REPUSH: usize = 3;

/// What a replay did, for the statistics the edge keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Replayed {
    pub events: u64,
    pub resync: bool,
}

/// Pushes the events after `after` then a `resumed` frame, or a `resync` frame.
pub async fn replay_to(
    deps: &Deps,
    conn_id: &str,
    id: Option<String>,
    channel: &Channel,
    epoch: &str,
    after: u64,
) -> Result<Replayed, ConnectionError> {
    let ch = channel.to_string();
    match crate::tail::replay(deps.table.clone(), channel, epoch, after, MAX_REPLAY).await? {
        Replay::Resync(reason) => {
            reply(
                deps.pusher.as_ref(),
                conn_id,
                &ServerFrame::Resync {
                    id,
                    channel: ch,
                    reason: reason.into(),
                },
            )
            .await?;
            Ok(Replayed { events: 0, resync: true })
        }
        Replay::Events { events, head, more } => {
            // What the live pushes send this connection, the replay sends too: the
            // subscription's event patterns and content filter apply. `resumed.seq` then
            // tells the client that every seq up to it was replayed or is not for it.
            let sub = match events.is_empty() {
                true => None,
                false => crate::connections::subscription(deps.table.as_ref(), conn_id, channel).await?,
            };
            let mut last = after;
            let mut replayed = 0;
            let mut failed_at = None;
            // In order, one at a time: a client reads them as they were first sent. A
            // push that fails leaves a gap the client sees by seq and resumes again.
            for (seq, event) in events {
                last = seq;
                let Ok(event) = serde_json::from_value::<Envelope>(event) else {
                    continue;
                };
                if let Some(s) = &sub {
                    if !s.wants(&event.event_type) || s.filter.as_ref().is_some_and(|f| !crate::fanout::filter_matches(f, &event.data)) {
                        continue;
                    }
                }
                let frame = ServerFrame::Event {
                    channel: ch.clone(),
                    seq: Some(seq),
                    epoch: Some(head.epoch.clone()),
                    event: Box::new(event),
                };
                let bytes = frame.to_json();
                let mut pushed = deps.pusher.post(conn_id, bytes.as_bytes()).await;
                // A failed push is tried again a few times: stopping the replay at it costs
                // the client another round trip.
                for _ in 0..REPUSH {
                    if matches!(pushed, Ok(()) | Err(PushError::Gone)) {
                        break;
                    }
                    pushed = deps.pusher.post(conn_id, bytes.as_bytes()).await;
                }
                match pushed {
                    Ok(()) => replayed += 1,
                    Err(PushError::Gone) => {
                        return Ok(Replayed {
                            events: replayed,
                            resync: false,
                        })
                    }
                    Err(e) => {
                        // `resumed.seq` promises everything up to it was sent or is not for
                        // this subscription: stop before the failed one, the client resumes.
                        tracing::debug!(seq, error = %e, "replayed event not pushed");
                        failed_at = Some(seq);
                        break;
                    }
                }
            }
            // What it sent is charged to the connection's rate limit.
            let now_ms = chrono::Utc::now().timestamp_millis();
            crate::ratelimit::charge_replay(deps.table.as_ref(), conn_id, now_ms, replayed as u32).await;
            let (seq, more) = match failed_at {
                Some(f) => (f - 1, true),
                None if more => (last, true),
                None => (head.seq, false),
            };
            reply(
                deps.pusher.as_ref(),
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
            .await?;
            Ok(Replayed {
                events: replayed,
                resync: false,
            })
        }
    }
}
