//! The functions the local stack can run: one table, by binary name (the crate name).
//! Each handler's kind (WebSocket, HTTP, bus event, authorizer, stream) follows from its
//! signature ([`realtime_edge::IntoHandler`]), so the table names no kinds and cannot
//! name a wrong one; the parity tests check it against `template.yaml`.

pub use realtime_edge::function::{Handler, Kind};
use realtime_edge::IntoHandler;

macro_rules! functions {
    ($($krate:ident),* $(,)?) => {
        /// Every function crate under `functions/`, by binary name.
        pub const FUNCTIONS: &[&str] = &[$(binary_name!($krate)),*];

        /// The handler of a function, by binary name, wrapped as its Lambda `main` wraps it.
        pub fn handler(binary: &str) -> Option<Handler> {
            $(if binary == binary_name!($krate) {
                return Some($krate::handle.into_handler());
            })*
            None
        }
    };
}

/// `ws_connect` → `"ws-connect"`: crate names are the binaries' names with `_` for `-`.
macro_rules! binary_name {
    ($krate:ident) => {
        const_str_replace!(stringify!($krate))
    };
}

/// `stringify!`'s text with every `_` made a `-`, at compile time.
macro_rules! const_str_replace {
    ($s:expr) => {{
        const S: &str = $s;
        const BYTES: [u8; S.len()] = {
            let mut b = [0u8; S.len()];
            let mut i = 0;
            while i < S.len() {
                b[i] = if S.as_bytes()[i] == b'_' { b'-' } else { S.as_bytes()[i] };
                i += 1;
            }
            b
        };
        match std::str::from_utf8(&BYTES) {
            Ok(s) => s,
            Err(_) => panic!("crate names are ASCII"),
        }
    }};
}

functions! {
    ws_connect,
    ws_disconnect,
    ws_subscribe,
    ws_unsubscribe,
    ws_ping,
    ws_resume,
    ws_default,
    ws_typing,
    ws_passenger_subscribe,
    ws_driver_subscribe,
    authorizer,
    chat_create,
    chat_join,
    chat_send_message,
    chat_history,
    chat_state,
    chat_typing,
    chat_complete,
    chat_settings,
    chat_analytics,
    chat_assistant,
    ext_analytics,
    fanout,
    fanout_worker,
    log_relay,
    trip_create,
    trip_get,
    trip_status_stream,
    booking_create,
    booking_cancel,
    driver_accept_trip,
    driver_update_status,
    events_stats,
    websocket_stats,
    websocket_health,
    ws_presence,
    channel_presence,
    presence_sweep,
}

/// Each listed function with its kind (from its handler's signature).
pub fn kinds() -> impl Iterator<Item = (&'static str, Kind)> {
    FUNCTIONS.iter().filter_map(|name| handler(name).map(|h| (*name, h.kind())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_function_has_a_handler() {
        assert_eq!(kinds().count(), FUNCTIONS.len());
        assert!(FUNCTIONS.contains(&"chat-send-message"));
        let kind = |n| kinds().find(|(b, _)| *b == n).map(|(_, k)| k);
        assert_eq!(kind("ws-connect"), Some(Kind::Ws));
        assert_eq!(kind("chat-send-message"), Some(Kind::Http));
        assert_eq!(kind("trip-status-stream"), Some(Kind::Stream));
        assert_eq!(kind("fanout"), Some(Kind::Event));
        assert_eq!(kind("log-relay"), Some(Kind::Event));
        assert_eq!(kind("authorizer"), Some(Kind::Authorizer));
    }
}
