//! The domain: events and channels, the chat and trips contexts, connections, the channel
//! log, the outbox, the fan-out, and the ports (traits) they reach the world through.
//! It must never import an adapter: no AWS SDK, no SQLite, no HTTP framework, no Lambda.

pub mod auth;
pub mod budget;
pub mod channels;
pub mod chat;
pub mod config;
pub mod connections;
pub mod deps;
pub mod error;
pub mod events;
pub mod fanout;
pub mod frames;
pub mod idempotency;
pub mod ids;
pub mod keys;
pub mod log;
pub mod outbox;
pub mod ports;
pub mod presence;
pub mod ratelimit;
pub mod resume;
pub mod retry;
pub mod shards;
pub mod tail;
pub mod trips;

pub use deps::Deps;
pub use error::ApiError;
