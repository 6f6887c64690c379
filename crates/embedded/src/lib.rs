//! The embedded adapters of the domain's ports, for the local stack and the tests: the
//! SQLite table, the in-process bus, the connection hub, and fault injection.
//! It must never import the AWS adapters or the edge.

pub mod bus;
pub mod faults;
pub mod hub;
pub mod invoke;
pub mod simulator;
pub mod sqlite;
pub mod testing;
