//! Tracing: JSON lines in Lambda (CloudWatch parses them), compact text locally.
//!
//! `RUST_LOG` takes `target=level` directives (`info`, `realtime_domain=debug,warn`), read
//! with `Targets`: EnvFilter's span and field filters would link a regex engine into every
//! bootstrap for a feature no function uses.

use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt;
use tracing_subscriber::prelude::*;

/// The filter `RUST_LOG` asks for; `info` when it is unset, empty or not understood.
fn filter(spec: Option<&str>) -> Targets {
    spec.map(str::trim)
        .filter(|s| !s.is_empty())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(Level::INFO))
}

/// Installs the global subscriber once; later calls are no-ops (tests call it freely).
pub fn init() {
    let filter = filter(std::env::var("RUST_LOG").ok().as_deref());
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if in_lambda {
        let json = fmt::layer().json().with_current_span(true).without_time().with_ansi(false);
        registry.with(json.with_writer(std::io::stderr)).try_init()
    } else {
        registry.with(fmt::layer().compact().with_writer(std::io::stderr)).try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::filter;
    use tracing::level_filters::LevelFilter;
    use tracing::Level;

    #[test]
    fn rust_log_directives_are_read_and_nonsense_falls_back_to_info() {
        let f = filter(Some("realtime_domain=debug,warn"));
        assert!(f.would_enable("realtime_domain::fanout", &Level::DEBUG));
        assert!(!f.would_enable("aws_smithy_runtime", &Level::INFO));
        assert!(f.would_enable("aws_smithy_runtime", &Level::WARN));
        for spec in [None, Some(""), Some("  "), Some("=&=nonsense=")] {
            let f = filter(spec);
            assert_eq!(f.default_level(), Some(LevelFilter::INFO), "{spec:?}");
        }
    }
}
