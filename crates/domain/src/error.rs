//! The errors a client can see, and the one place they become HTTP statuses.

use crate::ports::TableError;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("invalid JSON body: {0}")]
    InvalidJson(String),
    #[error("{0}")]
    UnknownAction(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// A state conflict with a specific code (`not_your_turn`, `not_enough_seats`, ...).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// Well-formed but refused by a rule with a specific code (`message_rejected`: moderation).
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    #[error("body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("too many requests")]
    RateLimited,
    /// A dependency is briefly unavailable (throttled, conflicting); retrying may help.
    #[error("service busy, retry: {0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) | ApiError::InvalidJson(_) | ApiError::UnknownAction(_) => 400,
            ApiError::Unauthorized(_) => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::NotFound(_) => 404,
            ApiError::Conflict { .. } => 409,
            ApiError::Unprocessable { .. } => 422,
            ApiError::PayloadTooLarge { .. } => 413,
            ApiError::RateLimited => 429,
            ApiError::Internal(_) => 500,
            ApiError::Unavailable(_) => 503,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::UnknownAction(_) => "unknown_action",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict { code, .. } | ApiError::Unprocessable { code, .. } => code,
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::RateLimited => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// `{"error": {"code", "message"}}`; internal details stay in the logs.
    pub fn body(&self) -> serde_json::Value {
        json!({"error": {"code": self.code(), "message": self.to_string()}})
    }

    /// Whether the same request may succeed later: the service was busy or failed, not
    /// the request. Event functions hand these back to Lambda for a retry.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ApiError::Unavailable(_) | ApiError::Internal(_))
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Conflict {
            code,
            message: message.into(),
        }
    }
}

/// A field a request cannot have; each context turns it into its own refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidField(pub String);

impl From<InvalidField> for ApiError {
    fn from(e: InvalidField) -> Self {
        ApiError::BadRequest(e.0)
    }
}

/// What every context's error has (`Invalid`, `NotFound`, `Forbidden`, `Conflict`, `Busy`
/// and `Table` variants): the conflict constructor, whether a retry may help, a bad field as
/// `Invalid`, and the API's answer (the context's own variants' answers given as `extra` arms).
macro_rules! context_error {
    ($t:ident { $($extra:pat => $answer:expr),* $(,)? }) => {
        impl $t {
            pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
                $t::Conflict {
                    code,
                    message: message.into(),
                }
            }

            /// Whether the same request may succeed later.
            pub fn is_retryable(&self) -> bool {
                match self {
                    $t::Busy(_) => true,
                    $t::Table(e) => e.is_retryable(),
                    _ => false,
                }
            }
        }

        impl From<$crate::error::InvalidField> for $t {
            fn from(e: $crate::error::InvalidField) -> Self {
                $t::Invalid(e.0)
            }
        }

        impl From<$t> for $crate::error::ApiError {
            fn from(e: $t) -> Self {
                use $crate::error::ApiError;
                match e {
                    $t::Invalid(m) => ApiError::BadRequest(m),
                    $t::NotFound(m) => ApiError::NotFound(m),
                    $t::Forbidden(m) => ApiError::Forbidden(m),
                    $t::Conflict { code, message } => ApiError::Conflict { code, message },
                    $t::Busy(m) => ApiError::Unavailable(m),
                    $t::Table(e) => e.into(),
                    $($extra => $answer,)*
                }
            }
        }
    };
}
pub(crate) use context_error;

/// A text field: trimmed, non-empty, at most `max` characters.
pub fn text(field: &str, value: &str, max: usize) -> Result<String, InvalidField> {
    let v = value.trim();
    if v.is_empty() {
        return Err(InvalidField(format!("{field} must not be empty")));
    }
    if v.chars().count() > max {
        return Err(InvalidField(format!("{field} must be at most {max} characters")));
    }
    Ok(v.to_string())
}

impl ApiError {
    /// Logs a refusal once, the same way everywhere: 5xx with their detail (never sent
    /// to the client), 4xx as a plain refusal.
    pub fn log(&self, what: &str) {
        match self {
            ApiError::Internal(detail) | ApiError::Unavailable(detail) => tracing::error!(status = self.status(), %detail, "{what} failed"),
            _ => tracing::info!(status = self.status(), code = self.code(), "{what} refused"),
        }
    }
}

impl From<TableError> for ApiError {
    fn from(e: TableError) -> Self {
        match e {
            TableError::Transient(m) => ApiError::Unavailable(m),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_status_and_code_in_one_place() {
        let e = ApiError::conflict("not_your_turn", "wait for u2");
        assert_eq!((e.status(), e.code()), (409, "not_your_turn"));
        assert_eq!(e.body()["error"]["message"], "wait for u2");
        let e: ApiError = TableError::Transient("throttled".into()).into();
        assert_eq!(e.status(), 503);
        let e = ApiError::Internal("db password wrong".into());
        assert_eq!(e.body()["error"]["message"], "internal error");
    }
}
