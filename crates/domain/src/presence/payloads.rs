//! The presence payloads and views: leaves (the event catalogue names them).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One member: a user, with how many of their connections are subscribed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub user_id: String,
    pub display_name: String,
    pub role: String,
    /// When their earliest connection still here opened.
    pub connected_at: DateTime<Utc>,
    pub connections: u32,
}

/// `presence.joined` / `presence.left`: who joined (or left) the channel since the last
/// announcement, all of them in one event, and the occupancy after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PresenceChanged {
    pub channel: String,
    pub members: Vec<Member>,
    pub occupancy: u32,
}

/// `channel.occupied` (its first member came) / `channel.vacated` (its last one left).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelLifecycle {
    pub channel: String,
    pub occupancy: u32,
}

/// A channel's presence as announced: its members (at most [`MAX_MEMBERS`]) and occupancy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Presence {
    pub channel: String,
    pub members: Vec<Member>,
    pub occupancy: u32,
}
