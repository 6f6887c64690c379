//! The real binaries behind the local stack: with `--functions-url`, every function of the
//! template (but the streaming one) runs as its own process behind the Lambda Invoke API,
//! e.g. `cargo lambda watch`, which serves every function of the workspace through the
//! Lambda Runtime API. The stack then only does what API Gateway and EventBridge do: it
//! builds each event, invokes the function by its binary name, and reads the answer.

use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use serde_json::Value;
use std::time::Duration;

/// How long one invocation may take. `cargo lambda watch` compiles a function on its
/// first invocation, which takes far longer than any answer.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(600);

pub struct Remote {
    base: String,
    http: Client<HttpConnector, Full<bytes::Bytes>>,
}

impl Remote {
    /// `base`: the Invoke API's address, e.g. `http://127.0.0.1:9000` (`cargo lambda watch`).
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http: Client::builder(hyper_util::rt::TokioExecutor::new()).build_http(),
        }
    }

    /// Invokes `function` (its binary name) with `payload`: its answer, or the message it
    /// failed with (`errorMessage`, as Lambda reports a function error).
    pub async fn invoke(&self, function: &str, payload: &Value) -> Result<Value, String> {
        let url = format!("{}/2015-03-31/functions/{function}/invocations", self.base);
        let req = http::Request::post(&url)
            .header("content-type", "application/json")
            .body(Full::new(bytes::Bytes::from(payload.to_string())))
            .map_err(|e| e.to_string())?;
        let resp = tokio::time::timeout(INVOKE_TIMEOUT, self.http.request(req))
            .await
            .map_err(|_| format!("{function}: no answer within {INVOKE_TIMEOUT:?}"))?
            .map_err(|e| format!("{function}: {e}"))?;
        let (status, function_error) = (resp.status(), resp.headers().contains_key("x-amz-function-error"));
        let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        let answer: Value = serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        let error_message = answer.get("errorMessage").and_then(Value::as_str);
        if !status.is_success() || function_error || (error_message.is_some() && answer.get("errorType").is_some()) {
            return Err(error_message.map_or_else(|| format!("{function}: {status} {answer}"), str::to_owned));
        }
        Ok(answer)
    }
}
