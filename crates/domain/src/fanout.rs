//! The fan-out: an event from the bus goes to every matching subscriber of each of
//! its channels, pushed with bounded concurrency; stale connections found on the way
//! are deleted. Events of this system arrive sequenced by their source and are pushed
//! with their seqs; only events from outside are sequenced (and logged) here.

use crate::budget::TokenBucket;
use crate::channels::{channels_for, Channel};
use crate::connections::{self, Subscriber};
use crate::deps::Deps;
use crate::events::{Envelope, Priority};
use crate::frames::ServerFrame;
use crate::log;
use crate::ports::ShardJob;
use crate::ports::{PushError, TableError};
use crate::retry::Backoff;
use futures::stream::{self, StreamExt};
use serde_json::Value;

/// What one fan-out did, for logs, metrics and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub channels: usize,
    pub delivered: usize,
    pub stale: usize,
    pub throttled: usize,
    pub failed: usize,
    /// Channels skipped because this event id was already sequenced there.
    pub duplicates: usize,
    /// 1 when the event was refused because its frame would be over [`MAX_PUSH_BYTES`].
    pub too_large: usize,
    /// Stale connections this fan-out removed (their closing is counted at the edge).
    pub removed: usize,
    /// The channels those stale connections were subscribed to (their presence changed).
    pub vacated: Vec<Channel>,
    /// Subscriptions on `drivers` not offered the trip because their driver is busy.
    pub busy: usize,
    /// Shards read (1 per channel unless sharded).
    pub shards: usize,
    /// Shards handed to workers.
    pub dispatched: usize,
    /// Posts made again after a throttle or a failure.
    pub retries: usize,
    /// Subscribers not posted before the deadline: left to `resume` (they see a gap).
    pub undelivered: usize,
}

impl Report {
    /// Adds what one shard did.
    pub fn add(&mut self, o: Report) {
        self.channels += o.channels;
        self.delivered += o.delivered;
        self.stale += o.stale;
        self.throttled += o.throttled;
        self.failed += o.failed;
        self.duplicates += o.duplicates;
        self.too_large = self.too_large.max(o.too_large);
        self.removed += o.removed;
        self.vacated.extend(o.vacated);
        self.busy += o.busy;
        self.shards += o.shards;
        self.dispatched += o.dispatched;
        self.retries += o.retries;
        self.undelivered += o.undelivered;
    }
}

pub use crate::ports::pusher::MAX_PUSH_BYTES;
/// What a frame adds around its event (type, channel, seq, epoch), at most.
const FRAME_OVERHEAD: usize = 512;

/// Whether an EventBridge content pattern over `data` matches.
pub fn filter_matches(filter: &Value, data: &Value) -> bool {
    let mut q = quamina::Quamina::<u8>::new();
    q.add_pattern(0, &filter.to_string()).is_ok()
        && q.matches_for_event(data.to_string().as_bytes())
            .map(|m| !m.is_empty())
            .unwrap_or(false)
}

/// Checks a filter at subscribe time, so a bad one is refused there and not ignored later.
pub fn validate_filter(filter: &Value) -> Result<(), String> {
    if !filter.is_object() {
        return Err("filter must be a JSON object (an EventBridge content pattern)".into());
    }
    quamina::Quamina::<u8>::new()
        .add_pattern(0, &filter.to_string())
        .map_err(|e| e.to_string())
}

/// Recently pushed frames of this process, by channel and (epoch, seq) or, for an event
/// without a seq, its id: an EventBridge redelivery to a warm instance (after a later
/// channel of the same event failed, say) pushes nothing twice without a write per
/// event. One to another instance pushes a seq that clients already have, and they drop
/// it by its seq (an unsequenced event by its id).
type Pushed = (usize, String, String);

struct Recent {
    set: std::collections::HashSet<Pushed>,
    order: std::collections::VecDeque<Pushed>,
}

const RECENT: usize = 16_384;

static RECENT_PUSHES: std::sync::Mutex<Option<Recent>> = std::sync::Mutex::new(None);

/// Runs `f` on the process's recent pushes.
fn with_recent<T>(f: impl FnOnce(&mut Recent) -> T) -> T {
    let mut guard = RECENT_PUSHES.lock().unwrap_or_else(|e| e.into_inner());
    f(guard.get_or_insert_with(|| Recent {
        set: Default::default(),
        order: Default::default(),
    }))
}

/// Records a push; false if it was recorded already. `pusher` tells processes apart
/// where tests run several stacks in one.
fn remember_push(key: Pushed) -> bool {
    with_recent(|r| {
        if !r.set.insert(key.clone()) {
            return false;
        }
        r.order.push_back(key);
        if r.order.len() > RECENT {
            if let Some(old) = r.order.pop_front() {
                r.set.remove(&old);
            }
        }
        true
    })
}

fn pushed_already(key: &Pushed) -> bool {
    with_recent(|r| r.set.contains(key))
}

fn too_large(event: &Envelope, bytes: usize, report: &mut Report) {
    tracing::error!(event_id = %event.id, event_type = %event.event_type, bytes, "event too large to push: dropped");
    report.too_large = 1;
}

pub async fn deliver(deps: &Deps, event: &Envelope) -> Result<Report, TableError> {
    let mut report = Report::default();
    let at_source = !event.sequence.is_empty();
    // A frame API Gateway would refuse reaches nobody: an event from outside (a producer's
    // PutEvents; the routes cap every text) that would make one is not sequenced, so no
    // client waits for a seq that can never come. EventBridge's other rules still get it.
    // Our own events are measured as their frames are built, below, at no extra cost.
    if !at_source {
        let size = serde_json::to_vec(event).map_or(0, |v| v.len());
        if size + FRAME_OVERHEAD > MAX_PUSH_BYTES {
            too_large(event, size, &mut report);
            return Ok(report);
        }
    }
    let retention = deps.config.log_retention_secs;
    let table = deps.table.as_ref();
    // The event as clients get it: its positions travel in the frame.
    let mut pushed_event = event.clone();
    pushed_event.sequence.clear();
    let deadline_ms = chrono::Utc::now().timestamp_millis() + deps.config.fanout_deadline_secs as i64 * 1000;
    for channel in channels_for(event) {
        report.channels += 1;
        let name = channel.to_string();
        let logged = channel.is_logged() && event.priority > Priority::Low;
        let mut appended = false;
        let pusher = pusher_key(deps);
        // An event without a seq is remembered once pushed: a redelivery after a failure
        // on a later channel skips the channels it reached.
        let mut unsequenced = None;
        let (seq, epoch) = if let Some(p) = event.position(&name) {
            // Sequenced where it happened: push it as it is, once per process.
            if !remember_push((pusher, name.clone(), format!("{}#{}", p.epoch, p.seq))) {
                report.duplicates += 1;
                continue;
            }
            (Some(p.seq), Some(p.epoch.clone()))
        } else if logged && !at_source {
            // From outside (a producer's PutEvents): sequenced here, on arrival.
            appended = true;
            match log::append(table, &channel, event, retention).await? {
                log::Appended::New(head) => (Some(head.seq), Some(head.epoch)),
                // A redelivery: push again only if the first delivery did not finish.
                log::Appended::Duplicate { pushed: true, .. } => {
                    report.duplicates += 1;
                    continue;
                }
                log::Appended::Duplicate { head, pushed: false } => (Some(head.seq), Some(head.epoch)),
            }
        } else {
            let key = (pusher, name.clone(), event.id.clone());
            if pushed_already(&key) {
                report.duplicates += 1;
                continue;
            }
            unsequenced = Some(key);
            (None, None)
        };
        // Shard 0's Query brings the shard count along; the other shards go to workers.
        let (subs, shards) = connections::shard_subscribers(table, &name, 0).await?;
        let shards = shards.unwrap_or(1);
        let skip = if offers_to_drivers(&name, event) && (shards > 1 || !subs.is_empty()) {
            // Read once for every shard, and carried while small (an async invoke holds 256 KB).
            let busy = crate::trips::availability::busy_drivers(table).await?;
            (busy.len() <= MAX_CARRIED_SKIP).then(|| busy.into_iter().collect())
        } else {
            None
        };
        let job = ShardJob {
            channel: name.clone(),
            shard: 0,
            shards,
            seq,
            epoch,
            // Each shard's share, less one post a second (a second may hold one token more
            // than the rate) and 2% (a post leaves a moment after its token, so a late one
            // lands in the next second): the shards together never pass the budget.
            rate: ((deps.config.post_budget * 0.98 - f64::from(shards)) / f64::from(shards)).max(1.0),
            deadline_ms,
            event: pushed_event.clone(),
            skip,
        };
        report.shards += shards as usize;
        let others: Vec<ShardJob> = (1..shards).map(|shard| ShardJob { shard, ..job.clone() }).collect();
        let inline = match (&deps.dispatcher, others.is_empty()) {
            (_, true) => Vec::new(),
            (Some(d), false) => {
                let n = others.len();
                match d.dispatch(others).await {
                    Ok(()) => {
                        report.dispatched += n;
                        Vec::new()
                    }
                    // Not handed over: this invocation posts them itself, within its deadline.
                    Err(e) => {
                        tracing::warn!(channel = %name, error = %e, "shards posted here instead");
                        report.dispatched += n - e.failed.len();
                        e.failed
                    }
                }
            }
            (None, false) => others,
        };
        let (first, rest) = futures::join!(post_shard(deps, &job, subs), async {
            stream::iter(inline)
                .map(|j| deliver_shard(deps, j))
                .buffer_unordered(INLINE_SHARDS)
                .collect::<Vec<_>>()
                .await
        });
        report.add(first?);
        for r in rest {
            report.add(r?);
        }
        if let Some(key) = unsequenced {
            remember_push(key);
        }
        if appended {
            // Best effort: without the mark a redelivery pushes the same seq again,
            // which clients drop as a duplicate.
            if let Err(e) = log::mark_pushed(table, &channel, &event.id, retention).await {
                tracing::warn!(%channel, error = %e, "could not mark the event pushed");
            }
        }
    }
    // A member whose connection turned out gone starts their grace period now.
    report.vacated.sort();
    report.vacated.dedup();
    crate::presence::settle_all(deps, &report.vacated).await;
    Ok(report)
}

/// Busy drivers a shard job carries at most (~40 bytes each, well under an asynchronous
/// invoke's 256 KB); with more, each shard reads them itself.
const MAX_CARRIED_SKIP: usize = 2_000;

/// A trip offer on the drivers' channel: it goes to available drivers only.
fn offers_to_drivers(channel: &str, event: &Envelope) -> bool {
    channel == Channel::Drivers.to_string() && event.event_type == "trip.offer.created"
}

/// Shards one invocation posts at once when it has no dispatcher (or it failed).
const INLINE_SHARDS: usize = 64;

fn pusher_key(deps: &Deps) -> usize {
    std::sync::Arc::as_ptr(&deps.pusher) as *const () as usize
}

/// One shard of one event, as a worker gets it: its subscribers, then the posts. A
/// redelivered job pushes nothing twice in this process.
pub async fn deliver_shard(deps: &Deps, job: ShardJob) -> Result<Report, TableError> {
    let key = (
        pusher_key(deps),
        format!("{}#{}", job.channel, job.shard),
        match (&job.epoch, job.seq) {
            (Some(e), Some(s)) => format!("{e}#{s}"),
            _ => job.event.id.clone(),
        },
    );
    if pushed_already(&key) {
        return Ok(Report {
            duplicates: 1,
            ..Report::default()
        });
    }
    let (subs, _) = connections::shard_subscribers(deps.table.as_ref(), &job.channel, job.shard).await?;
    let report = post_shard(deps, &job, subs).await?;
    remember_push(key);
    Ok(report)
}

/// Posts one shard's matching subscribers the event's frame, within the shard's share of
/// the budget and its deadline.
async fn post_shard(deps: &Deps, job: &ShardJob, subs: Vec<Subscriber>) -> Result<Report, TableError> {
    let mut report = Report::default();
    let event = &job.event;
    let mut targets: Vec<&Subscriber> = subs
        .iter()
        .filter(|s| s.wants(&event.event_type) && s.filter.as_ref().is_none_or(|f| filter_matches(f, &event.data)))
        .collect();
    if offers_to_drivers(&job.channel, event) && !targets.is_empty() {
        // Offers reach available drivers only: the busy set the fan-out read, or read here.
        let busy: std::collections::HashSet<String> = match &job.skip {
            Some(carried) => carried.iter().cloned().collect(),
            None => crate::trips::availability::busy_drivers(deps.table.as_ref()).await?,
        };
        let before = targets.len();
        targets.retain(|s| !busy.contains(&s.user_id));
        report.busy += before - targets.len();
    }
    if targets.is_empty() {
        return Ok(report);
    }
    let frame = ServerFrame::Event {
        channel: job.channel.clone(),
        seq: job.seq,
        epoch: job.epoch.clone(),
        event: Box::new(event.clone()),
    }
    .to_json();
    if frame.len() > MAX_PUSH_BYTES {
        too_large(event, frame.len(), &mut report);
        return Ok(report);
    }
    // No burst: posts are paced evenly, and in-flight posts keep the pipe full.
    let bucket = TokenBucket::new(job.rate, 1.0);
    let left = job.deadline_ms - chrono::Utc::now().timestamp_millis();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(left.max(0) as u64);
    let rounds = if job.seq.is_some() { PUSH_ROUNDS } else { 1 };
    push_all(
        deps,
        &job.channel,
        &targets,
        frame.as_bytes(),
        rounds,
        &bucket,
        deadline,
        &mut report,
    )
    .await;
    report.vacated.sort();
    report.vacated.dedup();
    Ok(report)
}

/// Rounds of posts for an event with a seq: the connections a round failed (an error that
/// may pass) get it again after a pause. A seq'd event lost at a channel's tail shows no
/// gap until the next event or the client's tail check, so a few hundred milliseconds
/// here are worth it. A throttled post is retried in more rounds, until the deadline.
pub const PUSH_ROUNDS: u32 = 3;
pub const THROTTLED_ROUNDS: u32 = 8;
const PUSH_ROUND_BACKOFF: Backoff = Backoff {
    attempts: THROTTLED_ROUNDS,
    base: std::time::Duration::from_millis(100),
    max: std::time::Duration::from_secs(2),
};

enum Outcome {
    Posted(Result<(), PushError>),
    /// No token before the deadline: left to `resume`.
    Late,
}

#[allow(clippy::too_many_arguments)]
async fn push_all(
    deps: &Deps,
    channel: &str,
    targets: &[&Subscriber],
    frame: &[u8],
    rounds: u32,
    bucket: &TokenBucket,
    deadline: tokio::time::Instant,
    report: &mut Report,
) {
    // Owned ids and a shared frame keep the futures free of borrowed lifetimes.
    let frame: std::sync::Arc<[u8]> = frame.into();
    let mut ids: Vec<(String, u32)> = targets.iter().map(|s| (s.connection_id.clone(), 0)).collect();
    for round in 0..THROTTLED_ROUNDS {
        if round > 0 {
            PUSH_ROUND_BACKOFF.sleep(round - 1).await;
            report.retries += ids.len();
        }
        let results: Vec<(String, u32, Outcome)> = stream::iter(std::mem::take(&mut ids))
            .map(|(id, failures)| {
                let (pusher, frame) = (deps.pusher.clone(), frame.clone());
                async move {
                    if !bucket.acquire(deadline).await {
                        return (id, failures, Outcome::Late);
                    }
                    let r = pusher.post(&id, &frame).await;
                    (id, failures, Outcome::Posted(r))
                }
            })
            .buffer_unordered(deps.config.fanout_concurrency)
            .collect()
            .await;
        let last = round + 1 >= THROTTLED_ROUNDS;
        for (id, failures, outcome) in results {
            match outcome {
                Outcome::Late => report.undelivered += 1,
                Outcome::Posted(Ok(())) => report.delivered += 1,
                Outcome::Posted(Err(PushError::Gone)) => {
                    report.stale += 1;
                    // Only the stale connection goes; a failed cleanup is retried by TTL.
                    match connections::remove(deps.table.as_ref(), &id).await {
                        Ok(removed) => {
                            report.removed += usize::from(removed.existed);
                            report.vacated.extend(removed.channels);
                        }
                        Err(e) => tracing::warn!(connection_id = %id, error = %e, "stale connection cleanup failed"),
                    }
                }
                Outcome::Posted(Err(PushError::Throttled)) if !last => ids.push((id, failures)),
                Outcome::Posted(Err(PushError::Throttled)) => report.throttled += 1,
                Outcome::Posted(Err(_)) if failures + 1 < rounds => ids.push((id, failures + 1)),
                Outcome::Posted(Err(e)) => {
                    report.failed += 1;
                    tracing::warn!(connection_id = %id, %channel, error = %e, "push failed");
                }
            }
        }
        if ids.is_empty() || tokio::time::Instant::now() >= deadline {
            report.undelivered += ids.len();
            break;
        }
    }
}
