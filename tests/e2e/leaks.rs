//! The secret-leak scan: `cooper serve` at the most verbose log level (every crate at `trace`,
//! the AWS SDK's included) through a full scenario, then every secret that passed through it is
//! looked for, raw and encoded, in its logs, in every error body it sent, and in every audit and
//! directory item it wrote. Twice: with text logs, and with JSON logs and EMF metric lines
//! (`COOPER_LOG_FORMAT=json`, as in Lambda).

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::cli::{ServeGuard, cooper, run};
use crate::harness::{ACCOUNT_A, FakeIdp, FakeSignin, Moto, pyotp_code, sdk_for};

/// A secret by name, and the forms it could appear in.
struct Secret {
    what: String,
    forms: Vec<String>,
}

impl Secret {
    fn new(what: &str, value: &str) -> Self {
        assert!(
            value.len() >= 8,
            "{what} is too short to look for: {value:?}"
        );
        let percent: String = value
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let mut forms = vec![
            value.to_owned(),
            STANDARD.encode(value),
            URL_SAFE_NO_PAD.encode(value),
            percent,
            serde_json::to_string(value)
                .unwrap()
                .trim_matches('"')
                .to_owned(),
        ];
        forms.sort();
        forms.dedup();
        Self {
            what: what.to_owned(),
            forms,
        }
    }
}

/// Everything the client saw go wrong, and what it keeps of the scenario.
#[derive(Default)]
struct Client {
    http: reqwest::Client,
    url: String,
    error_bodies: Vec<String>,
}

impl Client {
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        if status >= 400 {
            self.error_bodies.push(text.clone());
        }
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn ok(&mut self, method: Method, path: &str, bearer: Option<&str>, body: Value) -> Value {
        let body = (!body.is_null()).then(|| body.to_string());
        let (status, answer) = self.call(method, path, bearer, body, &[]).await;
        assert!((200..300).contains(&status), "{path}: {status} {answer}");
        answer
    }

    async fn refused(&mut self, method: Method, path: &str, bearer: Option<&str>, body: &str) {
        let (status, answer) = self
            .call(method, path, bearer, Some(body.to_owned()), &[])
            .await;
        assert!((400..500).contains(&status), "{path}: {status} {answer}");
    }
}

/// The 30-second step `code_at` codes are for, kept away from a step boundary so that three
/// consecutive steps stay inside the server's window while the scenario runs.
fn steady_now() -> OffsetDateTime {
    loop {
        let now = OffsetDateTime::now_utc();
        if (3..20).contains(&(now.unix_timestamp() % 30)) {
            return now;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_logs_error_bodies_or_stored_items() {
    scan(LogFormat::Text).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_json_logs_or_emf_metrics() {
    scan(LogFormat::Json).await;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogFormat {
    Text,
    /// JSON log lines on stderr, EMF metric lines on stdout.
    Json,
}

async fn scan(format: LogFormat) {
    let moto = Moto::start();
    let sdk = sdk_for(&moto.endpoint).await;
    let signin = FakeSignin::start().await;
    let idp = FakeIdp::start().await;
    let mut secrets = Vec::new();

    let setup: Value =
        serde_json::from_slice(&run(cooper(&moto).args(["setup", "--json", "--no-demo"])).stdout)
            .unwrap();
    let admin = setup["admin_token"].as_str().unwrap().to_owned();
    secrets.push(Secret::new("the admin's API token", &admin));

    // The long-term keys cooper keeps in SSM.
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    for name in [
        "/cooper/jwt/signing-key",
        "/cooper/broker/secret-access-key",
    ] {
        let value = ssm
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .unwrap()
            .parameter
            .unwrap()
            .value
            .unwrap();
        secrets.push(Secret::new(name, &value));
    }

    // Federation keys of account A, sealed by the CLI for its target: the server only ever
    // opens them.
    let iam = cooper_aws::provisioning::iam_in_account(
        &sdk,
        &cooper_core::names::AccountId::parse(ACCOUNT_A).unwrap(),
        "leak-scan-admin",
    )
    .await
    .unwrap();
    iam.create_user()
        .user_name("fed-keys")
        .send()
        .await
        .unwrap();
    let key = iam
        .create_access_key()
        .user_name("fed-keys")
        .send()
        .await
        .unwrap()
        .access_key
        .unwrap();
    secrets.push(Secret::new(
        "a federation secret key",
        &key.secret_access_key,
    ));
    let sealed = String::from_utf8(
        run(cooper(&moto).args([
            "encrypt",
            "--kms-key",
            "alias/cooper",
            "--account",
            ACCOUNT_A,
            "--target",
            "a-fed",
            &format!("{}|{}", key.access_key_id, key.secret_access_key),
        ]))
        .stdout,
    )
    .unwrap()
    .trim()
    .to_owned();

    // `cooper serve`, everything at trace: its logs and notices go to stderr, metrics (in JSON)
    // to stdout (both are read).
    let providers = json!([{
        "issuer": idp.issuer, "audiences": ["cooper-test"], "algorithms": ["ES256"],
        "email_domains": ["example.com"],
    }]);
    let mut child = cooper(&moto)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("COOPER_LOG", "trace")
        .env("COOPER_SIGNIN_ENDPOINT", &signin.url)
        .env("COOPER_OIDC_PROVIDERS", providers.to_string())
        .env("COOPER_ADMIN_TOTP_OPERATIONS", "")
        .env(
            "COOPER_LOG_FORMAT",
            if format == LogFormat::Json {
                "json"
            } else {
                "text"
            },
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let logs = Arc::new(Mutex::new(Vec::<u8>::new()));
    let metrics = Arc::new(Mutex::new(Vec::<u8>::new()));
    let mut stdout = child.stdout.take().unwrap();
    let stdout_logs = metrics.clone();
    let stdout_reader = std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            stdout_logs.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let url = loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "cooper serve exited early"
        );
        if let Some(rest) = line.strip_prefix("cooper serving on ") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
        logs.lock().unwrap().extend_from_slice(line.as_bytes());
    };
    let stderr_logs = logs.clone();
    let stderr_reader = std::thread::spawn(move || {
        let mut rest = Vec::new();
        let _ = stderr.read_to_end(&mut rest);
        stderr_logs.lock().unwrap().extend_from_slice(&rest);
    });
    let server = ServeGuard(child);
    let mut c = Client {
        url,
        ..Client::default()
    };

    // The admin builds a small world.
    c.ok(
        Method::POST,
        "/v1/admin/accounts",
        Some(&admin),
        json!({"id": ACCOUNT_A, "name": "prod"}),
    )
    .await;
    c.ok(Method::POST, "/v1/admin/targets", Some(&admin), json!({
        "name": "a-ro", "account_id": ACCOUNT_A, "level": 10, "kind": "role",
        "role_arn": format!("arn:aws:iam::{ACCOUNT_A}:role/cooper-readonly"), "external_id": "leak-scan-external-id",
    })).await;
    c.ok(Method::POST, "/v1/admin/targets", Some(&admin), json!({
        "name": "a-fed", "account_id": ACCOUNT_A, "level": 10, "kind": "federated_user", "sealed_keys": sealed,
        "session_policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}]},
    })).await;
    for name in ["lena", "olga@example.com"] {
        c.ok(
            Method::POST,
            "/v1/admin/users",
            Some(&admin),
            json!({ "name": name }),
        )
        .await;
        c.ok(
            Method::POST,
            "/v1/admin/grants",
            Some(&admin),
            json!({"principal": {"user": name}, "account_id": ACCOUNT_A, "max_level": 10}),
        )
        .await;
    }
    let issued = c
        .ok(
            Method::POST,
            "/v1/admin/users/lena/tokens",
            Some(&admin),
            json!({"label": "laptop"}),
        )
        .await;
    let token = issued["token"].as_str().unwrap().to_owned();
    secrets.push(Secret::new("lena's API token", &token));

    // Lena enrolls an authenticator with a one-time code (setting a password), logs in, and
    // sets her password again: three consecutive steps.
    let enrollment = c
        .ok(
            Method::POST,
            "/v1/admin/users/lena/enrollment-code",
            Some(&admin),
            json!({}),
        )
        .await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    secrets.push(Secret::new("lena's enrollment code", &enrollment));
    let now = steady_now();
    let started = c
        .ok(
            Method::POST,
            "/v1/totp/enrollment",
            Some(&enrollment),
            json!({}),
        )
        .await;
    let uri = started["otpauth_uri"].as_str().unwrap().to_owned();
    secrets.push(Secret::new(
        "lena's TOTP secret",
        started["secret"].as_str().unwrap(),
    ));
    secrets.push(Secret::new("lena's provisioning URI", &uri));
    let code_at = |steps: i64| pyotp_code(&uri, now + time::Duration::seconds(30 * steps));
    let password = "leak-scan correct horse battery staple";
    secrets.push(Secret::new("lena's password", password));
    c.ok(
        Method::POST,
        "/v1/totp/enrollment/confirm",
        Some(&enrollment),
        json!({"totp": code_at(-1), "password": password}),
    )
    .await;
    // Wrong code, then malformed bodies that carry the password: refused without echoing it.
    c.refused(
        Method::POST,
        "/v1/sessions",
        None,
        &json!({"user": "lena", "password": password, "totp": "000000"}).to_string(),
    )
    .await;
    for malformed in [
        format!(r#"{{"user": "lena", "password": "{password}", "totp": 123456}}"#),
        format!(
            r#"{{"user": "lena", "password": "{password}", "totp": "123456", "{password}": 1}}"#
        ),
        format!(r#"{{"user": "lena", "password": "{password}""#),
        format!(r#"{{"user": ["{password}"], "password": "x", "totp": "123456"}}"#),
    ] {
        c.refused(Method::POST, "/v1/sessions", None, &malformed)
            .await;
    }
    let session = c
        .ok(
            Method::POST,
            "/v1/sessions",
            None,
            json!({"user": "lena", "password": password, "totp": code_at(0)}),
        )
        .await;
    let jwt = session["token"].as_str().unwrap().to_owned();
    secrets.push(Secret::new("lena's session JWT", &jwt));
    c.ok(
        Method::PUT,
        "/v1/password",
        Some(&jwt),
        json!({"password": password, "totp": code_at(1)}),
    )
    .await;

    // Credentials, every way they come.
    for (target, path) in [
        ("a-ro", "/v1/credentials"),
        ("a-fed", "/v1/credentials"),
        ("a-ro", "/v1/credentials?format=credential_process"),
    ] {
        let answer = c
            .ok(Method::POST, path, Some(&jwt), json!({ "target": target }))
            .await;
        for field in ["SecretAccessKey", "SessionToken"] {
            if let Some(value) = answer[field].as_str() {
                secrets.push(Secret::new(&format!("{target} {field}"), value));
            }
        }
        for field in ["secret_access_key", "session_token"] {
            if let Some(value) = answer[field].as_str() {
                secrets.push(Secret::new(&format!("{target} {field}"), value));
            }
        }
    }
    let console = c
        .ok(
            Method::POST,
            "/v1/console",
            Some(&token),
            json!({"target": "a-ro"}),
        )
        .await;
    let console_url = console["console_url"].as_str().unwrap().to_owned();
    secrets.push(Secret::new("a console sign-in URL", &console_url));
    let signin_token = console_url
        .split("SigninToken=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    secrets.push(Secret::new("a console sign-in token", &signin_token));

    // An identity provider's ID token, exchanged and used directly.
    let id_token = idp.mint(
        &idp.claims("olga@example.com", OffsetDateTime::now_utc()),
        "key-1",
    );
    secrets.push(Secret::new("olga's ID token", &id_token));
    let exchanged = c
        .ok(
            Method::POST,
            "/v1/sessions/oidc",
            None,
            json!({ "id_token": id_token }),
        )
        .await;
    let olga_jwt = exchanged["token"].as_str().unwrap().to_owned();
    secrets.push(Secret::new("olga's session JWT", &olga_jwt));
    c.ok(
        Method::POST,
        "/v1/credentials",
        Some(&id_token),
        json!({"target": "a-ro"}),
    )
    .await;

    // Credentials that do not work: none of them may be echoed either.
    let forged_api = format!("{}ff", &token[..token.len() - 2]);
    let forged_jwt = format!("{}x", &jwt[..jwt.len() - 1]);
    let wrong_idp = idp.mint(
        &idp.claims("olga@other.example", OffsetDateTime::now_utc()),
        "key-1",
    );
    for (what, bearer) in [
        ("a forged API token", &forged_api),
        ("a forged JWT", &forged_jwt),
        ("an ID token from another domain", &wrong_idp),
    ] {
        secrets.push(Secret::new(what, bearer));
        c.refused(
            Method::POST,
            "/v1/credentials",
            Some(bearer),
            r#"{"target":"a-ro"}"#,
        )
        .await;
    }
    c.refused(
        Method::POST,
        "/v1/sessions/oidc",
        None,
        &json!({ "id_token": wrong_idp }).to_string(),
    )
    .await;

    // The admin resets lena's authenticator and revokes her token.
    c.ok(
        Method::POST,
        "/v1/admin/users/lena/totp/reset",
        Some(&admin),
        Value::Null,
    )
    .await;
    let id = issued["id"].as_str().unwrap().to_owned();
    c.ok(
        Method::DELETE,
        &format!("/v1/admin/tokens/{id}"),
        Some(&admin),
        Value::Null,
    )
    .await;
    c.refused(Method::GET, "/v1/whoami", Some(&token), "").await;

    drop(server);
    stdout_reader.join().unwrap();
    stderr_reader.join().unwrap();
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    let metrics = String::from_utf8_lossy(&metrics.lock().unwrap()).into_owned();
    assert!(
        logs.contains("TRACE") && logs.contains("credentials issued"),
        "the logs were captured at trace level"
    );
    if format == LogFormat::Json {
        // Every line is JSON: what is scanned is what CloudWatch Logs would hold.
        for line in logs.lines() {
            let line: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{e}: not a JSON log line: {line:?}"));
            assert!(line["level"].is_string(), "{line}");
        }
        let emf: Vec<Value> = metrics
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
            .collect();
        assert!(
            emf.iter()
                .all(|l| l["_aws"]["CloudWatchMetrics"].is_array()),
            "stdout holds EMF lines only"
        );
        assert!(
            emf.iter().any(|l| l["Issuances"] == 1) && emf.iter().any(|l| l["Refusals"] == 1),
            "the scenario's issuances and refusals were counted"
        );
        assert!(
            logs.lines().any(|l| l.contains(r#""message":"request""#)),
            "the access lines were written"
        );
    } else {
        assert!(metrics.is_empty(), "no metrics in text mode: {metrics}");
    }
    let logs = format!("{logs}\n{metrics}");

    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let mut stored = String::new();
    for table in ["cooper-audit", "cooper-directory"] {
        let items = dynamodb
            .scan()
            .table_name(table)
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default();
        assert!(!items.is_empty(), "{table} has items");
        stored.push_str(&format!("{items:?}"));
    }
    let errors = c.error_bodies.join("\n");
    assert!(c.error_bodies.len() >= 10, "the scenario met its refusals");

    let mut leaks = Vec::new();
    for secret in &secrets {
        for (place, text) in [
            ("the logs", &logs),
            ("an error body", &errors),
            ("a stored item", &stored),
        ] {
            if let Some(form) = secret.forms.iter().find(|f| text.contains(f.as_str())) {
                let at = text.find(form.as_str()).unwrap();
                let context = &text[at.saturating_sub(120)..(at + form.len() + 40).min(text.len())];
                leaks.push(format!("{} in {place}: ...{context}...", secret.what));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "{} of {} secrets leaked:\n{}",
        leaks.len(),
        secrets.len(),
        leaks.join("\n")
    );
}
