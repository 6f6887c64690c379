//! Building AWS SDK configuration once per cold start.

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// The SDK configuration from the environment (credentials, region, and the
/// `AWS_ENDPOINT_URL_<SERVICE>` overrides the SDK honours).
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// A configuration for a local endpoint (DynamoDB Local, moto, the local stack):
/// fixed dummy credentials, `us-east-1`, every service at `endpoint`.
pub fn local_config(endpoint: &str) -> SdkConfig {
    let creds = aws_sdk_dynamodb::config::Credentials::new("local", "local", None, None, "local");
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(creds))
        .build()
}
