//! Connections and subscriptions: `$connect`, `$disconnect`, subscribe, unsubscribe,
//! and the subscriber Query the fan-out runs (never a Scan).

use crate::auth::{Claims, Role};
use crate::channels::Channel;
use crate::config::CONNECTION_TTL_SECS;
use crate::deps::Deps;
use crate::error::ApiError;
use crate::frames::ServerFrame;
use crate::keys;
use crate::ports::table::{now_epoch, query_all};
use crate::ports::{Condition, ConnectionPusher, Item, PushError, Query, Table, TableError, TxOp};
use crate::shards;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::Value;

/// One subscription of a connection to a channel, as the fan-out reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscriber {
    pub connection_id: String,
    pub user_id: String,
    pub events: Vec<String>,
    pub filter: Option<Value>,
    /// Who, for presence: the user's name, first role and when the connection opened.
    pub display_name: String,
    pub role: String,
    pub connected_at: DateTime<Utc>,
    /// The subscription's TTL (epoch seconds).
    pub expires: Option<i64>,
}

impl Subscriber {
    fn from_item(item: &Item) -> Option<Self> {
        let user_id = item.str("userId").unwrap_or_default().to_string();
        Some(Self {
            connection_id: item.str("connectionId")?.to_string(),
            display_name: item.str("name").unwrap_or(&user_id).to_string(),
            role: item.str("role").unwrap_or("user").to_string(),
            connected_at: item.str("connectedAt").and_then(|t| t.parse().ok()).unwrap_or_else(Utc::now),
            expires: item.ttl(),
            user_id,
            events: item
                .get("events")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_default(),
            filter: item.get("filter").cloned().filter(|f| !f.is_null()),
        })
    }

    /// Whether an event type passes this subscription's `events` patterns.
    pub fn wants(&self, event_type: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|p| crate::frames::type_matches(p, event_type))
    }
}

impl Connection {
    /// The role a member list shows: the first of the token's, or `user`.
    pub fn primary_role(&self) -> String {
        self.roles
            .first()
            .and_then(|r| serde_json::to_value(r).ok())
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "user".into())
    }

    /// Refuses once the token the connection opened with has expired: its rights end then
    /// (every action that acts for the user checks it), though the socket stays.
    pub fn token_live(&self) -> Result<(), ConnectionError> {
        match self.token_exp {
            Some(exp) if exp <= now_epoch() => Err(ConnectionError::Expired),
            _ => Ok(()),
        }
    }
}

/// The stored connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    pub connection_id: String,
    pub user_id: String,
    pub display_name: String,
    pub roles: Vec<Role>,
    pub connected_at: DateTime<Utc>,
    /// When the token the connection opened with expires (epoch seconds): its rights end
    /// then, for new subscribes and resumes, though the socket stays (API Gateway keeps it).
    pub token_exp: Option<i64>,
}

pub async fn open(deps: &Deps, connection_id: &str, user: &Claims) -> Result<(), TableError> {
    let roles: Vec<Value> = user.roles.iter().map(|r| serde_json::to_value(r).unwrap_or_default()).collect();
    let item = Item::new(keys::conn(connection_id), keys::META)
        .with("connectionId", connection_id)
        .with("userId", user.sub.as_str())
        .with("name", user.display_name())
        .with("roles", roles)
        .with("connectedAt", chrono::Utc::now().to_rfc3339())
        .with("tokenExp", user.exp)
        .with_ttl(now_epoch() + CONNECTION_TTL_SECS);
    deps.table.put(item, None).await
}

pub async fn get(table: &dyn Table, connection_id: &str) -> Result<Option<Connection>, TableError> {
    Ok(table.get(&keys::conn(connection_id), keys::META).await?.map(|item| Connection {
        connection_id: connection_id.to_string(),
        user_id: item.str("userId").unwrap_or_default().to_string(),
        display_name: item.str("name").or(item.str("userId")).unwrap_or_default().to_string(),
        connected_at: item.str("connectedAt").and_then(|t| t.parse().ok()).unwrap_or_else(Utc::now),
        roles: item
            .get("roles")
            .cloned()
            .and_then(|r| serde_json::from_value(r).ok())
            .unwrap_or_default(),
        token_exp: item.get("tokenExp").and_then(Value::as_i64),
    }))
}

/// What [`remove`] found: whether the connection was still there (its closing is counted
/// once), and the channels it was subscribed to (their presence changes).
#[derive(Debug, Default, PartialEq)]
pub struct Removed {
    pub existed: bool,
    pub channels: Vec<Channel>,
}

/// Deletes a connection and all its subscriptions (on `$disconnect` and on a 410).
pub async fn remove(table: &dyn Table, connection_id: &str) -> Result<Removed, TableError> {
    let items = query_all(table, Query::new(keys::conn(connection_id))).await?;
    let mut ops: Vec<TxOp> = Vec::with_capacity(items.len() * 2);
    for item in &items {
        if let Some(channel) = item.sk.strip_prefix("SUB#") {
            ops.push(TxOp::Delete {
                pk: shards::pk(channel, shard_of(item)),
                sk: keys::chan_conn(connection_id),
                cond: None,
            });
        }
        ops.push(TxOp::Delete {
            pk: item.pk.clone(),
            sk: item.sk.clone(),
            cond: None,
        });
    }
    // Transactions hold at most 100 items; a connection's cleanup need not be atomic.
    for chunk in ops.chunks(100) {
        table.transact(chunk.to_vec()).await?;
    }
    for channel in items.iter().filter_map(|i| i.sk.strip_prefix("SUB#")) {
        shards::left(table, channel, connection_id).await;
    }
    Ok(Removed {
        existed: items.iter().any(|i| i.sk == keys::META),
        channels: items
            .iter()
            .filter_map(|i| i.sk.strip_prefix("SUB#").and_then(|c| c.parse().ok()))
            .collect(),
    })
}

/// Who may subscribe to what (DESIGN.md §5): checked against state on every subscribe.
pub async fn authorize(table: &dyn Table, conn: &Connection, channel: &Channel) -> Result<(), ConnectionError> {
    conn.token_live()?;
    let allowed = match channel {
        Channel::Admin => conn.roles.contains(&Role::Admin),
        Channel::Drivers => conn.roles.contains(&Role::Driver) || conn.roles.contains(&Role::Admin),
        Channel::User(id) => *id == conn.user_id || conn.roles.contains(&Role::Admin),
        Channel::Chat(id) => conn.roles.contains(&Role::Admin) || table.get(&keys::chat(id), &keys::member(&conn.user_id)).await?.is_some(),
        // The trip's organizer, its driver, its passengers with a booking, and admins.
        Channel::Trip(id) => crate::trips::access::may_follow(table, &conn.user_id, &conn.roles, id).await?,
    };
    if allowed {
        Ok(())
    } else {
        Err(ConnectionError::Forbidden(channel.to_string()))
    }
}

/// Stores a subscription (both directions, atomically, only while the connection exists).
pub async fn subscribe(
    table: &dyn Table,
    conn: &Connection,
    channel: &Channel,
    events: &[String],
    filter: Option<&Value>,
) -> Result<(), ConnectionError> {
    let ttl = now_epoch() + CONNECTION_TTL_SECS;
    let ch = channel.to_string();
    let mut shard = shards::place(table, &ch, &conn.connection_id).await?;
    // A subscription already there stays in its shard: a count grown since places it
    // elsewhere, so the back item's condition sends us to the recorded shard instead.
    for _ in 0..2 {
        let mut sub = Item::new(shards::pk(&ch, shard), keys::chan_conn(&conn.connection_id))
            .with("connectionId", conn.connection_id.as_str())
            .with("userId", conn.user_id.as_str())
            .with("name", conn.display_name.as_str())
            .with("role", conn.primary_role())
            .with("connectedAt", conn.connected_at.to_rfc3339())
            .with("events", events.to_vec())
            .with_ttl(ttl);
        if let Some(f) = filter {
            sub = sub.with("filter", f.clone());
        }
        let back = Item::new(keys::conn(&conn.connection_id), keys::sub(&ch))
            .with("channel", ch.as_str())
            .with("shard", shard)
            .with_ttl(ttl);
        let mut same_shard = vec![Condition::NotExists, Condition::Eq("shard".into(), Value::from(shard))];
        if shard == 0 {
            // Subscriptions written before channels had shards are all in shard 0.
            same_shard.push(Condition::AttrNotExists("shard".into()));
        }
        let ops = vec![
            TxOp::Check {
                pk: keys::conn(&conn.connection_id),
                sk: keys::META.into(),
                cond: Condition::Exists,
            },
            TxOp::Put { item: sub, cond: None },
            TxOp::Put {
                item: back,
                cond: Some(Condition::Or(same_shard)),
            },
        ];
        match table.transact(ops).await {
            Ok(()) => return Ok(()),
            Err(TableError::TransactionCanceled { failed }) if failed.contains(&0) => return Err(ConnectionError::Gone),
            Err(TableError::TransactionCanceled { failed }) if failed == [2] => {
                match table.get(&keys::conn(&conn.connection_id), &keys::sub(&ch)).await? {
                    Some(back) => shard = shard_of(&back),
                    None => continue,
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(TableError::Transient("the subscription moved while it was written".into()).into())
}

pub async fn unsubscribe(table: &dyn Table, connection_id: &str, channel: &Channel) -> Result<(), TableError> {
    let ch = channel.to_string();
    let Some(back) = table.get(&keys::conn(connection_id), &keys::sub(&ch)).await? else {
        return Ok(());
    };
    table
        .transact(vec![
            TxOp::Delete {
                pk: shards::pk(&ch, shard_of(&back)),
                sk: keys::chan_conn(connection_id),
                cond: None,
            },
            TxOp::Delete {
                pk: keys::conn(connection_id),
                sk: keys::sub(&ch),
                cond: None,
            },
        ])
        .await?;
    shards::left(table, &ch, connection_id).await;
    Ok(())
}

/// The shard a back item (`CONN#{id}` / `SUB#{channel}`) records (0 before sharding).
fn shard_of(back: &Item) -> u32 {
    back.get("shard").and_then(Value::as_u64).map_or(0, |n| n as u32)
}

/// One connection's subscription to a channel, if it has one.
pub async fn subscription(table: &dyn Table, connection_id: &str, channel: &Channel) -> Result<Option<Subscriber>, TableError> {
    let ch = channel.to_string();
    let Some(back) = table.get(&keys::conn(connection_id), &keys::sub(&ch)).await? else {
        return Ok(None);
    };
    let item = table
        .get(&shards::pk(&ch, shard_of(&back)), &keys::chan_conn(connection_id))
        .await?;
    Ok(item.as_ref().and_then(Subscriber::from_item))
}

/// A shard's subscribers, and the channel's shard count when it is shard 0.
pub type ShardRead = (Vec<Subscriber>, Option<u32>);

/// One shard's subscribers, and the channel's shard count when this is shard 0 (its
/// `SHARDS` item comes with the same Query): one Query (paged), no Scan.
pub async fn shard_subscribers(table: &dyn Table, channel: &str, shard: u32) -> Result<ShardRead, TableError> {
    let items = query_all(table, Query::new(shards::pk(channel, shard))).await?;
    let count = (shard == 0).then(|| shards::count_of(items.iter().find(|i| i.sk == shards::SHARDS)));
    Ok((items.iter().filter_map(Subscriber::from_item).collect(), count))
}

/// Every subscriber of a channel, from all its shards (for bounded uses: presence,
/// statistics; the fan-out reads shard by shard).
pub async fn subscribers(table: &dyn Table, channel: &Channel) -> Result<Vec<Subscriber>, TableError> {
    let ch = channel.to_string();
    let (mut all, count) = shard_subscribers(table, &ch, 0).await?;
    let rest: Vec<Result<ShardRead, TableError>> = futures::stream::iter(1..count.unwrap_or(1))
        .map(|n| shard_subscribers(table, &ch, n))
        .buffer_unordered(8)
        .collect()
        .await;
    for r in rest {
        all.extend(r?.0);
    }
    Ok(all)
}

/// Acknowledges a subscription with the channel's position: the `epoch` and the last
/// `seq` that a client resumes from.
pub async fn acknowledge(deps: &Deps, connection_id: &str, id: Option<String>, channel: &Channel) -> Result<(), ConnectionError> {
    let head = crate::log::head(deps.table.as_ref(), channel).await?;
    let ack = ServerFrame::Subscribed {
        id,
        channel: channel.to_string(),
        epoch: head.epoch,
        seq: head.seq,
    };
    reply(deps.pusher.as_ref(), connection_id, &ack).await
}

/// Sends one frame to one connection. A connection that is gone has nothing to answer.
pub async fn reply(pusher: &dyn ConnectionPusher, connection_id: &str, frame: &ServerFrame) -> Result<(), ConnectionError> {
    match pusher.post(connection_id, frame.to_json().as_bytes()).await {
        Ok(()) | Err(PushError::Gone) => Ok(()),
        Err(e) => Err(ConnectionError::Push(e)),
    }
}

/// What the connections context refuses: an expired token, a channel the user may not
/// follow, a connection that is gone, a push that failed, the table.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectionError {
    #[error("the connection's token has expired: reconnect with a new token")]
    Expired,
    #[error("not allowed to subscribe to {0}")]
    Forbidden(String),
    #[error("connection is gone")]
    Gone,
    #[error("{0} keeps no presence (chat:{{id}}, trip:{{id}} and drivers do)")]
    NoPresence(String),
    #[error("push failed: {0}")]
    Push(PushError),
    #[error(transparent)]
    Table(#[from] TableError),
}

impl ConnectionError {
    /// Whether the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            ConnectionError::Push(e) => e.is_retryable(),
            ConnectionError::Table(e) => e.is_retryable(),
            _ => false,
        }
    }
}

impl From<ConnectionError> for ApiError {
    fn from(e: ConnectionError) -> Self {
        match e {
            ConnectionError::Expired | ConnectionError::Gone => ApiError::Unauthorized(e.to_string()),
            ConnectionError::Forbidden(_) => ApiError::Forbidden(e.to_string()),
            ConnectionError::NoPresence(_) => ApiError::BadRequest(e.to_string()),
            ConnectionError::Push(p) => ApiError::Unavailable(p.to_string()),
            ConnectionError::Table(t) => t.into(),
        }
    }
}
