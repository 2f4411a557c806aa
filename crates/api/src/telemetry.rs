//! Logging: one line per event to stderr (CloudWatch on Lambda, which keeps both streams; on a
//! terminal, apart from what a command prints for scripts, such as `cooper setup --json`),
//! filtered by `COOPER_LOG`: plain text on a terminal, JSON lines in Lambda or with
//! `COOPER_LOG_FORMAT=json`. Metrics (EMF, `crate::metrics`) go to stdout.

use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    /// One JSON object per line: `timestamp`, `level`, `message`, the event's fields at the
    /// top level, and the request's span (`request_id`, `method`, `path`, `user`) under `span`.
    Json,
}

impl Format {
    /// `COOPER_LOG_FORMAT` (`json` or `text`) when set; otherwise JSON in Lambda
    /// (`AWS_LAMBDA_FUNCTION_NAME` is set) and text elsewhere.
    pub fn from_env() -> Self {
        Self::choose(
            std::env::var("COOPER_LOG_FORMAT").ok().as_deref(),
            std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some(),
        )
    }

    fn choose(asked: Option<&str>, in_lambda: bool) -> Self {
        match asked.map(str::trim) {
            Some(v) if v.eq_ignore_ascii_case("json") => Self::Json,
            Some(v) if v.eq_ignore_ascii_case("text") => Self::Text,
            _ if in_lambda => Self::Json,
            _ => Self::Text,
        }
    }
}

/// `COOPER_LOG` takes `info`, `debug`, or per-target directives (`cooper_api=debug,info`).
/// Returns the format chosen.
pub fn init() -> Format {
    let asked = std::env::var("COOPER_LOG_FORMAT").ok();
    let format = Format::choose(
        asked.as_deref(),
        std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some(),
    );
    let filter = std::env::var("COOPER_LOG")
        .ok()
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let (text, json) = match format {
        Format::Text => (Some(text_layer(std::io::stderr)), None),
        Format::Json => (None, Some(json_layer(std::io::stderr))),
    };
    let _ = tracing_subscriber::registry()
        .with(text)
        .with(json)
        .with(filter)
        .try_init();
    if let Some(asked) = asked.filter(|a| {
        !["json", "text"]
            .iter()
            .any(|known| a.trim().eq_ignore_ascii_case(known))
    }) {
        tracing::warn!(COOPER_LOG_FORMAT = %asked, "not json or text: logging as {format:?}");
    }
    format
}

/// For a Lambda function: its logs (JSON unless `COOPER_LOG_FORMAT=text`), and its metrics as
/// EMF lines on stdout, under `function` (the `function` dimension).
pub fn init_function(function: &str) {
    init();
    crate::metrics::init(function);
}

fn text_layer<S, W>(writer: W) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false)
        .with_target(false)
}

/// The JSON lines: event fields flattened to the top level (so an access line's `request_id`,
/// `route`, `status`... are top-level keys), the current span under `span`, no module path
/// (an access line's `target` is the AWS target).
pub(crate) fn json_layer<S, W>(writer: W) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_writer(writer)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::Value;

    use super::*;

    /// A writer into a shared buffer, for tests reading the JSON lines written.
    #[derive(Clone, Default)]
    pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        pub(crate) fn lines(&self) -> Vec<Value> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
                .collect()
        }
    }

    #[test]
    fn json_is_chosen_in_lambda_or_when_asked_and_text_can_be_asked_for() {
        assert_eq!(Format::choose(None, false), Format::Text);
        assert_eq!(Format::choose(None, true), Format::Json);
        assert_eq!(Format::choose(Some("json"), false), Format::Json);
        assert_eq!(Format::choose(Some(" JSON "), false), Format::Json);
        assert_eq!(Format::choose(Some("text"), true), Format::Text);
        assert_eq!(Format::choose(Some("yaml"), true), Format::Json);
        assert_eq!(Format::choose(Some("yaml"), false), Format::Text);
    }

    #[test]
    fn a_json_line_has_the_event_fields_on_top_and_the_span_under_span() {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::registry().with(json_layer(move || writer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let span =
                tracing::info_span!("request", request_id = "r-1", user = tracing::field::Empty);
            span.record("user", "lena");
            span.in_scope(|| tracing::warn!(status = 503u16, target = "a-ro", "upstream failure"));
        });
        let lines = out.lines();
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["message"], "upstream failure");
        assert_eq!(line["status"], 503);
        assert_eq!(line["target"], "a-ro");
        assert_eq!(line["span"]["request_id"], "r-1");
        assert_eq!(line["span"]["user"], "lena");
        assert!(line["timestamp"].is_string());
    }
}
