//! Metrics as CloudWatch Embedded Metric Format (EMF): one JSON line on stdout per request (and
//! per event outside a request), which CloudWatch Logs turns into metrics in namespace `cooper`.
//!
//! Nothing is written until [`init`] names the function (the Lambda mains; `cooper serve` with
//! `COOPER_LOG_FORMAT=json`), so CLI commands never mix metrics into what they print.
//!
//! Inside a request, code that knows something notes it here ([`note_user`], [`note_target`],
//! [`count`]); the request-context middleware collects the notes ([`tallied`]) and writes the
//! request's one access-log line and one EMF line. A line carries names, codes, routes and
//! numbers: never a token, a code, a key or a query string.

use std::cell::RefCell;
use std::future::Future;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

use serde_json::{Map, Value, json};

/// The CloudWatch namespace of every metric cooper writes.
pub const NAMESPACE: &str = "cooper";

/// A metric: its name, its unit, and the dimension sets it is published under (an empty set:
/// also without dimensions, the total an alarm watches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    pub name: &'static str,
    pub unit: &'static str,
    pub dimensions: &'static [&'static [&'static str]],
}

/// Credentials or a console link handed out (after their audit record was written).
pub const ISSUANCES: Metric = Metric {
    name: "Issuances",
    unit: "Count",
    dimensions: &[&["function"], &[]],
};
/// A request answered with an error, by its stable code (4xx refusals and 5xx failures alike).
pub const REFUSALS: Metric = Metric {
    name: "Refusals",
    unit: "Count",
    dimensions: &[&["code"]],
};
/// An audit record (with the change it belongs to) could not be written: nothing was done.
pub const AUDIT_WRITE_FAILURES: Metric = Metric {
    name: "AuditWriteFailures",
    unit: "Count",
    dimensions: &[&["function"], &[]],
};
/// STS still throttled after the SDK's retries: the caller got `upstream_throttled`.
pub const STS_THROTTLES: Metric = Metric {
    name: "StsThrottles",
    unit: "Count",
    dimensions: &[&["function"], &[]],
};
/// A broker key rotation that did not finish (the rotate-keys function, `function=rotate-keys`).
pub const ROTATION_FAILURES: Metric = Metric {
    name: "RotationFailures",
    unit: "Count",
    dimensions: &[&["function"]],
};
/// How long a request took inside the function, by route template (`POST /v1/credentials`).
pub const LATENCY: Metric = Metric {
    name: "Latency",
    unit: "Milliseconds",
    dimensions: &[&["route"]],
};

/// Every metric cooper writes: the template's alarms and dashboard name these.
pub const METRICS: [Metric; 6] = [
    ISSUANCES,
    REFUSALS,
    AUDIT_WRITE_FAILURES,
    STS_THROTTLES,
    ROTATION_FAILURES,
    LATENCY,
];

/// The counted events (each one a [`Metric`] of unit Count and the `function` dimension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Issuances,
    AuditWriteFailures,
    StsThrottles,
    RotationFailures,
}

impl Counter {
    pub fn metric(self) -> Metric {
        match self {
            Self::Issuances => ISSUANCES,
            Self::AuditWriteFailures => AUDIT_WRITE_FAILURES,
            Self::StsThrottles => STS_THROTTLES,
            Self::RotationFailures => ROTATION_FAILURES,
        }
    }
}

/// The route of a request no route matched (so that scanners cannot make new dimension values).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// What one request did, as far as its log line and metrics care.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// The authenticated caller.
    pub user: Option<String>,
    /// The target asked for.
    pub target: Option<String>,
    /// The error code of a refusal rendered as a page (API errors are read from the response).
    pub code: Option<&'static str>,
    counts: Vec<(Counter, u32)>,
}

impl Tally {
    /// How many of `counter` this request counted.
    pub fn count(&self, counter: Counter) -> u32 {
        self.counts
            .iter()
            .find(|(c, _)| *c == counter)
            .map_or(0, |(_, n)| *n)
    }

    fn add(&mut self, counter: Counter) {
        match self.counts.iter_mut().find(|(c, _)| *c == counter) {
            Some((_, n)) => *n = n.saturating_add(1),
            None => self.counts.push((counter, 1)),
        }
    }
}

tokio::task_local! {
    static TALLY: RefCell<Tally>;
}

/// Runs a request's future with a fresh tally, and returns what was noted while it ran.
pub async fn tallied<F: Future>(request: F) -> (F::Output, Tally) {
    TALLY
        .scope(RefCell::new(Tally::default()), async move {
            let output = request.await;
            let tally = TALLY.try_with(|t| t.take()).unwrap_or_default();
            (output, tally)
        })
        .await
}

fn note(f: impl FnOnce(&mut Tally)) -> bool {
    TALLY.try_with(|t| f(&mut t.borrow_mut())).is_ok()
}

/// The request's caller (set by authentication).
pub fn note_user(user: impl std::fmt::Display) {
    note(|t| t.user = Some(user.to_string()));
}

/// The target the request asks for.
pub fn note_target(target: impl std::fmt::Display) {
    note(|t| t.target = Some(target.to_string()));
}

/// A refusal that is rendered as a page, not as an `ApiError` response.
pub fn note_refusal(code: &'static str) {
    note(|t| t.code = Some(code));
}

/// Counts an event: on the request's line inside a request, on a line of its own outside one.
pub fn count(counter: Counter) {
    if !note(|t| t.add(counter))
        && let Some(emitter) = EMITTER.get()
    {
        emitter.write(&event_line(&emitter.function, counter, now_ms()));
    }
}

/// Where EMF lines go once a function has named itself.
struct Emitter {
    function: String,
    out: Mutex<Box<dyn Write + Send>>,
}

impl Emitter {
    fn write(&self, line: &Value) {
        if let Ok(mut out) = self.out.lock() {
            // One write per line, so that lines from concurrent requests never interleave.
            let mut text = line.to_string();
            text.push('\n');
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
    }
}

static EMITTER: OnceLock<Emitter> = OnceLock::new();

/// Turns metrics on for this process, as `function` (the dimension of every count), writing
/// EMF lines to stdout. Only the first call counts.
pub fn init(function: &str) {
    init_writer(function, Box::new(std::io::stdout()));
}

/// As [`init`], with the lines going to `out`.
pub fn init_writer(function: &str, out: Box<dyn Write + Send>) {
    let _ = EMITTER.set(Emitter {
        function: function.to_owned(),
        out: Mutex::new(out),
    });
}

/// Whether metrics are on (the middleware skips building lines otherwise).
pub fn enabled() -> bool {
    EMITTER.get().is_some()
}

/// One request, as the middleware saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished<'a> {
    pub request_id: &'a str,
    /// Method and route template (`POST /v1/credentials`), or [`UNMATCHED_ROUTE`].
    pub route: &'a str,
    pub status: u16,
    /// The error code, for an error answer.
    pub code: Option<&'a str>,
    pub latency_ms: f64,
}

/// Writes a finished request's EMF line (when metrics are on).
pub fn request_finished(request: &Finished<'_>, tally: &Tally) {
    if let Some(emitter) = EMITTER.get() {
        emitter.write(&request_line(&emitter.function, request, tally, now_ms()));
    }
}

// EMF's Timestamp is when the line is written; the injected Clock is for decisions.
#[allow(clippy::disallowed_methods)]
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// One directive of the `_aws.CloudWatchMetrics` list.
fn directive(metric: Metric) -> Value {
    json!({
        "Namespace": NAMESPACE,
        "Dimensions": metric.dimensions,
        "Metrics": [{"Name": metric.name, "Unit": metric.unit}],
    })
}

fn envelope(timestamp_ms: u64, directives: Vec<Value>, mut members: Map<String, Value>) -> Value {
    members.insert(
        "_aws".into(),
        json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": directives}),
    );
    Value::Object(members)
}

/// The EMF line of one request: its latency by route, its refusal by code, and its counts.
pub fn request_line(
    function: &str,
    request: &Finished<'_>,
    tally: &Tally,
    timestamp_ms: u64,
) -> Value {
    let mut members = Map::new();
    members.insert("function".into(), function.into());
    members.insert("route".into(), request.route.into());
    members.insert("request_id".into(), request.request_id.into());
    members.insert("status".into(), request.status.into());
    let mut directives = vec![directive(LATENCY)];
    members.insert(
        LATENCY.name.into(),
        json!((request.latency_ms * 1000.0).round() / 1000.0),
    );
    if let Some(code) = request.code {
        members.insert("code".into(), code.into());
        directives.push(directive(REFUSALS));
        members.insert(REFUSALS.name.into(), 1.into());
    }
    for (counter, n) in &tally.counts {
        directives.push(directive(counter.metric()));
        members.insert(counter.metric().name.into(), (*n).into());
    }
    envelope(timestamp_ms, directives, members)
}

/// The EMF line of one event outside a request (a key rotation's failure).
pub fn event_line(function: &str, counter: Counter, timestamp_ms: u64) -> Value {
    let mut members = Map::new();
    members.insert("function".into(), function.into());
    members.insert(counter.metric().name.into(), 1.into());
    envelope(timestamp_ms, vec![directive(counter.metric())], members)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks `line` against the EMF specification's rules, and returns its metrics as
    /// (name, unit, dimension sets, value).
    fn parse(line: &Value) -> Vec<(String, String, Vec<Vec<String>>, f64)> {
        let aws = &line["_aws"];
        assert!(aws["Timestamp"].is_u64(), "{line}");
        let mut out = Vec::new();
        for d in aws["CloudWatchMetrics"]
            .as_array()
            .expect("CloudWatchMetrics")
        {
            assert_eq!(d["Namespace"], NAMESPACE);
            let sets: Vec<Vec<String>> = d["Dimensions"]
                .as_array()
                .expect("Dimensions")
                .iter()
                .map(|set| {
                    set.as_array()
                        .expect("a dimension set")
                        .iter()
                        .map(|k| {
                            let k = k.as_str().expect("a dimension key").to_owned();
                            assert!(line[&k].is_string(), "dimension {k} is a member: {line}");
                            k
                        })
                        .collect()
                })
                .collect();
            for m in d["Metrics"].as_array().expect("Metrics") {
                let name = m["Name"].as_str().expect("Name").to_owned();
                let value = line[&name]
                    .as_f64()
                    .expect("the metric's value is a number");
                out.push((
                    name,
                    m["Unit"].as_str().expect("Unit").to_owned(),
                    sets.clone(),
                    value,
                ));
            }
        }
        out
    }

    #[test]
    fn a_request_line_has_latency_by_route_refusal_by_code_and_its_counts() {
        let mut tally = Tally::default();
        tally.add(Counter::AuditWriteFailures);
        tally.add(Counter::StsThrottles);
        tally.add(Counter::StsThrottles);
        let request = Finished {
            request_id: "r-1",
            route: "POST /v1/credentials",
            status: 503,
            code: Some("audit_unavailable"),
            latency_ms: 12.34567,
        };
        let line = request_line("issue-credentials", &request, &tally, 1_700_000_000_000);
        assert_eq!(line["_aws"]["Timestamp"], 1_700_000_000_000u64);
        assert_eq!(line["request_id"], "r-1");
        let metrics = parse(&line);
        let names: Vec<&str> = metrics.iter().map(|m| m.0.as_str()).collect();
        assert_eq!(
            names,
            ["Latency", "Refusals", "AuditWriteFailures", "StsThrottles"]
        );
        let by = |n: &str| metrics.iter().find(|m| m.0 == n).unwrap().clone();
        assert_eq!(
            by("Latency"),
            (
                "Latency".into(),
                "Milliseconds".into(),
                vec![vec!["route".into()]],
                12.346
            )
        );
        assert_eq!(by("Refusals").3, 1.0);
        assert_eq!(line["code"], "audit_unavailable");
        assert_eq!(
            by("StsThrottles").2,
            vec![vec!["function".to_owned()], vec![]]
        );
        assert_eq!(by("StsThrottles").3, 2.0);
    }

    #[test]
    fn a_successful_request_has_no_refusal_and_an_event_line_stands_alone() {
        let mut tally = Tally::default();
        tally.add(Counter::Issuances);
        let request = Finished {
            request_id: "r-2",
            route: "POST /v1/console",
            status: 200,
            code: None,
            latency_ms: 3.0,
        };
        let line = request_line("web-console", &request, &tally, 1);
        assert!(line.get("code").is_none() && line.get("Refusals").is_none());
        assert_eq!(line["Issuances"], 1);
        assert_eq!(line["function"], "web-console");

        let line = event_line("rotate-keys", Counter::RotationFailures, 2);
        let metrics = parse(&line);
        assert_eq!(
            metrics,
            [(
                "RotationFailures".into(),
                "Count".into(),
                vec![vec!["function".into()]],
                1.0
            )]
        );
        assert_eq!(line["function"], "rotate-keys");
    }

    #[tokio::test]
    async fn notes_reach_the_tally_of_their_own_request_only() {
        let ((), tally) = tallied(async {
            note_user("lena");
            note_target("a-ro");
            count(Counter::Issuances);
            tokio::task::yield_now().await;
            count(Counter::Issuances);
        })
        .await;
        assert_eq!(tally.user.as_deref(), Some("lena"));
        assert_eq!(tally.target.as_deref(), Some("a-ro"));
        assert_eq!(tally.count(Counter::Issuances), 2);
        assert_eq!(tally.count(Counter::StsThrottles), 0);
        // Outside a request, a note goes nowhere (and a count to its own line, when on).
        assert!(!note(|t| t.user = Some("x".into())));
    }

    #[test]
    fn every_unit_is_one_cloudwatch_knows() {
        for m in METRICS {
            assert!(["Count", "Milliseconds"].contains(&m.unit), "{m:?}");
            assert!(m.name.chars().all(|c| c.is_ascii_alphanumeric()));
        }
    }
}
