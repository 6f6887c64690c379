//! Helpers for the test suites in `tests/tests/`: they start the servers a test needs
//! (DynamoDB Local, moto, the local stack) on free loopback ports and stop them on drop.

pub mod dynamodb_local;
pub mod moto;
pub mod procs;
