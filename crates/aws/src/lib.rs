//! The AWS adapters of the domain's ports (DynamoDB, EventBridge, the API Gateway
//! management API) and the dependencies a Lambda builds from its environment.
//! It must never import the embedded adapters or the edge.

pub mod apigw;
pub mod dynamo;
pub mod eventbridge;
pub mod invoke;
pub mod sdk;

use realtime_domain::config::{Config, ConfigError};
use realtime_domain::Deps;
use std::sync::Arc;

/// The AWS adapters, configured from the environment (`TABLE_NAME`, `EVENT_BUS_NAME`,
/// `WS_MANAGEMENT_ENDPOINT`, the credentials and region Lambda sets): built once per cold start.
pub async fn deps_from_env() -> Result<Deps, ConfigError> {
    let config = Config::from_env()?;
    let sdk = sdk::FunctionSdk::from_env()?;
    let table = dynamo::DynamoTable::new(sdk.dynamodb(), config.table_name.clone());
    let publisher = eventbridge::EventBridgePublisher::new(sdk.eventbridge(), config.event_bus_name.clone());
    // Functions that never push have no endpoint; a push from them fails clearly.
    let endpoint = config.ws_management_endpoint.clone().unwrap_or_else(|| "http://127.0.0.1:1".into());
    let pusher = apigw::ApiGatewayPusher::new(apigw::client_for(sdk.config(), &endpoint));
    Ok(Deps::new(Arc::new(table), Arc::new(publisher), Arc::new(pusher), config))
}
