//! Embedded dependencies for tests and tools: in-memory table, a bus with no rules,
//! and a hub whose sockets a test reads directly.

use crate::adapters::bus::EmbeddedBus;
use crate::adapters::hub::Hub;
use crate::adapters::sqlite::SqliteTable;
use crate::config::Config;
use crate::deps::Deps;
use std::sync::Arc;

/// The JWT secret the event fixtures under `tests/fixtures/` are signed with.
pub const FIXTURE_SECRET: &str = "local-dev-secret-change-me-0123456789";

pub struct Embedded {
    pub deps: Deps,
    pub hub: Arc<Hub>,
    pub bus: Arc<EmbeddedBus>,
}

pub fn embedded(jwt_secret: &str) -> Embedded {
    let hub = Arc::new(Hub::new());
    let bus = Arc::new(EmbeddedBus::new(Vec::new()).unwrap_or_else(|_| unreachable!("no rules, no invalid pattern")));
    let deps = Deps::new(
        Arc::new(SqliteTable::in_memory()),
        bus.clone(),
        hub.clone(),
        Config::local(jwt_secret),
    );
    Embedded { deps, hub, bus }
}
