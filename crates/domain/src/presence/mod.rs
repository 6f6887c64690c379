//! Who is here: a channel's members (users, not connections), its occupancy, and the
//! lifecycle events `presence.joined`, `presence.left`, `channel.occupied`, `channel.vacated`.
//!
//! Presence is derived, never counted: the channel's subscription items (`CHAN#{channel}`,
//! one per connection, with the user's name, role and connection time) say who is here now,
//! and [`reconcile`] compares that with what was last announced (one state item per
//! channel) and announces the difference. A crash, a lost `$disconnect` or a redelivery
//! can only delay an announcement, never make a ghost or a double: the next reconcile sees
//! the truth. The state is one conditional write (after the wake-up it needs), and its
//! events are published right after it. `presence.*` are `low` events:
//! pushed live, not logged or replayed (presence is state: a client that (re)subscribes
//! reads it whole with the `presence` action or `GET /api/channels/{channel}/presence`).
//!
//! * **Coalesced.** A channel announces at most once per clock second ([`RATE_MS`]), one
//!   change carrying every member it concerns, however many join at once. A subscription
//!   change does not reconcile by itself: it claims the next whole second's wake-up with
//!   one conditional write, and only the caller that wins it reconciles then. A burst of N
//!   subscribes (a reconnect storm) costs N small writes and one reconcile a second, not N
//!   reads of every member, on AWS as locally.
//! * **No flapping.** A member whose last connection went is announced as left only after
//!   the grace period (`PRESENCE_GRACE_SECS`, 15 s): a reconnect within it announces nothing.
//! * **No ghosts.** A connection that vanished without `$disconnect` goes when a push finds
//!   it gone (410) or its subscription's TTL passes; the reconcile that notices starts the
//!   grace period, and a wake-up (a due marker, `PRESDUE#{shard}`) brings the next reconcile
//!   at its end. The sweeper (`presence-sweep`, every minute, looping while wake-ups are due
//!   within the minute) runs them: a member leaves at most 60 s after their last connection
//!   disappeared (grace 15 s, or the next minute's sweep).
//! * **Bounded.** [`MAX_MEMBERS`] members are listed per channel; the occupancy counts every
//!   user subscribed (or within their grace period), listed or over the cap. A joiner waiting
//!   for the next second's announcement is counted with it, so list and count agree.
//!   Presence is kept for `chat:*`, `trip:*` and `drivers`; `drivers` is not announced on
//!   the channel (drivers do not see each other), only to `admin` and the bus.

use crate::auth::Claims;
use crate::channels::Channel;
use crate::connections::{self, Connection, ConnectionError};
use crate::deps::Deps;
pub mod payloads;

use crate::events::{Cause, Envelope, Event, Priority};
use crate::keys;
use crate::ports::table::{now_epoch, query_all};
use crate::ports::{Condition, Item, Query, SkCond, Table, TableError};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// At most one announcement per channel this often.
pub const RATE_MS: i64 = 1000;
/// Members listed per channel at most (a chat has far fewer; occupancy counts them all).
pub const MAX_MEMBERS: usize = 500;
/// Shards of the wake-up markers: each takes a partition's 1,000 writes/s.
pub const DUE_SHARDS: u32 = 4;
/// How many times a reconcile reads again after a concurrent one moved the state.
const ATTEMPTS: u32 = 8;

pub use payloads::{ChannelLifecycle, Member, Presence, PresenceChanged};

/// Whether a channel keeps presence.
pub fn tracked(channel: &Channel) -> bool {
    matches!(channel, Channel::Chat(_) | Channel::Trip(_) | Channel::Drivers)
}

/// Whether its presence events go to the channel itself (drivers do not see each other).
pub fn announced(channel: &Channel) -> bool {
    matches!(channel, Channel::Chat(_) | Channel::Trip(_))
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// A member as the state keeps it: with when their last connection went, if it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Kept {
    #[serde(flatten)]
    member: Member,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gone_since_ms: Option<i64>,
}

#[derive(Debug, Default)]
struct State {
    members: Vec<Kept>,
    /// Users here, listed or over the cap (absent in states written before it: the list's length).
    occupancy: Option<u32>,
    version: i64,
    last_emit_ms: i64,
}

fn state_of(item: Option<Item>) -> State {
    let Some(item) = item else { return State::default() };
    State {
        members: item
            .get("members")
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default(),
        occupancy: item.i64("occupancy").and_then(|n| u32::try_from(n).ok()),
        version: item.i64("version").unwrap_or(0),
        last_emit_ms: item.i64("lastEmitMs").unwrap_or(0),
    }
}

/// Who is subscribed now, by user (from the subscription items; expired ones are not read).
struct Here {
    member: Member,
    /// The earliest TTL of their subscriptions: a wake-up then, in case nothing else comes.
    expires: Option<i64>,
}

async fn here(table: &dyn Table, channel: &Channel) -> Result<BTreeMap<String, Here>, TableError> {
    let mut out: BTreeMap<String, Here> = BTreeMap::new();
    for s in connections::subscribers(table, channel).await? {
        let expires = s.expires;
        let e = out.entry(s.user_id.clone()).or_insert_with(|| Here {
            member: Member {
                user_id: s.user_id.clone(),
                display_name: s.display_name.clone(),
                role: s.role.clone(),
                connected_at: s.connected_at,
                connections: 0,
            },
            expires,
        });
        e.member.connections += 1;
        e.member.connected_at = e.member.connected_at.min(s.connected_at);
        e.expires = match (e.expires, expires) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    Ok(out)
}

/// What one reconcile did.
#[derive(Debug, Default, PartialEq)]
pub struct Reconciled {
    pub joined: usize,
    pub left: usize,
    pub occupancy: u32,
    /// When the channel needs its next reconcile (ms), if it does.
    pub next_due_ms: Option<i64>,
    /// When the changes this one had to leave to the next second are due (ms), if any.
    pub deferred_ms: Option<i64>,
}

/// Compares who is here with what was announced, announces at most one change (joins
/// first), and sets the channel's next wake-up. Safe to run any time, concurrently: a
/// reconcile that loses the race reads again.
pub async fn reconcile(deps: &Deps, channel: &Channel) -> Result<Reconciled, TableError> {
    let table = deps.table.as_ref();
    let ch = channel.to_string();
    let grace_ms = deps.config.presence_grace_secs * 1000;
    for _ in 0..ATTEMPTS {
        let now = now_ms();
        let state = state_of(table.get(&keys::presence(&ch), keys::STATE).await?);
        let mut here = here(table, channel).await?;
        // One announcement per clock second: wake-ups fall on whole seconds, so a reconcile
        // woken at one may announce even if the last announcement ended a few ms into the
        // second before.
        let next_second = (now.div_euclid(RATE_MS) + 1) * RATE_MS;
        let may_emit = now.div_euclid(RATE_MS) > state.last_emit_ms.div_euclid(RATE_MS);
        let had_members = !state.members.is_empty();
        let mut next: Vec<Kept> = Vec::with_capacity(state.members.len());
        let mut left: Vec<Kept> = Vec::new();
        let mut due: Option<i64> = None;
        let mut wake = |at: i64| due = Some(due.map_or(at, |d: i64| d.min(at)));
        for mut k in state.members {
            if let Some(h) = here.remove(&k.member.user_id) {
                // Still here (or back within the grace period: nothing to announce).
                k.member.connections = h.member.connections;
                k.member.connected_at = k.member.connected_at.min(h.member.connected_at);
                k.gone_since_ms = None;
                if let Some(t) = h.expires {
                    wake(t * 1000);
                }
                next.push(k);
                continue;
            }
            let gone = *k.gone_since_ms.get_or_insert(now);
            if now - gone < grace_ms {
                wake(gone + grace_ms);
                next.push(k);
            } else {
                left.push(k);
            }
        }
        // Who came, in arrival order, as many as the cap leaves room for (the others are
        // subscribed but not listed until there is room; who left keeps their place until
        // announced).
        let mut joined: Vec<Member> = here.values().map(|h| h.member.clone()).collect();
        joined.sort_by(|a, b| a.connected_at.cmp(&b.connected_at).then(a.user_id.cmp(&b.user_id)));
        joined.truncate(MAX_MEMBERS.saturating_sub(next.len() + left.len()));
        // One announcement per reconcile, one reconcile's worth per second: joins first,
        // leaves at the next turn; within a second of the last one, both wait for its end.
        let announce_joined = may_emit && !joined.is_empty();
        let announce_left = may_emit && joined.is_empty() && !left.is_empty();
        let mut deferred = None;
        // Joiners who wait for the next second: counted when they are listed, so that the
        // occupancy and the list read together agree (the cap aside).
        let mut waiting = 0;
        if !announce_joined && !joined.is_empty() {
            deferred = Some(next_second);
            waiting = joined.len();
            joined.clear(); // seen again then
        }
        if !announce_left && !left.is_empty() {
            deferred = Some(next_second);
            next.append(&mut left); // still gone: left at the next turn
        }
        // Users here for whom the cap leaves no place (`joined` is a part of `here`: what
        // is announced now, or nothing).
        let unlisted = here.len() - joined.len() - waiting;
        if announce_left && unlisted > 0 && next.len() < MAX_MEMBERS {
            deferred = Some(next_second); // their places are free from the next second
        }
        if let Some(at) = deferred {
            wake(at);
        }
        if announce_joined {
            for h in joined.iter().filter_map(|m| here.get(&m.user_id)) {
                if let Some(t) = h.expires {
                    wake(t * 1000);
                }
            }
            next.extend(joined.iter().cloned().map(|member| Kept {
                member,
                gone_since_ms: None,
            }));
        }
        let occupancy = (next.len() + unlisted) as u32;
        let cause = Cause::default();
        let changed = |members: Vec<Member>| PresenceChanged {
            channel: ch.clone(),
            members,
            occupancy,
        };
        let lifecycle = ChannelLifecycle {
            channel: ch.clone(),
            occupancy,
        };
        let mut events = Vec::new();
        // Live, like typing: presence is state, and a (re)subscribing client reads it
        // whole (`presence` action, `GET .../presence`) rather than replaying its history.
        if announce_joined && announced(channel) {
            let e = Envelope::new(Event::PresenceJoined(changed(joined.clone())), &cause);
            events.push(e.with_priority(Priority::Low));
        }
        if announce_left && announced(channel) {
            let gone = left.iter().map(|k| k.member.clone()).collect();
            let e = Envelope::new(Event::PresenceLeft(changed(gone)), &cause);
            events.push(e.with_priority(Priority::Low));
        }
        if announce_joined && !had_members {
            events.push(Envelope::new(Event::ChannelOccupied(lifecycle.clone()), &cause));
        }
        if announce_left && occupancy == 0 {
            events.push(Envelope::new(Event::ChannelVacated(lifecycle), &cause));
        }
        let emitted = announce_joined || announce_left;
        // The wake-up first: if the state write then fails, it only costs a reconcile.
        if let Some(at) = due {
            table.put(due_marker(&ch, at), None).await?;
        }
        // One conditional write (not a transaction: presence events have no log entry,
        // so nothing else must land with it; half the write units).
        let item = Item::new(keys::presence(&ch), keys::STATE)
            .with("channel", ch.as_str())
            .with("members", serde_json::to_value(&next).unwrap_or(Value::Null))
            .with("occupancy", i64::from(occupancy))
            .with("version", state.version + 1)
            .with("lastEmitMs", if emitted { now } else { state.last_emit_ms });
        let cond = if state.version == 0 {
            Condition::NotExists
        } else {
            Condition::Eq("version".into(), state.version.into())
        };
        match table.put(item, Some(cond)).await {
            Ok(()) => {}
            // Another reconcile moved the state first: read again.
            Err(TableError::ConditionFailed) => continue,
            Err(e) => return Err(e),
        }
        // Published once the state says so (best effort, like every unlogged event: a
        // lost one leaves the state right, and clients read it whole).
        if !events.is_empty() {
            if let Err(e) = deps.publisher.publish(&events).await {
                tracing::warn!(channel = %ch, error = %e, "presence events not published");
            }
        }
        return Ok(Reconciled {
            joined: if announce_joined { joined.len() } else { 0 },
            left: if announce_left { left.len() } else { 0 },
            occupancy,
            next_due_ms: due,
            deferred_ms: deferred,
        });
    }
    Err(TableError::Transient("presence state kept moving".into()))
}

fn due_shard(channel: &str) -> u32 {
    channel.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b.into())) % DUE_SHARDS
}

/// A wake-up: reconcile `channel` at `at_ms`. Sorted by time within its shard, so the
/// sweeper reads only what is due; markers live a day at most (TTL).
fn due_marker(channel: &str, at_ms: i64) -> Item {
    Item::new(keys::presence_due(due_shard(channel)), format!("{at_ms:013}#{channel}"))
        .with("channel", channel)
        .with("dueMs", at_ms)
        .with_ttl(at_ms / 1000 + 86_400)
}

/// After a subscription of `channel` changed: the first caller of this clock second claims
/// its wake-up (one conditional write) and reconciles at the second's end, waiting for it
/// here; every other caller of the second returns at once, its change seen by that
/// reconcile. What a reconcile defers goes to the next second, for at most two more turns
/// here; a wake-up left behind (its caller gone) is the sweeper's.
pub async fn settle(deps: &Deps, channel: &Channel) -> Result<(), TableError> {
    if !tracked(channel) {
        return Ok(());
    }
    let table = deps.table.as_ref();
    let ch = channel.to_string();
    let mut at = (now_ms().div_euclid(RATE_MS) + 1) * RATE_MS;
    match table.put(due_marker(&ch, at), Some(Condition::NotExists)).await {
        Ok(()) => {}
        Err(TableError::ConditionFailed) => return Ok(()), // this second's reconcile is someone's
        Err(e) => return Err(e),
    }
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis((at - now_ms()).clamp(0, 2 * RATE_MS) as u64)).await;
        // Whoever deletes the marker reconciles (the sweeper may have taken it).
        let marker = due_marker(&ch, at);
        match table.delete(&marker.pk, &marker.sk, Some(Condition::Exists)).await {
            Ok(()) => {}
            Err(TableError::ConditionFailed) => return Ok(()),
            Err(e) => return Err(e),
        }
        match reconcile(deps, channel).await?.deferred_ms {
            Some(next) => at = next,
            None => return Ok(()),
        }
    }
    Ok(())
}

/// [`settle`] for each tracked channel of a list, logging what fails (presence catches up
/// at the next reconcile).
pub async fn settle_all(deps: &Deps, channels: &[Channel]) {
    for c in channels.iter().filter(|c| tracked(c)) {
        if let Err(e) = settle(deps, c).await {
            tracing::warn!(channel = %c, error = %e, "presence not reconciled now; the sweeper will");
        }
    }
}

/// What a sweep did.
#[derive(Debug, Default, PartialEq)]
pub struct Swept {
    pub reconciled: usize,
    pub failed: usize,
}

/// Runs every wake-up due now, then keeps going while more fall due within `budget`
/// (checking every `tick`): the scheduled `presence-sweep` function.
pub async fn sweep(deps: &Deps, budget: Duration, tick: Duration) -> Result<Swept, TableError> {
    let table = deps.table.as_ref();
    let deadline = tokio::time::Instant::now() + budget;
    let mut out = Swept::default();
    loop {
        let now = now_ms();
        let horizon = now + (deadline - tokio::time::Instant::now()).as_millis() as i64;
        let mut soonest: Option<i64> = None;
        for shard in 0..DUE_SHARDS {
            let q = Query::new(keys::presence_due(shard)).sk(SkCond::Le(format!("{horizon:013}~")));
            for m in query_all(table, q).await? {
                let (Some(at), Some(ch)) = (m.i64("dueMs"), m.str("channel")) else {
                    continue;
                };
                if at > now {
                    soonest = Some(soonest.map_or(at, |s| s.min(at)));
                    continue;
                }
                // Claim it: of two sweepers, one reconciles.
                match table.delete(&m.pk, &m.sk, Some(Condition::Exists)).await {
                    Ok(()) => {}
                    Err(TableError::ConditionFailed) => continue,
                    Err(e) => return Err(e),
                }
                match ch.parse::<Channel>() {
                    Ok(channel) => match reconcile(deps, &channel).await {
                        Ok(_) => out.reconciled += 1,
                        Err(e) => {
                            out.failed += 1;
                            tracing::warn!(channel = %ch, error = %e, "presence reconcile failed; retried");
                            let _ = table.put(due_marker(ch, now + RATE_MS), None).await;
                        }
                    },
                    Err(_) => tracing::warn!(marker = %m.sk, "a wake-up for no channel: dropped"),
                }
            }
        }
        let Some(next) = soonest else { return Ok(out) };
        let wait = Duration::from_millis((next - now_ms()).max(0) as u64).min(tick);
        if tokio::time::Instant::now() + wait >= deadline {
            return Ok(out);
        }
        tokio::time::sleep(wait).await;
    }
}

/// The channel's presence as announced (members in grace are still members).
pub async fn read(table: &dyn Table, channel: &Channel) -> Result<Presence, TableError> {
    let ch = channel.to_string();
    let state = state_of(table.get(&keys::presence(&ch), keys::STATE).await?);
    let members: Vec<Member> = state.members.into_iter().map(|k| k.member).collect();
    Ok(Presence {
        channel: ch,
        occupancy: state.occupancy.unwrap_or(members.len() as u32),
        members,
    })
}

/// Reads a channel's presence for a user who may subscribe to it (the same check).
pub async fn read_for(table: &dyn Table, conn: &Connection, channel: &Channel) -> Result<Presence, ConnectionError> {
    if !tracked(channel) {
        return Err(ConnectionError::NoPresence(channel.to_string()));
    }
    connections::authorize(table, conn, channel).await?;
    // Drivers do not see each other: who is on `drivers` is for admins.
    if *channel == Channel::Drivers && !conn.roles.contains(&crate::auth::Role::Admin) {
        return Err(ConnectionError::Forbidden(channel.to_string()));
    }
    Ok(read(table, channel).await?)
}

/// [`read_for`] with a token's claims (the HTTP route).
pub async fn read_for_user(table: &dyn Table, user: &Claims, channel: &Channel) -> Result<Presence, ConnectionError> {
    let conn = Connection {
        connection_id: String::new(),
        user_id: user.sub.clone(),
        display_name: user.display_name().to_string(),
        roles: user.roles.clone(),
        token_exp: Some(user.exp),
        connected_at: Utc::now(),
    };
    read_for(table, &conn, channel).await
}

/// Seconds since the epoch: for callers that want the same clock as the TTLs.
pub fn now_secs() -> i64 {
    now_epoch()
}
