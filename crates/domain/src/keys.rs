//! The single-table key design (DESIGN.md §2), in one place.

pub fn conn(conn_id: &str) -> String {
    format!("CONN#{conn_id}")
}
pub const META: &str = "META";
pub fn sub(channel: &str) -> String {
    format!("SUB#{channel}")
}
pub fn chan(channel: &str) -> String {
    format!("CHAN#{channel}")
}
pub fn chan_conn(conn_id: &str) -> String {
    format!("CONN#{conn_id}")
}
/// A channel's announced presence (sort key [`STATE`]).
pub fn presence(channel: &str) -> String {
    format!("PRES#{channel}")
}
pub const STATE: &str = "STATE";
/// Presence wake-ups, by shard; sort keys `{dueMs:013}#{channel}`.
pub fn presence_due(shard: u32) -> String {
    format!("PRESDUE#{shard}")
}
pub fn log(channel: &str) -> String {
    format!("LOG#{channel}")
}
pub const HEAD: &str = "HEAD";
/// The sort key prefix of a log's entries.
pub const SEQ_PREFIX: &str = "SEQ#";
pub fn log_seq(seq: u64) -> String {
    format!("SEQ#{seq:020}")
}
pub fn log_evt(event_id: &str) -> String {
    format!("EVT#{event_id}")
}
pub fn chat(chat_id: &str) -> String {
    format!("CHAT#{chat_id}")
}
// ---- the chat session, under `CHAT#{id}` (`crate::chat::session`). Every session item's
// sort key starts with `S#`, which sorts after every message (`MSG#…`; "S" > "M"), and the
// idempotency markers (`CMID#…`) sort before the messages. So the newest end of the
// partition is the session, then the newest messages: one backward Query from the end
// reads both (participants, turn, typing, completion, settings and the recent messages)
// without paging through the history.
pub const SESSION_PREFIX: &str = "S#";
/// The chat itself: title, settings, member count.
pub const CHAT_META: &str = "S#META";
pub fn member(user_id: &str) -> String {
    format!("S#MEMBER#{user_id}")
}
pub const TURN: &str = "S#TURN";
pub fn typing(user_id: &str) -> String {
    format!("S#TYPING#{user_id}")
}
pub fn done(user_id: &str) -> String {
    format!("S#DONE#{user_id}")
}
/// How many participants have completed, and when all had (written once).
pub const COMPLETION: &str = "S#COMPLETION";
/// The analytics extension's rows for a chat (TTL'd retention), outside the session.
pub fn analytics(chat_id: &str) -> String {
    format!("ANALYTICS#{chat_id}")
}
pub const MSG_PREFIX: &str = "MSG#";
pub fn msg(created_at: &str, msg_id: &str) -> String {
    format!("MSG#{created_at}#{msg_id}")
}
pub fn client_msg(sender: &str, client_message_id: &str) -> String {
    format!("CMID#{sender}#{client_message_id}")
}
pub fn user(user_id: &str) -> String {
    format!("USER#{user_id}")
}

// ---- ride-sharing (`crate::trips`)
pub fn trip(trip_id: &str) -> String {
    format!("TRIP#{trip_id}")
}
pub const BOOKING_PREFIX: &str = "BOOKING#";
/// A booking under its trip (`TRIP#{id}`), and the pk of its id → trip pointer.
pub fn booking(booking_id: &str) -> String {
    format!("BOOKING#{booking_id}")
}
/// A passenger's seat count on a trip (under `TRIP#{id}`): who may follow the trip.
pub fn passenger(user_id: &str) -> String {
    format!("PASSENGER#{user_id}")
}
pub const STATUS_PREFIX: &str = "STATUS#";
pub fn trip_status(at: &str) -> String {
    format!("STATUS#{at}")
}
/// The open offers (a trip without a driver yet), spread over a few partitions; the
/// sort key is the trip id.
pub fn open_offers(shard: u32) -> String {
    format!("OFFER#{shard}")
}
/// The first answer to a request with an `Idempotency-Key`.
pub fn idem(scope: &str, key: &str) -> String {
    format!("IDEM#{scope}#{key}")
}
/// Emission counters, sharded so that no single item takes every fan-out's write.
pub fn stats(shard: u32) -> String {
    format!("STATS#{shard}")
}
/// The drivers on a trip (accepted, not yet COMPLETED or CANCELLED): one partition, one
/// item per busy driver (sort key: the driver id, attribute `tripId`), so the fan-out
/// reads the whole busy set with one Query per offer (`crate::trips::availability`).
pub const BUSY_DRIVERS: &str = "DRIVERS#BUSY";
