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
    /// How old an unsent outbox entry must be before the sweeper republishes it
    /// (younger ones are most likely being published by their route right now).
    pub outbox_min_age_secs: i64,
    /// Posts in flight at once in one fan-out invocation.
    pub fanout_concurrency: usize,
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
            outbox_min_age_secs: num("OUTBOX_MIN_AGE_SECS", 5)? as i64,
            fanout_concurrency: num("FANOUT_CONCURRENCY", 64)?.max(1) as usize,
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
            outbox_min_age_secs: 5,
            fanout_concurrency: 64,
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
}
