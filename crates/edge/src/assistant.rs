//! The assistant's providers that leave the process: any OpenAI-compatible chat
//! completions API over HTTPS (hyper + rustls, the stack the AWS SDK uses), and the choice
//! of provider from the configuration. The domain (`realtime_domain::chat::assistant`)
//! holds the [`Provider`] port, the built-in provider and the answer to `chat.ai.requested`.

use async_trait::async_trait;
use realtime_domain::chat::assistant::{Builtin, Conversation, Provider, ProviderError};
use realtime_domain::chat::turns::ROLE_ASSISTANT;
use realtime_domain::config::{AssistantConfig, AssistantProvider as ProviderConfig, Secret};
use serde_json::{json, Value};
use std::time::Duration;

/// Any OpenAI-compatible chat completions API (`POST {base}/chat/completions`).
pub struct OpenAiCompatible {
    /// The process's client, or why there is none (no TLS roots): every reply then fails.
    pub client: Result<HttpClient, String>,
    pub base_url: String,
    pub model: String,
    pub api_key: Option<Secret>,
    pub system_prompt: String,
}

#[async_trait]
impl Provider for OpenAiCompatible {
    fn name(&self) -> &str {
        "openai"
    }
    fn model(&self) -> &str {
        &self.model
    }
    async fn reply(&self, c: &Conversation) -> Result<String, ProviderError> {
        let mut messages =
            vec![json!({"role": "system", "content": format!("{} The chat is called \"{}\".", self.system_prompt, c.chat_title)})];
        for m in &c.messages {
            let (role, content) = if m.role == ROLE_ASSISTANT {
                ("assistant", m.content.clone())
            } else {
                ("user", format!("{}: {}", m.name, m.content))
            };
            messages.push(json!({"role": role, "content": content}));
        }
        let body = json!({"model": self.model, "messages": messages}).to_string();
        let client = self.client.as_ref().map_err(|e| ProviderError::Failed(e.clone()))?;
        let (status, body) = client
            .post_json(&format!("{}/chat/completions", self.base_url), self.api_key.as_ref(), body)
            .await?;
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if !status.is_success() {
            let detail = body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect::<String>();
            return Err(ProviderError::Failed(format!("HTTP {status}: {detail}")));
        }
        body["choices"][0]["message"]["content"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ProviderError::Failed("no choices[0].message.content in the answer".into()))
    }
}

/// Answers larger than this are refused (a chat completion is a few KB).
const MAX_ANSWER_BYTES: usize = 1 << 20;

type Connector = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

/// A pooled HTTP/1.1 client for HTTPS (system roots, rustls on aws-lc-rs) and plain HTTP.
#[derive(Clone)]
pub struct HttpClient(hyper_util::client::legacy::Client<Connector, http_body_util::Full<bytes::Bytes>>);

impl HttpClient {
    fn new() -> Result<Self, String> {
        // The provider named, not the process default: a build where rustls has both
        // aws-lc-rs and ring (the tests, through reqwest) has no default.
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
            .map_err(|e| format!("no TLS root certificates: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self(
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https),
        ))
    }

    /// POSTs a JSON body; the answer's status and body.
    async fn post_json(&self, url: &str, bearer: Option<&Secret>, body: String) -> Result<(http::StatusCode, bytes::Bytes), ProviderError> {
        use http_body_util::BodyExt;
        let mut req = http::Request::post(url).header(http::header::CONTENT_TYPE, "application/json");
        if let Some(key) = bearer {
            req = req.header(http::header::AUTHORIZATION, format!("Bearer {}", key.expose()));
        }
        let req = req
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .map_err(|e| ProviderError::Failed(format!("bad provider URL: {e}")))?;
        let resp = self
            .0
            .request(req)
            .await
            .map_err(|e| ProviderError::Failed(format!("request failed: {}", causes(&e))))?;
        let status = resp.status();
        let body = http_body_util::Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| ProviderError::Failed(format!("reading the answer: {e}")))?
            .to_bytes();
        Ok((status, body))
    }
}

/// An error and its sources ("client error (Connect): invalid peer certificate: ..."):
/// hyper's own message alone does not say what went wrong.
fn causes(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// One HTTP client per process (it pools connections; providers are cheap to build).
fn http_client() -> Result<HttpClient, String> {
    static CLIENT: std::sync::OnceLock<Result<HttpClient, String>> = std::sync::OnceLock::new();
    CLIENT.get_or_init(HttpClient::new).clone()
}

/// The provider the configuration names.
pub fn provider(cfg: &AssistantConfig) -> Box<dyn Provider> {
    match &cfg.provider {
        ProviderConfig::Builtin => Box::new(Builtin {
            delay: Duration::from_millis(cfg.builtin_delay_ms),
        }),
        ProviderConfig::OpenAi { base_url, model, api_key } => Box::new(OpenAiCompatible {
            client: http_client(),
            base_url: base_url.clone(),
            model: model.clone(),
            api_key: api_key.clone(),
            system_prompt: cfg.system_prompt.clone(),
        }),
    }
}
