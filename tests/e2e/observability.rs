//! What an operator sees: `cooper serve` with `COOPER_LOG_FORMAT=json` (the Lambda format),
//! reaching moto through the fault proxy. One JSON access line per request on stderr, one EMF
//! line per request on stdout whose metrics have the documented names, dimensions and units;
//! an issuance, a refusal, STS throttling and an audit-write failure each counted; and the
//! template's alarms watch the metrics the code writes.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use cooper_api::metrics::{METRICS, Metric};
use cooper_core::model::Principal;
use serde_json::{Value, json};

use crate::cli::{ServeGuard, cooper};
use crate::harness::{ACCOUNT_A, Fault, TestEnv, repo_root};

/// `cooper serve` in JSON, with what it writes to stdout and stderr kept apart.
struct JsonServe {
    url: String,
    server: ServeGuard,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

impl JsonServe {
    /// Serves the deployment `env` provisioned, through its fault proxy.
    fn start(env: &TestEnv) -> Self {
        let mut child = cooper(&env.moto)
            .args(["serve", "--listen", "127.0.0.1:0", "--no-notices"])
            .env("AWS_ENDPOINT_URL", &env.faults.url)
            .env("COOPER_LOG_FORMAT", "json")
            .env("COOPER_LOG", "info")
            .env("COOPER_SIGNIN_ENDPOINT", &env.signin.url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout: Arc<Mutex<Vec<u8>>> = Arc::default();
        let stderr: Arc<Mutex<Vec<u8>>> = Arc::default();
        let mut out = child.stdout.take().unwrap();
        let kept = stdout.clone();
        let stdout_reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            let _ = out.read_to_end(&mut all);
            kept.lock().unwrap().extend_from_slice(&all);
        });
        let mut err = BufReader::new(child.stderr.take().unwrap());
        // The first line a person reads stays text in JSON mode too (scripts wait for it).
        let url = loop {
            let mut line = String::new();
            assert!(
                err.read_line(&mut line).unwrap() > 0,
                "cooper serve exited early: {}",
                String::from_utf8_lossy(&stderr.lock().unwrap())
            );
            if let Some(rest) = line.strip_prefix("cooper serving on ") {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
            stderr.lock().unwrap().extend_from_slice(line.as_bytes());
        };
        let kept = stderr.clone();
        let stderr_reader = std::thread::spawn(move || {
            let mut rest = Vec::new();
            let _ = err.read_to_end(&mut rest);
            kept.lock().unwrap().extend_from_slice(&rest);
        });
        Self {
            url,
            server: ServeGuard(child),
            stdout,
            stderr,
            readers: vec![stdout_reader, stderr_reader],
        }
    }

    /// Stops the server; returns its stdout and stderr lines.
    fn stop(self) -> (Vec<String>, Vec<String>) {
        drop(self.server);
        for reader in self.readers {
            reader.join().unwrap();
        }
        let lines = |buf: &Arc<Mutex<Vec<u8>>>| {
            String::from_utf8(buf.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        (lines(&self.stdout), lines(&self.stderr))
    }
}

/// What fails while a request runs: a service (or the audit table's writes), and how.
type During = Option<(&'static str, Fault)>;

/// One metric of an EMF line: name, unit, dimension sets, value.
#[derive(Debug, Clone, PartialEq)]
struct Emitted {
    name: String,
    unit: String,
    dimensions: Vec<Vec<String>>,
    value: f64,
}

/// Checks `line` against the rules of CloudWatch's Embedded Metric Format specification
/// (the `_aws` metadata: a millisecond Timestamp and metric directives; every dimension a
/// string member of the root, every metric a number member) and returns its metrics.
fn emf_metrics(line: &Value) -> Vec<Emitted> {
    let aws = line["_aws"].as_object().expect("an EMF line has _aws");
    let timestamp = aws["Timestamp"].as_u64().expect("Timestamp in ms");
    assert!(timestamp > 1_600_000_000_000, "{line}");
    let directives = aws["CloudWatchMetrics"].as_array().unwrap();
    assert!(!directives.is_empty(), "{line}");
    let mut out = Vec::new();
    for directive in directives {
        assert_eq!(directive["Namespace"], "cooper", "{line}");
        let sets: Vec<Vec<String>> = directive["Dimensions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|set| {
                let set: Vec<String> = set
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|k| k.as_str().unwrap().to_owned())
                    .collect();
                assert!(set.len() <= 30, "{line}");
                for key in &set {
                    assert!(
                        line[key].as_str().is_some_and(|v| !v.is_empty()),
                        "dimension {key} must be a string member: {line}"
                    );
                }
                set
            })
            .collect();
        for metric in directive["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap().to_owned();
            let value = line[&name]
                .as_f64()
                .unwrap_or_else(|| panic!("{name} must be a number member: {line}"));
            out.push(Emitted {
                name,
                unit: metric["Unit"].as_str().unwrap().to_owned(),
                dimensions: sets.clone(),
                value,
            });
        }
    }
    out
}

fn documented(name: &str) -> Metric {
    METRICS
        .into_iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("{name} is not in cooper_api::metrics::METRICS"))
}

fn sets(metric: Metric) -> Vec<Vec<String>> {
    metric
        .dimensions
        .iter()
        .map(|set| set.iter().map(|k| (*k).to_owned()).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn json_access_lines_and_emf_metrics_for_issuance_refusal_throttling_and_audit_failure() {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    env.role_target("a-ro", ACCOUNT_A, 10, None).await;
    env.role_target("a-other", ACCOUNT_A, 100, None).await;
    let alice = env.user("alice").await;
    env.grant_account(Principal::User(alice.clone()), ACCOUNT_A, 10)
        .await;
    let token = env.api_token(&alice).await;
    let serve = JsonServe::start(&env);
    let http = reqwest::Client::new();

    // (what, method, path, body, the fault during it) -> request id, status, code
    let mut secrets = vec![token.clone()];
    let mut answers = Vec::new();
    type Case = (&'static str, &'static str, &'static str, Value, During);
    let cases: [Case; 6] = [
        (
            "issued",
            "POST",
            "/v1/credentials",
            json!({"target": "a-ro"}),
            None,
        ),
        (
            "refused",
            "POST",
            "/v1/credentials",
            json!({"target": "a-other"}),
            None,
        ),
        (
            "throttled",
            "POST",
            "/v1/credentials",
            json!({"target": "a-ro"}),
            Some(("sts", Fault::Throttled)),
        ),
        (
            "unaudited",
            "POST",
            "/v1/credentials",
            json!({"target": "a-ro"}),
            Some(("audit", Fault::Unavailable)),
        ),
        (
            "by id",
            "GET",
            "/v1/approvals/00000000000000000000000000000000",
            Value::Null,
            None,
        ),
        (
            "nowhere",
            "GET",
            "/v1/nowhere/42?code=123456",
            Value::Null,
            None,
        ),
    ];
    for (what, method, path, body, fault) in cases {
        match fault {
            Some(("audit", f)) => {
                env.faults
                    .fail_only("dynamodb", Some("PutItem"), Some("cooper-audit"), f)
            }
            Some((service, f)) => env.faults.fail(service, f),
            None => {}
        }
        let mut request = http
            .request(method.parse().unwrap(), format!("{}{path}", serve.url))
            .bearer_auth(&token);
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        env.faults.heal();
        let status = response.status().as_u16();
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        for field in ["secret_access_key", "session_token"] {
            if let Some(secret) = answer[field].as_str() {
                secrets.push(secret.to_owned());
            }
        }
        let code = answer["error"]["code"].as_str().map(str::to_owned);
        answers.push((what, id, status, code));
    }
    let expected = [
        ("issued", 200, None),
        ("refused", 403, Some("not_granted")),
        ("throttled", 503, Some("upstream_throttled")),
        ("unaudited", 503, Some("audit_unavailable")),
        ("by id", 404, Some("approval_not_found")),
        ("nowhere", 404, Some("not_found")),
    ];
    for ((what, _, status, code), (want, want_status, want_code)) in answers.iter().zip(expected) {
        assert_eq!(
            (*what, *status, code.as_deref()),
            (want, want_status, want_code)
        );
    }
    let (stdout, stderr) = serve.stop();

    // Every log line is a JSON object with a time and a level.
    let logs: Vec<Value> = stderr
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: a log line {l:?}")))
        .collect();
    for line in &logs {
        assert!(
            line["timestamp"].is_string() && line["level"].is_string(),
            "{line}"
        );
    }
    // Every stdout line is an EMF document, with cooper's metrics only.
    let emf: Vec<Value> = stdout
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: an EMF line {l:?}")))
        .collect();
    for line in &emf {
        for m in emf_metrics(line) {
            let doc = documented(&m.name);
            assert_eq!(
                (m.unit.as_str(), &m.dimensions),
                (doc.unit, &sets(doc)),
                "{line}"
            );
        }
    }

    let route = |what: &str| match what {
        "by id" => "GET /v1/approvals/{id}",
        "nowhere" => "unmatched",
        _ => "POST /v1/credentials",
    };
    for (what, id, status, code) in &answers {
        // One access line per request, with the route template (never the raw path or query).
        let access: Vec<&Value> = logs
            .iter()
            .filter(|l| l["message"] == "request" && l["request_id"] == id.as_str())
            .collect();
        assert_eq!(access.len(), 1, "{what}: {access:?}");
        let access = access[0];
        assert_eq!(access["level"], "INFO");
        assert_eq!(access["route"], route(what), "{what}: {access}");
        assert_eq!(access["status"], *status, "{access}");
        assert!(access["latency_ms"].as_f64().unwrap() >= 0.0, "{access}");
        assert_eq!(access["code"].as_str(), code.as_deref(), "{access}");
        assert!(access["method"].is_string());
        if *what != "nowhere" {
            assert_eq!(access["user"], "alice", "{what}: {access}");
        }
        if route(what) == "POST /v1/credentials" {
            let target = if *what == "refused" {
                "a-other"
            } else {
                "a-ro"
            };
            assert_eq!(access["target"], target, "{access}");
        }

        // One EMF line per request: latency by route, refusals by code, and its counts.
        let lines: Vec<&Value> = emf
            .iter()
            .filter(|l| l["request_id"] == id.as_str())
            .collect();
        assert_eq!(lines.len(), 1, "{what}: {lines:?}");
        let line = lines[0];
        assert_eq!(line["function"], "cooper-serve");
        let metrics = emf_metrics(line);
        let value = |name: &str| metrics.iter().find(|m| m.name == name).map(|m| m.value);
        let latency = metrics.iter().find(|m| m.name == "Latency").unwrap();
        assert_eq!(latency.unit, "Milliseconds");
        assert_eq!(latency.dimensions, [["route"]]);
        assert_eq!(line["route"], route(what));
        assert_eq!(line["code"].as_str(), code.as_deref(), "{line}");
        assert_eq!(value("Refusals"), code.as_ref().map(|_| 1.0), "{line}");
        let counted: BTreeSet<&str> = metrics
            .iter()
            .map(|m| m.name.as_str())
            .filter(|n| !["Latency", "Refusals"].contains(n))
            .collect();
        let want: BTreeSet<&str> = match *what {
            "issued" => ["Issuances"].into(),
            "throttled" => ["StsThrottles"].into(),
            // STS answered, the record was not written: no issuance.
            "unaudited" => ["AuditWriteFailures"].into(),
            _ => BTreeSet::new(),
        };
        assert_eq!(counted, want, "{what}: {line}");
        for name in want {
            assert_eq!(value(name), Some(1.0));
            let m = metrics.iter().find(|m| m.name == name).unwrap();
            assert_eq!(
                (m.unit.as_str(), &m.dimensions),
                ("Count", &vec![vec!["function".to_owned()], vec![]])
            );
        }
    }

    // Nothing secret in either stream (the leak scan does this at trace level, in depth).
    let all = format!("{}\n{}", stdout.join("\n"), stderr.join("\n"));
    for secret in &secrets {
        assert!(
            !all.contains(secret.as_str()),
            "a secret reached the logs or metrics"
        );
    }
    assert!(!all.contains("123456"), "a query string reached the logs");
}

/// Each `AWS::CloudWatch::Alarm` block of template.yaml, as text.
fn alarms(template: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut name = String::new();
    let mut block: Option<String> = None;
    for line in template.lines() {
        let top =
            line.starts_with("  ") && !line.starts_with("   ") && line.trim_end().ends_with(':');
        if top {
            if let Some(b) = block.take() {
                out.push((name.clone(), b));
            }
            name = line.trim().trim_end_matches(':').to_owned();
        } else if line.trim() == "Type: AWS::CloudWatch::Alarm" {
            block = Some(String::new());
        } else if let Some(b) = block.as_mut() {
            b.push_str(line.trim());
            b.push('\n');
        }
        if !line.starts_with(' ')
            && !line.is_empty()
            && let Some(b) = block.take()
        {
            out.push((name.clone(), b));
        }
    }
    out
}

/// The template watches what the code writes: each alarm on a `cooper` metric names one the
/// functions emit, with a dimension set they publish it under; every alarm notifies the
/// operator's topic; the functions are traced; the audit-notify dead letters are watched.
#[test]
fn the_template_alarms_on_the_metrics_the_code_writes_and_tells_the_operator() {
    let template = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
    let globals = template
        .split("\nGlobals:")
        .nth(1)
        .unwrap()
        .split("\nResources:")
        .next()
        .unwrap();
    assert!(
        globals.contains("Tracing: Active"),
        "X-Ray tracing for every function"
    );
    assert!(template.contains("Type: AWS::CloudWatch::Dashboard"));

    let alarms = alarms(&template);
    let names: BTreeSet<&str> = alarms.iter().map(|(n, _)| n.as_str()).collect();
    for wanted in [
        "AuditWriteFailuresAlarm",
        "StsThrottlingAlarm",
        "ApiServerErrorRateAlarm",
        "NoticeDeadLettersAlarm",
        "RotationFailedAlarm",
    ] {
        assert!(names.contains(wanted), "{wanted} missing from {names:?}");
    }
    for (name, block) in &alarms {
        assert!(
            block.contains("AlarmActions: [!Ref OperatorTopic]"),
            "{name} must notify the operator"
        );
        if !block.contains("Namespace: cooper") {
            continue;
        }
        let metric = block
            .lines()
            .find_map(|l| l.strip_prefix("MetricName: "))
            .unwrap();
        let doc = documented(metric);
        let dimensions: Vec<String> = block
            .lines()
            .filter(|l| l.starts_with("Dimensions:"))
            .flat_map(|l| l.split("Name: ").skip(1))
            .map(|l| l.split([',', ' ']).next().unwrap().to_owned())
            .collect();
        assert!(
            sets(doc).contains(&dimensions),
            "{name} watches {metric} by {dimensions:?}; it is published by {:?}",
            doc.dimensions
        );
    }
    let dlq = &alarms
        .iter()
        .find(|(n, _)| n == "NoticeDeadLettersAlarm")
        .unwrap()
        .1;
    assert!(dlq.contains("NoticeDeadLetters.QueueName"));
    let audit_notify = template.split("AuditNotifyFunction:").nth(1).unwrap();
    assert!(
        audit_notify
            .split("Policies:")
            .next()
            .unwrap()
            .contains("Destination: !GetAtt NoticeDeadLetters.Arn"),
        "audit-notify's stream sends what fails every retry to the dead-letter queue"
    );
}

/// Each function names itself for its metrics (the `function` dimension) as it is built.
#[test]
fn every_api_function_writes_metrics_under_its_own_name() {
    // Each folder is a function (beside them, the build script and linker script they share).
    let functions: Vec<String> = std::fs::read_dir(repo_root().join("crates/functions"))
        .unwrap()
        .map(Result::unwrap)
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(functions.len() >= 7, "{functions:?}");
    for function in &functions {
        let main = std::fs::read_to_string(
            repo_root()
                .join("crates/functions")
                .join(function)
                .join("src/main.rs"),
        )
        .unwrap();
        assert!(
            main.contains(&format!("telemetry::init_function(\"{function}\")")),
            "{function}'s main must call telemetry::init_function(\"{function}\")"
        );
    }
}
