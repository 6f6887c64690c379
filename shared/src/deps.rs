//! What a handler needs, built once per cold start (Lambda) or once per process
//! (the local stack) and cloned cheaply into every invocation.

use crate::config::Config;
use crate::ports::{ConnectionPusher, EventPublisher, Table};
use std::sync::Arc;

#[derive(Clone)]
pub struct Deps {
    pub table: Arc<dyn Table>,
    pub publisher: Arc<dyn EventPublisher>,
    pub pusher: Arc<dyn ConnectionPusher>,
    pub config: Arc<Config>,
}

impl Deps {
    pub fn new(table: Arc<dyn Table>, publisher: Arc<dyn EventPublisher>, pusher: Arc<dyn ConnectionPusher>, config: Config) -> Self {
        Self {
            table,
            publisher,
            pusher,
            config: Arc::new(config),
        }
    }

    /// The AWS adapters, configured from the environment (`TABLE_NAME`,
    /// `EVENT_BUS_NAME`, `WS_MANAGEMENT_ENDPOINT`, the SDK's own variables).
    pub async fn aws_from_env() -> Result<Self, crate::config::ConfigError> {
        use crate::adapters::{apigw, dynamo::DynamoTable, eventbridge::EventBridgePublisher};
        let config = Config::from_env()?;
        let sdk = crate::adapters::aws::sdk_config().await;
        let table = DynamoTable::new(aws_sdk_dynamodb::Client::new(&sdk), config.table_name.clone());
        let publisher = EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&sdk), config.event_bus_name.clone());
        // Functions that never push have no endpoint; a push from them fails clearly.
        let endpoint = config.ws_management_endpoint.clone().unwrap_or_else(|| "http://127.0.0.1:1".into());
        let pusher = apigw::ApiGatewayPusher::new(apigw::client_for(&sdk, &endpoint));
        Ok(Self::new(Arc::new(table), Arc::new(publisher), Arc::new(pusher), config))
    }
}
