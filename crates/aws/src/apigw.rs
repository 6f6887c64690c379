//! The AWS `ConnectionPusher`: the API Gateway management API (`@connections`).
//!
//! `GoneException` (410) means the connection is stale: `PushError::Gone`, and the
//! caller deletes *that* connection. `LimitExceededException` / 429 / throttling, and
//! transient failures (5xx, network), are retried here with jittered exponential
//! backoff; still throttled after the attempts is `PushError::Throttled`. The client
//! made by [`client_for`] has the SDK's own retries turned off, so these are the only
//! retries (a client with SDK retries on would multiply the attempts).

use super::eventbridge::{is_transient_code, is_transient_status, Backoff};
use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::config::http::HttpResponse;
use aws_sdk_apigatewaymanagement::config::retry::RetryConfig;
use aws_sdk_apigatewaymanagement::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_apigatewaymanagement::operation::{
    delete_connection::DeleteConnectionError, get_connection::GetConnectionError, post_to_connection::PostToConnectionError,
};
use aws_sdk_apigatewaymanagement::primitives::Blob;
use chrono::{DateTime, Utc};
use realtime_domain::ports::{ConnectionInfo, ConnectionPusher, PushError};
use std::future::Future;
use std::time::Duration;

/// The management API client for `endpoint` (in Lambda `WS_MANAGEMENT_ENDPOINT`,
/// `https://{api}.execute-api.{region}.amazonaws.com/{stage}`; locally the local
/// stack's URL), with the SDK's retries off: [`ApiGatewayPusher`] retries itself.
pub fn client_for(config: &aws_config::SdkConfig, endpoint: &str) -> aws_sdk_apigatewaymanagement::Client {
    let conf = aws_sdk_apigatewaymanagement::config::Builder::from(config)
        .endpoint_url(endpoint)
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_apigatewaymanagement::Client::from_conf(conf)
}

pub struct ApiGatewayPusher {
    client: aws_sdk_apigatewaymanagement::Client,
    backoff: Backoff,
}

impl ApiGatewayPusher {
    /// 4 attempts, 25 ms base.
    pub const DEFAULT_BACKOFF: Backoff = Backoff::new(4, Duration::from_millis(25));

    pub fn new(client: aws_sdk_apigatewaymanagement::Client) -> Self {
        Self {
            client,
            backoff: Self::DEFAULT_BACKOFF,
        }
    }

    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Runs `op` until it succeeds, fails for good, or the attempts are used up.
    async fn with_retries<T, E, F, Fut>(&self, what: &str, connection_id: &str, mut op: F) -> Result<T, PushError>
    where
        E: ManagementError,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    {
        let attempts = self.backoff.attempts.max(1);
        let mut attempt = 0;
        loop {
            let failure = match op().await {
                Ok(v) => return Ok(v),
                Err(e) => classify(&e),
            };
            attempt += 1;
            // What to answer if this was the last attempt (Gone and Other answer now).
            let give_up = match failure {
                Failure::Gone => return Err(PushError::Gone),
                Failure::Other(reason) => return Err(PushError::Other(format!("{what}: {reason}"))),
                Failure::Throttled(_) => PushError::Throttled,
                Failure::Transient(reason) => PushError::Other(format!("{what}: {reason}")),
            };
            if attempt >= attempts {
                tracing::warn!(what, connection_id, attempt, error = %give_up, "management API: giving up");
                return Err(give_up);
            }
            tracing::debug!(
                what,
                connection_id,
                attempt,
                "management API: throttled or transient failure; retrying"
            );
            tokio::time::sleep(self.backoff.delay(attempt - 1)).await;
        }
    }
}

#[async_trait]
impl ConnectionPusher for ApiGatewayPusher {
    async fn post(&self, connection_id: &str, data: &[u8]) -> Result<(), PushError> {
        self.with_retries("PostToConnection", connection_id, || {
            self.client
                .post_to_connection()
                .connection_id(connection_id)
                .data(Blob::new(data.to_vec()))
                .send()
        })
        .await
        .map(|_| ())
    }

    async fn close(&self, connection_id: &str) -> Result<(), PushError> {
        self.with_retries("DeleteConnection", connection_id, || {
            self.client.delete_connection().connection_id(connection_id).send()
        })
        .await
        .map(|_| ())
    }

    async fn info(&self, connection_id: &str) -> Result<ConnectionInfo, PushError> {
        let out = self
            .with_retries("GetConnection", connection_id, || {
                self.client.get_connection().connection_id(connection_id).send()
            })
            .await?;
        let time = |t: Option<&aws_smithy_types::DateTime>, name: &str| {
            t.and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos()))
                .ok_or_else(|| PushError::Other(format!("GetConnection: no {name} in the answer")))
        };
        let connected_at = time(out.connected_at(), "connectedAt")?;
        // API Gateway always sends both; a missing `lastActiveAt` reads as "never since".
        let last_active_at = time(out.last_active_at(), "lastActiveAt").unwrap_or(connected_at);
        let source_ip = out.identity().and_then(|i| i.source_ip()).map(str::to_string);
        let user_agent = out.identity().and_then(|i| i.user_agent()).map(str::to_string);
        Ok(ConnectionInfo {
            connected_at,
            last_active_at,
            source_ip,
            user_agent,
        })
    }
}

/// The typed errors of the three operations, seen the same way.
trait ManagementError: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static {
    fn is_gone(&self) -> bool;
    fn is_limit_exceeded(&self) -> bool;
}

macro_rules! management_error {
    ($t:ty) => {
        impl ManagementError for $t {
            fn is_gone(&self) -> bool {
                self.is_gone_exception()
            }
            fn is_limit_exceeded(&self) -> bool {
                self.is_limit_exceeded_exception()
            }
        }
    };
}
management_error!(PostToConnectionError);
management_error!(DeleteConnectionError);
management_error!(GetConnectionError);

#[derive(Debug, PartialEq, Eq)]
enum Failure {
    Gone,
    Throttled(String),
    Transient(String),
    Other(String),
}

/// The SDK's typed `GoneException` / `LimitExceededException` first (API Gateway sends
/// `x-amzn-ErrorType`), the HTTP status (410, 429, 5xx) when the code is missing.
fn classify<E: ManagementError>(err: &SdkError<E, HttpResponse>) -> Failure {
    let reason = DisplayErrorContext(err).to_string();
    match err {
        SdkError::ServiceError(se) => {
            let (e, status) = (se.err(), se.raw().status().as_u16());
            if e.is_gone() || status == 410 {
                Failure::Gone
            } else if e.is_limit_exceeded() || status == 429 || (e.code().is_some_and(is_transient_code) && status < 500) {
                Failure::Throttled(reason)
            } else if is_transient_status(status) || e.code().is_some_and(is_transient_code) {
                Failure::Transient(reason)
            } else {
                Failure::Other(reason)
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => Failure::Transient(reason),
        _ => Failure::Other(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_apigatewaymanagement::error::ErrorMetadata;
    use aws_sdk_apigatewaymanagement::types::error::{GoneException, LimitExceededException};

    fn failure(e: PostToConnectionError, status: u16) -> Failure {
        let raw = http::Response::builder()
            .status(status)
            .body(aws_smithy_types::body::SdkBody::empty())
            .unwrap();
        classify(&SdkError::service_error(e, HttpResponse::try_from(raw).unwrap()))
    }

    fn generic(code: Option<&str>) -> PostToConnectionError {
        let mut meta = ErrorMetadata::builder();
        if let Some(code) = code {
            meta = meta.code(code);
        }
        PostToConnectionError::generic(meta.build())
    }

    #[test]
    fn typed_errors_and_bare_statuses_are_classified() {
        assert_eq!(
            failure(PostToConnectionError::GoneException(GoneException::builder().build()), 410),
            Failure::Gone
        );
        assert_eq!(failure(generic(None), 410), Failure::Gone);
        let limit = PostToConnectionError::LimitExceededException(LimitExceededException::builder().build());
        assert!(matches!(failure(limit, 429), Failure::Throttled(_)));
        assert!(matches!(failure(generic(None), 429), Failure::Throttled(_)));
        assert!(matches!(failure(generic(Some("ThrottlingException")), 400), Failure::Throttled(_)));
        assert!(matches!(failure(generic(None), 503), Failure::Transient(_)));
        assert!(matches!(failure(generic(Some("ForbiddenException")), 403), Failure::Other(_)));
    }
}
