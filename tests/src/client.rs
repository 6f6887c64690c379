//! The clients the tests drive the system with: the `realtime-client` crate.

pub use realtime_client::*;
