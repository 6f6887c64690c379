//! Everything the functions and the local stack share: the domain (events, channels,
//! chat rules, connections, fan-out), the ports and their adapters, config, auth,
//! telemetry and the one place where errors become HTTP answers.

pub mod adapters;
pub mod chat;
pub mod events;
pub mod ports;
