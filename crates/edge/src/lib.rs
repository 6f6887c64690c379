//! Where requests meet the domain: HTTP, WebSocket, response-stream and event inputs,
//! the one place errors become HTTP answers, statistics, the assistant's HTTP provider,
//! and the Lambda runners. Domain rules do not live here; it holds no SQL.

pub mod assistant;
pub mod function;
pub mod http;
pub mod lambda;
pub mod metrics;
pub mod stats;
pub mod stream;
pub mod streams;
pub mod telemetry;
pub mod ws;

pub use function::{BusEvent, Handler, IntoHandler, Kind};
