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
pub fn log(channel: &str) -> String {
    format!("LOG#{channel}")
}
pub const HEAD: &str = "HEAD";
pub fn log_seq(seq: u64) -> String {
    format!("SEQ#{seq:020}")
}
pub fn log_evt(event_id: &str) -> String {
    format!("EVT#{event_id}")
}
pub fn chat(chat_id: &str) -> String {
    format!("CHAT#{chat_id}")
}
pub fn member(user_id: &str) -> String {
    format!("MEMBER#{user_id}")
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
pub fn outbox(shard: u32) -> String {
    format!("OUTBOX#{shard}")
}
pub fn outbox_entry(occurred_at: &str, event_id: &str) -> String {
    format!("{occurred_at}#{event_id}")
}
