//! Building AWS SDK configuration once per cold start.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};
use realtime_domain::config::ConfigError;

/// The SDK configuration of a function, from its environment. Lambda hands a function its
/// role's credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`)
/// and `AWS_REGION`, so the SDK's default provider chain (profiles, SSO, web identity
/// through STS, IMDS) is never used and is not linked: ~380 KB less in every bootstrap.
/// `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>` are honoured as the SDK does.
#[derive(Clone, Debug)]
pub struct FunctionSdk {
    config: SdkConfig,
    dynamodb: Option<String>,
    eventbridge: Option<String>,
    lambda: Option<String>,
}

impl FunctionSdk {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        let region = get("AWS_REGION")
            .or_else(|| get("AWS_DEFAULT_REGION"))
            .ok_or(ConfigError::Missing("AWS_REGION"))?;
        let key = get("AWS_ACCESS_KEY_ID").ok_or(ConfigError::Missing("AWS_ACCESS_KEY_ID"))?;
        let secret = get("AWS_SECRET_ACCESS_KEY").ok_or(ConfigError::Missing("AWS_SECRET_ACCESS_KEY"))?;
        let creds = Credentials::new(key, secret, get("AWS_SESSION_TOKEN"), None, "environment");
        let mut config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region))
            .credentials_provider(SharedCredentialsProvider::new(creds));
        config.set_endpoint_url(get("AWS_ENDPOINT_URL"));
        Ok(Self {
            config: config.build(),
            dynamodb: get("AWS_ENDPOINT_URL_DYNAMODB"),
            eventbridge: get("AWS_ENDPOINT_URL_EVENTBRIDGE"),
            lambda: get("AWS_ENDPOINT_URL_LAMBDA"),
        })
    }

    /// The shared configuration (region, credentials, the global endpoint).
    pub fn config(&self) -> &SdkConfig {
        &self.config
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        let mut conf = aws_sdk_dynamodb::config::Builder::from(&self.config);
        if let Some(url) = &self.dynamodb {
            conf = conf.endpoint_url(url);
        }
        aws_sdk_dynamodb::Client::from_conf(conf.build())
    }

    pub fn eventbridge(&self) -> aws_sdk_eventbridge::Client {
        let mut conf = aws_sdk_eventbridge::config::Builder::from(&self.config);
        if let Some(url) = &self.eventbridge {
            conf = conf.endpoint_url(url);
        }
        aws_sdk_eventbridge::Client::from_conf(conf.build())
    }

    pub fn lambda(&self) -> aws_sdk_lambda::Client {
        let mut conf = aws_sdk_lambda::config::Builder::from(&self.config);
        if let Some(url) = &self.lambda {
            conf = conf.endpoint_url(url);
        }
        aws_sdk_lambda::Client::from_conf(conf.build())
    }
}

/// A configuration for a local endpoint (DynamoDB Local, moto, the local stack):
/// fixed dummy credentials, `us-east-1`, every service at `endpoint`.
pub fn local_config(endpoint: &str) -> SdkConfig {
    let creds = Credentials::new("local", "local", None, None, "local");
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(creds))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn sdk(vars: &[(&str, &str)]) -> Result<FunctionSdk, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        FunctionSdk::from_lookup(|k| vars.get(k).cloned())
    }

    #[test]
    fn a_function_takes_lambda_s_credentials_region_and_endpoint_overrides() {
        let base = [
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ];
        let s = sdk(&base).unwrap();
        assert_eq!(s.config().region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert_eq!(s.config().endpoint_url(), None);
        assert_eq!(s.dynamodb, None);

        let mut vars = base.to_vec();
        vars.extend([
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000"),
        ]);
        let s = sdk(&vars).unwrap();
        assert_eq!(s.config().endpoint_url(), Some("http://127.0.0.1:1"));
        assert_eq!(s.dynamodb.as_deref(), Some("http://127.0.0.1:8000"));
        assert_eq!(s.eventbridge, None);

        assert!(matches!(sdk(&base[1..]), Err(ConfigError::Missing("AWS_REGION"))));
        assert!(matches!(sdk(&base[..2]), Err(ConfigError::Missing("AWS_SECRET_ACCESS_KEY"))));
        let default_region = [("AWS_DEFAULT_REGION", "us-west-2"), base[1], base[2]];
        assert_eq!(
            sdk(&default_region).unwrap().config().region().map(|r| r.as_ref()),
            Some("us-west-2")
        );
    }
}
