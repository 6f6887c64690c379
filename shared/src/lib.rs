//! Everything the functions and the local stack share: the domain (events, channels,
//! chat rules, connections, fan-out), the ports and their adapters, config, auth,
//! telemetry and the one place where errors become HTTP answers.

pub mod adapters;
pub mod auth;
pub mod channels;
pub mod chat;
pub mod config;
pub mod connections;
pub mod deps;
pub mod error;
pub mod events;
pub mod fanout;
pub mod frames;
pub mod http;
pub mod idempotency;
pub mod keys;
pub mod lambda;
pub mod log;
pub mod metrics;
pub mod outbox;
pub mod ports;
pub mod ratelimit;
pub mod resume;
pub mod retry;
pub mod stats;
pub mod stream;
pub mod streams;
pub mod telemetry;
pub mod testing;
pub mod trips;
pub mod ws;

pub use deps::Deps;
pub use error::ApiError;
