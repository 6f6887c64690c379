//! Configuration from the environment, parsed once per cold start.

use std::fmt;

/// A secret that never prints (tokens and keys must not reach logs).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
    pub event_bus_name: String,
    /// The API Gateway management endpoint (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`).
    pub ws_management_endpoint: Option<String>,
    pub jwt_secret: Secret,
    /// How long a channel's log keeps events for replay (`LOG_RETENTION_HOURS`).
    pub log_retention_secs: i64,
    /// Posts in flight at once in one fan-out invocation.
    pub fanout_concurrency: usize,
    /// Posts a second that one event's fan-out may make, over all its shards
    /// (`FANOUT_POST_BUDGET`, 5,000: half the account's 10,000/s API Gateway budget, which
    /// every API and every post share).
    pub post_budget: f64,
    /// How long one fan-out (each shard) keeps posting; what is left is left to `resume`
    /// and counted (`FANOUT_DEADLINE_SECS`, 25: under the fan-out's 30 s timeout).
    pub fanout_deadline_secs: u64,
    /// The fan-out worker function a sharded channel's shards go to
    /// (`FANOUT_WORKER_FUNCTION`; without it one invocation posts every shard).
    pub fanout_worker_function: Option<String>,
    /// The trip-status stream (SSE): a `heartbeat` this often (`SSE_HEARTBEAT_MS`, 15 s)...
    pub sse_heartbeat_ms: u64,
    /// ...the channel log polled this often for new events (`SSE_POLL_MS`, 1 s)...
    pub sse_poll_ms: u64,
    /// ...and the stream ended after this long, before Lambda's timeout ends it (the client
    /// reconnects with `Last-Event-ID`; `SSE_MAX_SECS`, 14 minutes).
    pub sse_max_secs: u64,
    /// How long a member whose last connection went stays listed before `presence.left`
    /// (`PRESENCE_GRACE_SECS`, 15 s): a reconnect within it announces nothing.
    pub presence_grace_secs: i64,
    /// How long one run of the presence sweeper looks for wake-ups (None: its default,
    /// 55 s; the local stack's tests shorten it).
    pub presence_sweep: Option<std::time::Duration>,
    /// The chat domain: typing, the assistant, extensions (`crate::chat`).
    pub chat: ChatConfig,
}

/// API Gateway closes a WebSocket after 2 hours; connection items live a little longer.
pub const CONNECTION_TTL_SECS: i64 = 2 * 3600 + 600;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

impl Config {
    /// Reads the environment; fails fast with a message naming the variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let req = |k: &'static str| get(k).filter(|v| !v.is_empty()).ok_or(ConfigError::Missing(k));
        let num = |k: &'static str, default: u64| -> Result<u64, ConfigError> {
            match get(k).filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(v) => v.parse().map_err(|e: std::num::ParseIntError| ConfigError::Invalid {
                    name: k,
                    reason: e.to_string(),
                }),
            }
        };
        let jwt_secret = req("JWT_SECRET")?;
        if jwt_secret.len() < 16 {
            return Err(ConfigError::Invalid {
                name: "JWT_SECRET",
                reason: "must be at least 16 bytes".into(),
            });
        }
        Ok(Self {
            table_name: req("TABLE_NAME")?,
            event_bus_name: get("EVENT_BUS_NAME").unwrap_or_else(|| "default".into()),
            ws_management_endpoint: get("WS_MANAGEMENT_ENDPOINT").filter(|v| !v.is_empty()),
            jwt_secret: Secret::new(jwt_secret),
            log_retention_secs: num("LOG_RETENTION_HOURS", 24)? as i64 * 3600,
            fanout_concurrency: num("FANOUT_CONCURRENCY", 64)?.max(1) as usize,
            post_budget: num("FANOUT_POST_BUDGET", 5_000)?.max(1) as f64,
            fanout_deadline_secs: num("FANOUT_DEADLINE_SECS", 25)?.max(1),
            fanout_worker_function: get("FANOUT_WORKER_FUNCTION").filter(|v| !v.is_empty()),
            sse_heartbeat_ms: num("SSE_HEARTBEAT_MS", 15_000)?.max(10),
            sse_poll_ms: num("SSE_POLL_MS", 1_000)?.max(10),
            sse_max_secs: num("SSE_MAX_SECS", 14 * 60)?.max(1),
            presence_grace_secs: num("PRESENCE_GRACE_SECS", 15)?.min(45) as i64,
            presence_sweep: None,
            chat: ChatConfig::from_lookup(&get)?,
        })
    }

    /// The configuration of the local stack and of tests.
    pub fn local(jwt_secret: &str) -> Self {
        Self {
            table_name: "realtime".into(),
            event_bus_name: "realtime-events".into(),
            ws_management_endpoint: None,
            jwt_secret: Secret::new(jwt_secret),
            log_retention_secs: 24 * 3600,
            fanout_concurrency: 64,
            // The local stack's hub is no API Gateway: no budget unless one is asked for.
            post_budget: 1_000_000.0,
            fanout_deadline_secs: 25,
            fanout_worker_function: None,
            sse_heartbeat_ms: 15_000,
            sse_poll_ms: 1_000,
            sse_max_secs: 14 * 60,
            presence_grace_secs: 15,
            presence_sweep: None,
            chat: ChatConfig::local(),
        }
    }
}

/// The chat domain's configuration.
#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// How long a typing indicator lives unless refreshed (`TYPING_TTL_SECS`, 5).
    pub typing_ttl_secs: i64,
    /// How long the analytics extension keeps its rows (`ANALYTICS_RETENTION_DAYS`, 30).
    pub analytics_retention_secs: i64,
    /// Terms the moderation extension refuses in every chat that enables it, besides the
    /// chat's own blocklist (`MODERATION_BLOCKLIST`, comma-separated, case-insensitive).
    pub moderation_blocklist: Vec<String>,
    pub assistant: AssistantConfig,
}

/// Which provider writes the assistant's replies (`ASSISTANT_PROVIDER`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssistantProvider {
    /// `builtin` (the default): deterministic and offline.
    Builtin,
    /// `openai`: any OpenAI-compatible `POST {base_url}/chat/completions`
    /// (`ASSISTANT_BASE_URL`, `ASSISTANT_MODEL`, `ASSISTANT_API_KEY`).
    OpenAi {
        base_url: String,
        model: String,
        api_key: Option<Secret>,
    },
}

#[derive(Debug, Clone)]
pub struct AssistantConfig {
    pub provider: AssistantProvider,
    /// The assistant's display name (`ASSISTANT_NAME`, "Assistant").
    pub name: String,
    /// How long a provider may take before the request fails (`ASSISTANT_TIMEOUT_SECS`, 25).
    pub timeout_secs: u64,
    /// The built-in provider's thinking time, so its typing indicator shows (`ASSISTANT_BUILTIN_DELAY_MS`, 250).
    pub builtin_delay_ms: u64,
    /// The system prompt of the HTTP provider (`ASSISTANT_SYSTEM_PROMPT`).
    pub system_prompt: String,
    /// How many recent messages the provider sees (`ASSISTANT_CONTEXT_MESSAGES`, 20, at most 50).
    pub context_messages: u32,
}

pub const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
const DEFAULT_SYSTEM_PROMPT: &str = "You are a helpful assistant taking part in a group chat. Answer the last message briefly and kindly.";

impl AssistantConfig {
    /// A user's turn waits at most this long for the assistant (a lost or stuck request
    /// never blocks a chat): the provider's timeout plus a margin.
    pub fn turn_timeout_secs(&self) -> i64 {
        self.timeout_secs as i64 + 30
    }
}

impl ChatConfig {
    /// The chat variables alone (the local stack reads them: its other settings are flags).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&|k: &str| std::env::var(k).ok())
    }

    fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let num = |k: &'static str, default: u64, range: std::ops::RangeInclusive<u64>| -> Result<u64, ConfigError> {
            let n = match get(k) {
                None => default,
                Some(v) => v.parse().map_err(|e: std::num::ParseIntError| ConfigError::Invalid {
                    name: k,
                    reason: e.to_string(),
                })?,
            };
            if range.contains(&n) {
                Ok(n)
            } else {
                Err(ConfigError::Invalid {
                    name: k,
                    reason: format!("must be between {} and {}", range.start(), range.end()),
                })
            }
        };
        let provider = match get("ASSISTANT_PROVIDER").as_deref().unwrap_or("builtin") {
            "builtin" => AssistantProvider::Builtin,
            "openai" => {
                let explicit_url = get("ASSISTANT_BASE_URL");
                let base_url = explicit_url.clone().unwrap_or_else(|| DEFAULT_OPENAI_BASE_URL.into());
                if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
                    return Err(ConfigError::Invalid {
                        name: "ASSISTANT_BASE_URL",
                        reason: "must be an http:// or https:// URL".into(),
                    });
                }
                let api_key = get("ASSISTANT_API_KEY").map(Secret::new);
                // OpenAI itself needs a key; a self-hosted compatible server may not.
                if api_key.is_none() && explicit_url.is_none() {
                    return Err(ConfigError::Missing("ASSISTANT_API_KEY"));
                }
                AssistantProvider::OpenAi {
                    base_url: base_url.trim_end_matches('/').to_string(),
                    model: get("ASSISTANT_MODEL").unwrap_or_else(|| "gpt-4o-mini".into()),
                    api_key,
                }
            }
            other => {
                return Err(ConfigError::Invalid {
                    name: "ASSISTANT_PROVIDER",
                    reason: format!("{other:?} is neither builtin nor openai"),
                })
            }
        };
        let defaults = Self::local();
        Ok(Self {
            typing_ttl_secs: num("TYPING_TTL_SECS", 5, 1..=300)? as i64,
            analytics_retention_secs: num("ANALYTICS_RETENTION_DAYS", 30, 1..=3650)? as i64 * 86_400,
            moderation_blocklist: get("MODERATION_BLOCKLIST")
                .map(|v| crate::chat::moderation::normalize_terms(v.split(',')))
                .transpose()
                .map_err(|reason| ConfigError::Invalid {
                    name: "MODERATION_BLOCKLIST",
                    reason,
                })?
                .unwrap_or_default(),
            assistant: AssistantConfig {
                provider,
                name: get("ASSISTANT_NAME").unwrap_or(defaults.assistant.name),
                timeout_secs: num("ASSISTANT_TIMEOUT_SECS", 25, 1..=600)?,
                builtin_delay_ms: num("ASSISTANT_BUILTIN_DELAY_MS", 250, 0..=10_000)?,
                system_prompt: get("ASSISTANT_SYSTEM_PROMPT").unwrap_or(defaults.assistant.system_prompt),
                context_messages: num("ASSISTANT_CONTEXT_MESSAGES", 20, 1..=50)? as u32,
            },
        })
    }

    /// The local stack's and the tests' chat configuration: the built-in assistant.
    pub fn local() -> Self {
        Self {
            typing_ttl_secs: 5,
            analytics_retention_secs: 30 * 86_400,
            moderation_blocklist: Vec::new(),
            assistant: AssistantConfig {
                provider: AssistantProvider::Builtin,
                name: "Assistant".into(),
                timeout_secs: 25,
                builtin_delay_ms: 250,
                system_prompt: DEFAULT_SYSTEM_PROMPT.into(),
                context_messages: 20,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_invalid_variables_are_named() {
        let env =
            |pairs: &'static [(&'static str, &'static str)]| move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
        let err = Config::from_lookup(env(&[("JWT_SECRET", "0123456789abcdef0123")])).unwrap_err();
        assert!(err.to_string().contains("TABLE_NAME"));
        let err = Config::from_lookup(env(&[
            ("JWT_SECRET", "0123456789abcdef"),
            ("TABLE_NAME", "t"),
            ("LOG_RETENTION_HOURS", "x"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("LOG_RETENTION_HOURS"));
        let ok = Config::from_lookup(env(&[("JWT_SECRET", "0123456789abcdef"), ("TABLE_NAME", "t")])).unwrap();
        assert_eq!(ok.log_retention_secs, 24 * 3600);
        assert!(!format!("{ok:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn chat_variables_are_parsed_with_clear_errors() {
        let base = [("JWT_SECRET", "0123456789abcdef"), ("TABLE_NAME", "t")];
        let with = |extra: &[(&'static str, &'static str)]| {
            let pairs: Vec<(&str, &str)> = base.iter().chain(extra).copied().collect();
            Config::from_lookup(move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
        };
        let c = with(&[]).unwrap().chat;
        assert_eq!((c.typing_ttl_secs, c.assistant.provider.clone()), (5, AssistantProvider::Builtin));
        let err = |extra| with(extra).unwrap_err().to_string();
        assert!(err(&[("ASSISTANT_PROVIDER", "magic")]).contains("ASSISTANT_PROVIDER"));
        assert!(err(&[("ASSISTANT_PROVIDER", "openai")]).contains("ASSISTANT_API_KEY"));
        assert!(err(&[("TYPING_TTL_SECS", "0")]).contains("TYPING_TTL_SECS"));
        assert!(err(&[("ASSISTANT_PROVIDER", "openai"), ("ASSISTANT_BASE_URL", "ftp://x")]).contains("ASSISTANT_BASE_URL"));
        let c = with(&[
            ("ASSISTANT_PROVIDER", "openai"),
            ("ASSISTANT_API_KEY", "sk-very-secret"),
            ("ASSISTANT_MODEL", "m1"),
            ("MODERATION_BLOCKLIST", " Spam , eggs ,,"),
        ])
        .unwrap()
        .chat;
        assert_eq!(c.moderation_blocklist, vec!["spam", "eggs"]);
        let AssistantProvider::OpenAi { base_url, model, api_key } = &c.assistant.provider else {
            panic!("not openai")
        };
        assert_eq!((base_url.as_str(), model.as_str()), (DEFAULT_OPENAI_BASE_URL, "m1"));
        assert_eq!(api_key.as_ref().map(Secret::expose), Some("sk-very-secret"));
        assert!(!format!("{c:?}").contains("sk-very-secret"));
    }
}
