//! Logging: plain-text lines to stderr (CloudWatch on Lambda, which keeps both streams; on a
//! terminal, apart from what a command prints for scripts, such as `cooper setup --json`),
//! filtered by `COOPER_LOG`.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

/// `COOPER_LOG` takes `info`, `debug`, or per-target directives (`cooper_api=debug,info`).
pub fn init() {
    let filter = std::env::var("COOPER_LOG")
        .ok()
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .with_target(false),
        )
        .with(filter)
        .try_init();
}
