//! Adapters of the ports: AWS ones (DynamoDB, EventBridge, API Gateway management)
//! and embedded ones (SQLite, the in-process bus, the local connection hub).

pub mod apigw;
pub mod aws;
pub mod bus;
pub mod dynamo;
pub mod eventbridge;
pub mod faults;
pub mod hub;
pub mod sqlite;
