//! Channels (`chat:{id}`, `trip:{id}`, `user:{id}`, `drivers`, `admin`) and the pure
//! mapping from an event to the channels it goes to.

use crate::events::Envelope;
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    Chat(String),
    Trip(String),
    User(String),
    Drivers,
    Admin,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid channel {0:?}: expected chat:{{id}}, trip:{{id}}, user:{{id}}, drivers or admin")]
pub struct ChannelError(pub String);

use crate::ids::valid_id;

impl FromStr for Channel {
    type Err = ChannelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ChannelError(s.chars().take(80).collect());
        match s.split_once(':') {
            None if s == "drivers" => Ok(Channel::Drivers),
            None if s == "admin" => Ok(Channel::Admin),
            Some((kind, id)) if valid_id(id) => match kind {
                "chat" => Ok(Channel::Chat(id.into())),
                "trip" => Ok(Channel::Trip(id.into())),
                "user" => Ok(Channel::User(id.into())),
                _ => Err(err()),
            },
            _ => Err(err()),
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Channel::Chat(id) => write!(f, "chat:{id}"),
            Channel::Trip(id) => write!(f, "trip:{id}"),
            Channel::User(id) => write!(f, "user:{id}"),
            Channel::Drivers => f.write_str("drivers"),
            Channel::Admin => f.write_str("admin"),
        }
    }
}

impl Channel {
    /// Whether events on this channel are sequenced and kept for replay. The admin
    /// stream is a live monitor: it carries every event but keeps no log. `drivers`
    /// carries every offer of the service: sequenced there, each would wait its turn on
    /// one item. Offers are logged on their trip's channel instead, pushed to `drivers`
    /// live, and a driver catches up with the open offers when subscribing
    /// ([`crate::trips::offer::open_offers`]).
    pub fn is_logged(&self) -> bool {
        !matches!(self, Channel::Admin | Channel::Drivers)
    }
}

/// The channels an event goes to. Pure: the same event always maps the same way.
pub fn channels_for(e: &Envelope) -> Vec<Channel> {
    let mut out = Vec::with_capacity(3);
    if let Some(id) = e.chat_id.as_deref().filter(|id| valid_id(id)) {
        out.push(Channel::Chat(id.into()));
    }
    if let Some(id) = e.trip_id.as_deref().filter(|id| valid_id(id)) {
        out.push(Channel::Trip(id.into()));
    }
    if let Some(id) = e.user_id.as_deref().filter(|id| valid_id(id)) {
        out.push(Channel::User(id.into()));
    }
    if e.event_type == "trip.offer.created" {
        out.push(Channel::Drivers);
    }
    out.push(Channel::Admin);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Cause, ConnectionChanged, Event, MessageStored};

    #[test]
    fn channels_parse_and_print() {
        for s in ["chat:C1", "trip:t-2", "user:u_3", "drivers", "admin"] {
            assert_eq!(s.parse::<Channel>().unwrap().to_string(), s);
        }
        for s in ["", "chat:", "chat", "room:1", "chat:a b", "chat:x#y", "drivers:1"] {
            assert!(s.parse::<Channel>().is_err(), "{s}");
        }
    }

    #[test]
    fn events_map_to_their_channels() {
        let msg = Event::MessageStored(MessageStored {
            id: "m".into(),
            chat_id: "C1".into(),
            sender_id: "u".into(),
            sender_role: "user".into(),
            content: "hi".into(),
            client_message_id: None,
            created_at: chrono::Utc::now(),
        });
        let e = Envelope::new(msg, &Cause::default());
        assert_eq!(channels_for(&e), vec![Channel::Chat("C1".into()), Channel::Admin]);
        let e = Envelope::new(
            Event::ConnectionOpened(ConnectionChanged {
                connection_id: "c".into(),
                user_id: "u".into(),
            }),
            &Cause::default(),
        );
        assert_eq!(channels_for(&e), vec![Channel::Admin]);
    }
}
