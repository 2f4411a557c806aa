//! The end-to-end harness: a private moto server per test, cooper provisioned into it, and the
//! real routers served on a loopback port, with helpers to fill the directory and to see what
//! reached AWS.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::Credentials;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cooper_api::jwt::JwtAuthority;
use cooper_api::settings::Settings;
use cooper_api::state::{IssueState, load_all_with_clock};
use cooper_aws::directory::DynamoDirectory;
use cooper_aws::kms::KmsVault;
use cooper_aws::provisioning;
use cooper_aws::ssm::{Param, Secrets};
use cooper_core::clock::{Clock, OsEntropy, SystemClock};
use cooper_core::model::{
    Account, FederationKeys, Grant, GrantScope, Group, Principal, Target, User,
};
use cooper_core::names::{
    AccountId, AccountName, ExternalId, GroupName, Level, Partition, RoleArn, SessionPolicy,
    TargetName, UserName,
};
use cooper_core::ports::Directory as _;
use cooper_core::token::{ApiToken, ApiTokenRecord};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use time::OffsetDateTime;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT_A: &str = "111111111111";
pub const ACCOUNT_B: &str = "222222222222";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    let python = std::env::var_os("COOPER_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    assert!(
        python.exists(),
        "{} is missing: run `make test` (or `make deps`), which installs moto into .venv",
        python.display()
    );
    python
}

/// A moto server of this test's own, on a free loopback port. It stops when dropped, and by
/// itself if the test process dies (its stdin closes).
pub struct Moto {
    child: Child,
    pub endpoint: String,
    recording: PathBuf,
}

static INSTANCE: AtomicUsize = AtomicUsize::new(0);

impl Moto {
    pub fn start() -> Self {
        Self::start_serving(false)
    }

    /// As `start`, with DynamoDB requests served concurrently (see scripts/moto_server.py).
    pub fn start_concurrent() -> Self {
        Self::start_serving(true)
    }

    fn start_serving(concurrent_dynamodb: bool) -> Self {
        let n = INSTANCE.fetch_add(1, Ordering::SeqCst);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("moto");
        std::fs::create_dir_all(&dir).unwrap();
        let recording = dir.join(format!("recording-{}-{n}.jsonl", std::process::id()));
        let mut child = Command::new(python())
            .arg(repo_root().join("scripts/moto_server.py"))
            .arg("--exit-with-parent")
            .args(concurrent_dynamodb.then_some("--concurrent-dynamodb"))
            .env("MOTO_RECORDER_FILEPATH", &recording)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let port: u16 = first
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("moto printed {first:?}"));
        Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            recording,
        }
    }

    async fn recorder(&self, action: &str) {
        reqwest::Client::new()
            .post(format!("{}/moto-api/recorder/{action}", self.endpoint))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }

    /// Runs `f` with moto's request recorder on, and returns the AWS calls it made.
    pub async fn record<T>(&self, f: impl std::future::Future<Output = T>) -> (T, Vec<AwsCall>) {
        self.recorder("reset-recording").await;
        self.recorder("start-recording").await;
        let out = f.await;
        self.recorder("stop-recording").await;
        let text = reqwest::get(format!(
            "{}/moto-api/recorder/download-recording",
            self.endpoint
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
        let calls = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| AwsCall::parse(&serde_json::from_str(l).unwrap()))
            .collect();
        (out, calls)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.recording);
    }
}

/// One request moto served: the service (from the SigV4 scope), the operation, and the body.
#[derive(Debug, Clone)]
pub struct AwsCall {
    pub service: String,
    pub operation: String,
    pub body: String,
    /// The SigV4 credential scope it was signed with: `AKID/date/region/service/aws4_request`.
    pub credential: String,
}

impl AwsCall {
    fn parse(entry: &Value) -> Self {
        let headers: HashMap<String, String> = entry["headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_ascii_lowercase(),
                    v.as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let raw = entry["body"].as_str().unwrap_or_default();
        let body = if entry["body_encoded"].as_bool().unwrap_or(false) {
            String::from_utf8_lossy(&STANDARD.decode(raw).unwrap()).into_owned()
        } else {
            raw.to_owned()
        };
        let service = headers
            .get("authorization")
            .and_then(|a| a.split("Credential=").nth(1))
            .and_then(|c| c.split('/').nth(3))
            .unwrap_or_default()
            .to_owned();
        let operation = match headers.get("x-amz-target") {
            Some(target) => target.rsplit('.').next().unwrap_or_default().to_owned(),
            None => form_value(&body, "Action").unwrap_or_default(),
        };
        let credential = headers
            .get("authorization")
            .and_then(|a| a.split("Credential=").nth(1))
            .and_then(|c| c.split(',').next())
            .unwrap_or_default()
            .to_owned();
        Self {
            service,
            operation,
            body,
            credential,
        }
    }

    /// A field of a form-encoded (STS query protocol) body, decoded.
    pub fn form(&self, name: &str) -> Option<String> {
        form_value(&self.body, name)
    }
}

fn form_value(body: &str, name: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

pub fn calls_to<'a>(calls: &'a [AwsCall], service: &str) -> Vec<&'a AwsCall> {
    calls.iter().filter(|c| c.service == service).collect()
}

/// SDK configuration pointed at `endpoint`, with throwaway credentials.
pub async fn sdk_for(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "e2e"))
        .load()
        .await
}

/// An HTTP answer from cooper.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    /// The error code, after checking the body has exactly the documented error shape.
    pub fn error_code(&self) -> &str {
        let error = self.body["error"]
            .as_object()
            .unwrap_or_else(|| panic!("not an error body: {}", self.text));
        let mut keys: Vec<&str> = error.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["code", "message", "request_id"],
            "error shape: {}",
            self.text
        );
        assert!(!error["message"].as_str().unwrap().is_empty());
        assert_eq!(
            error["request_id"].as_str().unwrap(),
            self.headers["x-request-id"].to_str().unwrap(),
            "the body's request_id is the header's"
        );
        error["code"].as_str().unwrap()
    }
}

/// A clock for the server that tests can move forward (a fake of time, which no emulator offers).
pub struct TestClock(Mutex<OffsetDateTime>);

impl TestClock {
    fn new() -> Self {
        Self(Mutex::new(SystemClock.now()))
    }

    pub fn advance(&self, by: time::Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

/// moto, cooper provisioned into it, and the issue-credentials router on a loopback port.
pub struct TestEnv {
    pub moto: Moto,
    pub sdk: SdkConfig,
    pub settings: Settings,
    pub directory: DynamoDirectory,
    pub dynamodb: cooper_aws::aws_sdk_dynamodb::Client,
    pub vault: KmsVault,
    pub kms_key: String,
    pub jwt: JwtAuthority,
    pub url: String,
    pub http: reqwest::Client,
    /// The routers' state, for hosting them another way (the Lambda host).
    pub state: IssueState,
    /// Every router's state, for hosting them another way.
    pub states: cooper_api::state::States,
    /// The server's clock: starts at the real time, and tests can move it forward.
    pub clock: Arc<TestClock>,
    /// The stand-in for AWS's federation (console sign-in) endpoint.
    pub signin: FakeSignin,
    /// Between cooper and moto: makes chosen services unavailable or throttling.
    pub faults: FaultProxy,
    /// The SDK configuration cooper runs on (through the fault proxy).
    pub app_sdk: SdkConfig,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestEnv {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// As `start`, with the deployment's settings adjusted first.
    pub async fn start_with(configure: impl FnOnce(&mut Settings)) -> Self {
        Self::start_on(Moto::start(), configure).await
    }

    /// As `start`, on a moto that serves DynamoDB requests concurrently.
    pub async fn start_concurrent() -> Self {
        Self::start_on(Moto::start_concurrent(), |_| {}).await
    }

    async fn start_on(moto: Moto, configure: impl FnOnce(&mut Settings)) -> Self {
        let sdk = sdk_for(&moto.endpoint).await;
        let mut settings = Settings::local("cooper-directory", "cooper-audit");
        settings.jwt_issuer = "cooper-e2e".into();
        settings.jwt_audience = "cooper-e2e-api".into();
        let signin = FakeSignin::start().await;
        settings.signin_endpoint = Some(signin.url.clone());
        configure(&mut settings);
        let kms_key = provision(&sdk, &settings).await;
        settings.kms_key = Some(kms_key.clone());
        let clock = Arc::new(TestClock::new());
        // cooper reaches moto through a proxy the test can make fail, service by service.
        let faults = FaultProxy::start(&moto.endpoint).await;
        let app_sdk = sdk_for(&faults.url).await;
        let states = load_all_with_clock(&app_sdk, &settings, clock.clone())
            .await
            .unwrap();
        let state = states.issue.clone();
        let app = cooper_api::router::edge(cooper_api::router::all(states.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            cooper_api::host::serve_local(listener, app, std::future::pending())
                .await
                .unwrap();
        });
        let dynamodb = cooper_aws::aws_sdk_dynamodb::Client::new(&sdk);
        Self {
            directory: DynamoDirectory::new(dynamodb.clone(), &settings.directory_table),
            vault: KmsVault::new(cooper_aws::aws_sdk_kms::Client::new(&sdk)),
            dynamodb,
            kms_key,
            jwt: load_jwt(&sdk, &settings).await,
            moto,
            sdk,
            settings,
            url,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            state,
            states,
            clock,
            signin,
            faults,
            app_sdk,
            server,
        }
    }

    pub async fn account(&self, id: &str) -> Account {
        let account = Account {
            id: AccountId::parse(id).unwrap(),
            name: AccountName::parse(&format!("account {id}")).unwrap(),
            partition: Partition::Aws,
            access_requests: None,
        };
        self.directory.put_account(&account).await.unwrap();
        account
    }

    pub async fn role_target(
        &self,
        name: &str,
        account: &str,
        level: u32,
        external_id: Option<&str>,
    ) -> Target {
        let target = Target::role(
            TargetName::parse(name).unwrap(),
            AccountId::parse(account).unwrap(),
            Level::new(level).unwrap(),
            RoleArn::parse(&format!("arn:aws:iam::{account}:role/{name}-role")).unwrap(),
            external_id.map(|e| ExternalId::parse(e).unwrap()),
            Some(7200),
        )
        .unwrap();
        self.directory.put_target(&target).await.unwrap();
        target
    }

    /// A federated-user target whose keys are a real IAM user's (in moto), sealed with KMS.
    pub async fn federated_target(
        &self,
        name: &str,
        account: &Account,
        level: u32,
        policy: &str,
    ) -> Target {
        // The keys of an IAM user of the target's own account (moto makes it there for the
        // account's assumed role), sealed for this target.
        let iam = provisioning::iam_in_account(&self.sdk, &account.id, "e2e-admin")
            .await
            .unwrap();
        let keys = provisioning::create_iam_user_keys(&iam, &format!("{name}-iam-user"))
            .await
            .unwrap();
        let sealed = self
            .vault
            .seal_federation_keys(
                &self.kms_key,
                &FederationKeys {
                    access_key_id: keys.access_key_id,
                    secret_access_key: keys.secret_access_key,
                },
                &cooper_core::ports::FederationBinding {
                    account: account.id.clone(),
                    target: TargetName::parse(name).unwrap(),
                },
            )
            .await
            .unwrap();
        let target = Target::federated_user(
            TargetName::parse(name).unwrap(),
            account,
            Level::new(level).unwrap(),
            sealed,
            SessionPolicy::parse(policy).unwrap(),
            None,
        )
        .unwrap();
        self.directory.put_target(&target).await.unwrap();
        target
    }

    pub async fn user(&self, name: &str) -> UserName {
        let user = UserName::parse(name).unwrap();
        self.directory
            .put_user(&User::new(user.clone()))
            .await
            .unwrap();
        user
    }

    pub async fn put_user(&self, user: &User) {
        self.directory.put_user(user).await.unwrap();
    }

    pub async fn group(&self, name: &str, members: &[&UserName]) -> GroupName {
        let group = GroupName::parse(name).unwrap();
        self.directory
            .put_group(&Group {
                name: group.clone(),
                description: None,
            })
            .await
            .unwrap();
        for member in members {
            self.directory.add_member(member, &group).await.unwrap();
        }
        group
    }

    pub async fn grant_account(&self, principal: Principal, account: &str, level: u32) {
        self.directory
            .put_grant(&Grant {
                principal,
                scope: GrantScope::Account {
                    account: AccountId::parse(account).unwrap(),
                    max_level: Level::new(level).unwrap(),
                },
                expires_at: None,
                via: None,
            })
            .await
            .unwrap();
    }

    pub async fn grant_target(&self, principal: Principal, target: &str) {
        self.directory
            .put_grant(&Grant {
                principal,
                scope: GrantScope::Target(TargetName::parse(target).unwrap()),
                expires_at: None,
                via: None,
            })
            .await
            .unwrap();
    }

    /// The hint a credential of `user` is made with now: their directory groups, if few
    /// (`catalog::hint_of`).
    async fn hinted_groups(&self, user: &UserName) -> Vec<GroupName> {
        let groups = self
            .directory
            .user_profile(user)
            .await
            .unwrap()
            .map(|p| p.groups)
            .unwrap_or_default();
        cooper_core::catalog::hint_of(groups)
    }

    /// A new API token for `user`, valid for a day, as an admin issues it (its record hints the
    /// user's groups).
    pub async fn api_token(&self, user: &UserName) -> String {
        let token = ApiToken::generate(&OsEntropy).unwrap();
        let groups = self.hinted_groups(user).await;
        let record = ApiTokenRecord::issue(
            &token,
            user.clone(),
            SystemClock.now(),
            time::Duration::days(1),
        )
        .hinting(groups);
        self.directory.put_api_token(&record).await.unwrap();
        token.reveal().expose_secret().to_owned()
    }

    /// A signed-in session of `user` (a cooper JWT, as local sign-in makes), good for a
    /// working day of the test clock.
    pub fn jwt(&self, user: &UserName) -> String {
        self.jwt
            .mint(user.as_str(), self.clock.now(), time::Duration::hours(8))
            .unwrap()
            .expose_secret()
            .to_owned()
    }

    /// As `jwt`, with the user's directory groups as the session's hint (what a sign-in signs
    /// now: `catalog::hint_of` of the profile's groups).
    pub async fn jwt_hinting(&self, user: &UserName) -> String {
        use cooper_core::ports::SessionSigner as _;
        let groups = self.hinted_groups(user).await;
        let now = self.clock.now();
        let claims = cooper_core::ports::SessionClaims {
            session_id: cooper_core::revocation::SessionId::generate(&OsEntropy).unwrap(),
            user: user.clone(),
            idp: None,
            groups: Vec::new(),
            hinted_groups: groups,
            issued_at: now,
            expires_at: now + time::Duration::hours(8),
        };
        self.jwt.sign(&claims).unwrap().expose_secret().to_owned()
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<&str>,
        content_type: Option<&str>,
    ) -> Answer {
        self.call_with(method, path, bearer, body, content_type, &[])
            .await
    }

    /// A request with extra headers (If-Match, X-Cooper-TOTP).
    pub async fn call_with(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<&str>,
        content_type: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(bearer) = bearer {
            request = request.header("authorization", format!("Bearer {bearer}"));
        }
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        if let Some(body) = body {
            request = request.body(body.to_owned());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn credentials(&self, bearer: &str, body: Value) -> Answer {
        self.call(
            reqwest::Method::POST,
            "/v1/credentials",
            Some(bearer),
            Some(&body.to_string()),
            Some("application/json"),
        )
        .await
    }

    pub async fn get(&self, path: &str, bearer: &str) -> Answer {
        self.call(reqwest::Method::GET, path, Some(bearer), None, None)
            .await
    }

    /// Every audit item, read back raw (a Scan: fine in a test, never on a request path).
    pub async fn audit_items(
        &self,
    ) -> Vec<HashMap<String, cooper_aws::aws_sdk_dynamodb::types::AttributeValue>> {
        self.dynamodb
            .scan()
            .table_name(&self.settings.audit_table)
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default()
    }
}

/// Tables, KMS key, JWT key and broker user, as `cooper setup` makes them. Returns the key ARN.
pub async fn provision(sdk: &SdkConfig, settings: &Settings) -> String {
    let dynamodb = cooper_aws::aws_sdk_dynamodb::Client::new(sdk);
    let kms = cooper_aws::aws_sdk_kms::Client::new(sdk);
    let ssm = cooper_aws::aws_sdk_ssm::Client::new(sdk);
    let iam = cooper_aws::aws_sdk_iam::Client::new(sdk);
    provisioning::ensure_directory_table(&dynamodb, &settings.directory_table)
        .await
        .unwrap();
    provisioning::ensure_audit_table(&dynamodb, &settings.audit_table)
        .await
        .unwrap();
    let (key, _) = provisioning::ensure_kms_key(&kms, "alias/cooper")
        .await
        .unwrap();
    provisioning::ensure_jwt_key(&ssm, &settings.ssm_prefix, &key, || {
        SecretString::from(STANDARD.encode(*b"0123456789abcdef0123456789abcdef"))
    })
    .await
    .unwrap();
    provisioning::ensure_broker_user(&iam, &ssm, &settings.ssm_prefix, &key, "cooper-broker")
        .await
        .unwrap();
    for partition in &settings.broker_partitions {
        let keys = provisioning::create_iam_user_keys(&iam, &format!("cooper-broker-{partition}"))
            .await
            .unwrap();
        provisioning::store_partition_broker_keys(
            &ssm,
            &settings.ssm_prefix,
            &key,
            *partition,
            &keys,
        )
        .await
        .unwrap();
    }
    key
}

async fn load_jwt(sdk: &SdkConfig, settings: &Settings) -> JwtAuthority {
    let ssm = cooper_aws::aws_sdk_ssm::Client::new(sdk);
    let mut secrets = Secrets::load(&ssm, &settings.ssm_prefix, &[Param::JwtSigningKey])
        .await
        .unwrap();
    JwtAuthority::new(
        &secrets.take(Param::JwtSigningKey).unwrap(),
        &settings.jwt_issuer,
        &settings.jwt_audience,
    )
    .unwrap()
}

/// A code for the otpauth `uri` at `at`, from pyotp: an implementation independent of cooper's.
pub fn pyotp_code(uri: &str, at: OffsetDateTime) -> String {
    let output = Command::new(python())
        .args([
            "-c",
            "import pyotp, sys; print(pyotp.parse_uri(sys.argv[1]).at(int(sys.argv[2])))",
            uri,
            &at.unix_timestamp().to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// A user's enrolled authenticator, as the test holds it.
pub struct Authenticator {
    pub uri: String,
    pub secret: String,
}

impl TestEnv {
    pub async fn post(&self, path: &str, bearer: Option<&str>, body: Value) -> Answer {
        self.call(
            reqwest::Method::POST,
            path,
            bearer,
            Some(&body.to_string()),
            Some("application/json"),
        )
        .await
    }

    /// A one-time enrollment code for `user`, issued as an operator issues one (through the
    /// admin use case, audited).
    pub async fn enrollment_code(&self, user: &UserName) -> String {
        let admin = &self.states.admin.shared.admin;
        let ctx = admin.operator(
            "arn:aws:iam::123456789012:user/e2e-operator".into(),
            cooper_core::audit::RequestMeta {
                request_id: format!("e2e-{}", uuid_like()),
                source_ip: None,
            },
        );
        let (code, _) = admin.issue_enrollment_code(&ctx, user, None).await.unwrap();
        code.reveal().expose_secret().to_owned()
    }

    /// Enrolls a first authenticator for the bearer's user, as a person does: with a one-time
    /// enrollment code, confirmed with pyotp's code.
    pub async fn enroll(&self, bearer: &str) -> Authenticator {
        let me = self.get("/v1/whoami", bearer).await;
        assert_eq!(me.status, 200, "{}", me.text);
        let user = UserName::parse(me.body["user"].as_str().unwrap()).unwrap();
        self.enroll_user(&user, None).await
    }

    /// Enrolls a first authenticator for `user` with an enrollment code (and a first password).
    pub async fn enroll_user(&self, user: &UserName, password: Option<&str>) -> Authenticator {
        let code = self.enrollment_code(user).await;
        let started = self
            .post("/v1/totp/enrollment", Some(&code), serde_json::json!({}))
            .await;
        assert_eq!(started.status, 200, "{}", started.text);
        let uri = started.body["otpauth_uri"].as_str().unwrap().to_owned();
        let mut confirm = serde_json::json!({ "totp": pyotp_code(&uri, self.clock.now()) });
        if let Some(password) = password {
            confirm["password"] = serde_json::json!(password);
        }
        let confirmed = self
            .post("/v1/totp/enrollment/confirm", Some(&code), confirm)
            .await;
        assert_eq!(confirmed.status, 200, "{}", confirmed.text);
        Authenticator {
            uri,
            secret: started.body["secret"].as_str().unwrap().to_owned(),
        }
    }

    /// A fresh code: the clock moves to the next 30-second step first, so it was never used.
    pub fn fresh_code(&self, authenticator: &Authenticator) -> String {
        self.clock.advance(time::Duration::seconds(30));
        pyotp_code(&authenticator.uri, self.clock.now())
    }
}

impl TestEnv {
    /// A universal admin (by an explicit admin grant), with an API token.
    pub async fn universal_admin(&self, name: &str) -> (UserName, String) {
        self.admin_of(name, None).await
    }

    /// An admin of `account` (or universal, for `None`), with an API token.
    pub async fn admin_of(&self, name: &str, account: Option<&str>) -> (UserName, String) {
        let user = self.user(name).await;
        self.directory
            .put_admin_grant(&cooper_core::admin::scope::AdminGrant {
                principal: Principal::User(user.clone()),
                account: account.map(|a| AccountId::parse(a).unwrap()),
            })
            .await
            .unwrap();
        let token = self.api_token(&user).await;
        (user, token)
    }

    /// A JSON request to the admin API.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let body = body.map(|b| b.to_string());
        let content_type = body.as_ref().map(|_| "application/json");
        self.call_with(
            method,
            path,
            Some(bearer),
            body.as_deref(),
            content_type,
            headers,
        )
        .await
    }
}

/// A stand-in for AWS's federation endpoint (`https://<sign-in host>/federation`), which no
/// emulator offers. It checks `getSigninToken` requests the way AWS documents them, refuses
/// anything else with 400, and records what it was asked.
#[derive(Clone)]
pub struct FakeSignin {
    pub url: String,
    requests: Arc<Mutex<Vec<SigninRequest>>>,
}

/// One `getSigninToken` call, as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct SigninRequest {
    pub host: String,
    pub session_duration: Option<u32>,
    pub session_id: String,
    pub token: String,
}

impl FakeSignin {
    const HOSTS: [&'static str; 3] = [
        "signin.aws.amazon.com",
        "signin.amazonaws-us-gov.com",
        "signin.amazonaws.cn",
    ];

    pub async fn start() -> Self {
        use axum::extract::{Path, Query, State};
        let requests: Arc<Mutex<Vec<SigninRequest>>> = Arc::default();
        async fn federation(
            State(requests): State<Arc<Mutex<Vec<SigninRequest>>>>,
            Path(host): Path<String>,
            Query(query): Query<HashMap<String, String>>,
        ) -> Result<axum::Json<Value>, (reqwest::StatusCode, String)> {
            let bad = |why: &str| (reqwest::StatusCode::BAD_REQUEST, why.to_owned());
            if !FakeSignin::HOSTS.contains(&host.as_str()) {
                return Err((
                    reqwest::StatusCode::NOT_FOUND,
                    "no such sign-in host".into(),
                ));
            }
            if query.get("Action").map(String::as_str) != Some("getSigninToken") {
                return Err(bad("Action must be getSigninToken"));
            }
            if query
                .keys()
                .any(|k| !["Action", "Session", "SessionDuration"].contains(&k.as_str()))
            {
                return Err(bad("unknown parameter"));
            }
            let session: Value = serde_json::from_str(
                query
                    .get("Session")
                    .ok_or_else(|| bad("Session is required"))?,
            )
            .map_err(|_| bad("Session must be JSON"))?;
            let object = session
                .as_object()
                .ok_or_else(|| bad("Session must be an object"))?;
            let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
            keys.sort_unstable();
            if keys != ["sessionId", "sessionKey", "sessionToken"]
                || object
                    .values()
                    .any(|v| v.as_str().is_none_or(str::is_empty))
            {
                return Err(bad("Session needs sessionId, sessionKey and sessionToken"));
            }
            let session_duration = match query.get("SessionDuration") {
                None => None,
                Some(d) => match d.parse::<u32>() {
                    Ok(d) if (900..=43_200).contains(&d) => Some(d),
                    _ => return Err(bad("SessionDuration must be 900 to 43200")),
                },
            };
            let mut all = requests.lock().unwrap();
            let token = format!("signin-token-{}", all.len() + 1);
            all.push(SigninRequest {
                host,
                session_duration,
                session_id: object["sessionId"].as_str().unwrap_or_default().to_owned(),
                token: token.clone(),
            });
            Ok(axum::Json(serde_json::json!({ "SigninToken": token })))
        }
        let app = axum::Router::new()
            .route("/{host}/federation", axum::routing::get(federation))
            .with_state(requests.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, requests }
    }

    pub fn requests(&self) -> Vec<SigninRequest> {
        self.requests.lock().unwrap().clone()
    }
}

/// An SQS queue subscribed to an SNS topic: how a test reads what was published.
pub struct NoticeInbox {
    pub topic_arn: String,
    queue_url: String,
    sqs: aws_sdk_sqs::Client,
}

impl NoticeInbox {
    pub async fn create(sdk: &SdkConfig, name: &str) -> Self {
        let sns = cooper_aws::aws_sdk_sns::Client::new(sdk);
        let topic_arn = sns
            .create_topic()
            .name(name)
            .send()
            .await
            .unwrap()
            .topic_arn
            .unwrap();
        Self::subscribe(sdk, &topic_arn).await
    }

    /// An inbox on an existing topic.
    pub async fn subscribe(sdk: &SdkConfig, topic_arn: &str) -> Self {
        let sns = cooper_aws::aws_sdk_sns::Client::new(sdk);
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let topic_arn = topic_arn.to_owned();
        let name = topic_arn.rsplit(':').next().unwrap_or("topic").to_owned();
        let queue_url = sqs
            .create_queue()
            .queue_name(format!("{name}-inbox"))
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
            .clone();
        sns.subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await
            .unwrap();
        Self {
            topic_arn,
            queue_url,
            sqs,
        }
    }

    /// Every notice waiting, as (subject, message).
    pub async fn drain(&self) -> Vec<(String, String)> {
        let mut notices = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                return notices;
            }
            for m in messages {
                let envelope: Value = serde_json::from_str(m.body.as_deref().unwrap()).unwrap();
                notices.push((
                    envelope["Subject"].as_str().unwrap_or_default().to_owned(),
                    envelope["Message"].as_str().unwrap_or_default().to_owned(),
                ));
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle.unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
}

impl TestEnv {
    /// Everything the audit stream holds, as the notifier receives it.
    pub async fn stream_records(&self) -> Vec<cooper_core::notify::StreamRecord> {
        let mut follower = cooper_aws::stream::StreamFollower::new(
            &self.sdk,
            &self.dynamodb,
            &self.settings.audit_table,
        )
        .await
        .unwrap();
        follower.poll().await.unwrap()
    }

    /// The audit-notify handler, publishing to `topic_arn`.
    pub fn notifier(&self, topic_arn: &str) -> cooper_core::notify::AuditNotifier {
        let mut settings = self.settings.clone();
        settings.notify_topic_arn = Some(topic_arn.to_owned());
        cooper_api::notify::notifier(&self.app_sdk, &settings, self.clock.clone()).unwrap()
    }
}

/// A real OpenID Provider (panva/oidc-provider, OpenID Certified), run by node from
/// `tests/oidc`. It stops when dropped, or when the test process dies (its stdin closes).
pub struct OpenIdProvider {
    child: Child,
    pub issuer: String,
}

impl OpenIdProvider {
    /// The accounts it signs in are `<login>@example.com`, in `groups`.
    pub fn start(groups: &[&str]) -> Self {
        let dir = repo_root().join("tests/oidc");
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "run `make deps`: it installs the test OpenID Provider"
        );
        let mut child = Command::new("node")
            .arg(dir.join("provider.mjs"))
            .env("GROUPS", groups.join(","))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        Self {
            child,
            issuer: first.trim().to_owned(),
        }
    }

    /// cooper's configuration for it: the CLI's client id, RS256, emails of example.com.
    pub fn config(&self) -> cooper_api::oidc::ProviderConfig {
        cooper_api::oidc::parse_providers(
            &serde_json::json!([{
                "issuer": self.issuer,
                "audiences": ["cooper-cli"],
                "algorithms": ["RS256"],
                "email_domains": ["example.com"],
            }])
            .to_string(),
        )
        .unwrap()
        .remove(0)
    }

    /// Plays the person at the browser: signs in as `login` and consents, starting at `url`
    /// (a device verification URL, or an authorization URL), following the provider's pages.
    /// Returns the last redirect that leaves the provider, if any (the code flow's callback).
    pub async fn sign_in(&self, url: &str, login: &str) -> Option<String> {
        // No connection reuse: node may close an idle connection just as it is reused.
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let absolute = |location: &str| {
            if location.starts_with("http") {
                location.to_owned()
            } else {
                format!("{}{location}", self.issuer)
            }
        };
        let inputs = |html: &str| -> Vec<(String, String)> {
            html.split("<input")
                .skip(1)
                .filter_map(|tag| {
                    let attr = |name: &str| {
                        tag.split(&format!("{name}=\""))
                            .nth(1)
                            .and_then(|v| v.split('"').next())
                            .map(str::to_owned)
                    };
                    Some((attr("name")?, attr("value").unwrap_or_default()))
                })
                .collect()
        };
        let mut next = (
            reqwest::Method::GET,
            url.to_owned(),
            Vec::<(String, String)>::new(),
        );
        for _ in 0..20 {
            let (method, target, form) = next.clone();
            let request = browser.request(method, &target);
            let request = if form.is_empty() {
                request
            } else {
                request.form(&form)
            };
            let response = request.send().await.unwrap();
            let status = response.status();
            if status.is_redirection() {
                let location = absolute(response.headers()["location"].to_str().unwrap());
                if !location.starts_with(&self.issuer) {
                    return Some(location);
                }
                next = (reqwest::Method::GET, location, Vec::new());
                continue;
            }
            let html = response.text().await.unwrap();
            if let Some(uid) = target.strip_prefix(&format!("{}/interaction/", self.issuer)) {
                let prompt = if html.contains("name=\"login\"") {
                    "login"
                } else {
                    "consent"
                };
                let mut form = vec![("prompt".to_owned(), prompt.to_owned())];
                if prompt == "login" {
                    form.push(("login".into(), login.to_owned()));
                    form.push(("password".into(), "any".into()));
                }
                next = (
                    reqwest::Method::POST,
                    format!("{}/interaction/{uid}", self.issuer),
                    form,
                );
            } else if html.contains("action=\"") && html.contains("xsrf") {
                // The device pages: enter (or confirm) the user code.
                next = (
                    reqwest::Method::POST,
                    format!("{}/device", self.issuer),
                    inputs(&html),
                );
            } else {
                return None;
            }
        }
        panic!("the provider's pages did not end");
    }

    /// An ID token for `login`, by the device grant, signing in as the browser would.
    pub async fn id_token(&self, login: &str) -> String {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let start: Value = http
            .post(format!("{}/device/auth", self.issuer))
            .form(&[
                ("client_id", "cooper-cli"),
                ("scope", "openid email groups"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        self.sign_in(start["verification_uri_complete"].as_str().unwrap(), login)
            .await;
        let answer: Value = http
            .post(format!("{}/token", self.issuer))
            .form(&[
                ("client_id", "cooper-cli"),
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", start["device_code"].as_str().unwrap()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["id_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no id_token: {answer}"))
            .to_owned()
    }
}

impl Drop for OpenIdProvider {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real SAML 2.0 identity provider (pysaml2, from PyPI, signing with Debian's xmlsec1), run
/// from `tests/saml/idp.py` with a key pair it makes. It signs in whoever a request names
/// (`login=`), or `user`, in `groups`. It stops when dropped or when the test process dies.
pub struct SamlIdp {
    child: Child,
    pub entity_id: String,
    pub sso_url: String,
    pub certificate: String,
}

impl SamlIdp {
    pub fn start(sp_entity_id: &str, acs_url: &str, user: &str, groups: &[&str]) -> Self {
        let python = repo_root().join(".venv/bin/python");
        assert!(python.exists(), "run `make deps`: it installs pysaml2");
        let mut child = Command::new(python)
            .arg(repo_root().join("tests/saml/idp.py"))
            .args([
                "--sp-entity-id",
                sp_entity_id,
                "--acs-url",
                acs_url,
                "--user",
                user,
            ])
            .args(["--groups", &groups.join(",")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the SAML IdP");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let about: Value = serde_json::from_str(&first)
            .unwrap_or_else(|e| panic!("the SAML IdP did not start ({e}): {first:?}"));
        Self {
            child,
            entity_id: about["entity_id"].as_str().unwrap().to_owned(),
            sso_url: about["sso_url"].as_str().unwrap().to_owned(),
            certificate: about["certificate"].as_str().unwrap().to_owned(),
        }
    }

    /// cooper's configuration for it, as provider `name`, with `extra` fields.
    pub fn config(&self, name: &str, extra: Value) -> String {
        let mut config = serde_json::json!({
            "name": name,
            "entity_id": self.entity_id,
            "sso_url": self.sso_url,
            "certificates": [self.certificate],
        });
        if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        Value::Array(vec![config]).to_string()
    }
}

impl Drop for SamlIdp {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type SigningKey = (String, Vec<u8>, Value);

/// An identity provider of the test's own (ES256 keys it can rotate, tokens it mints with any
/// claims), for the tokens a real provider would never issue. It counts key fetches.
#[derive(Clone)]
pub struct FakeIdp {
    pub issuer: String,
    /// (kid, PKCS#8 private key, public JWK)
    keys: Arc<Mutex<Vec<SigningKey>>>,
    fetches: Arc<AtomicUsize>,
}

impl FakeIdp {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let idp = Self {
            issuer: issuer.clone(),
            keys: Arc::default(),
            fetches: Arc::default(),
        };
        idp.add_key("key-1");
        let (keys, fetches, iss) = (idp.keys.clone(), idp.fetches.clone(), issuer.clone());
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || {
                    let iss = iss.clone();
                    async move {
                        axum::Json(
                            serde_json::json!({ "issuer": iss, "jwks_uri": format!("{iss}/jwks") }),
                        )
                    }
                }),
            )
            .route(
                "/jwks",
                axum::routing::get(move || {
                    let (keys, fetches) = (keys.clone(), fetches.clone());
                    async move {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        let jwks: Vec<Value> = keys
                            .lock()
                            .unwrap()
                            .iter()
                            .map(|(_, _, jwk)| jwk.clone())
                            .collect();
                        axum::Json(serde_json::json!({ "keys": jwks }))
                    }
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        idp
    }

    /// Publishes a new P-256 key under `kid` (a rotation).
    pub fn add_key(&self, kid: &str) {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let pkcs8 = pair.to_pkcs8v1().unwrap().as_ref().to_vec();
        let point = pair.public_key().as_ref().to_vec();
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": b64(&point[1..33]), "y": b64(&point[33..65]),
        });
        self.keys.lock().unwrap().push((kid.to_owned(), pkcs8, jwk));
    }

    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// cooper's configuration for it.
    pub fn config(&self, extra: Value) -> cooper_api::oidc::ProviderConfig {
        let mut config = serde_json::json!({
            "issuer": self.issuer,
            "audiences": ["cooper-test"],
            "algorithms": ["ES256"],
            "email_domains": ["example.com"],
            "jwks_refresh_seconds": 2,
        });
        for (k, v) in extra.as_object().unwrap() {
            config[k] = v.clone();
        }
        cooper_api::oidc::parse_providers(&Value::Array(vec![config]).to_string())
            .unwrap()
            .remove(0)
    }

    /// Claims for `email` that cooper accepts, valid for ten minutes from `now`.
    pub fn claims(&self, email: &str, now: OffsetDateTime) -> Value {
        serde_json::json!({
            "iss": self.issuer, "aud": "cooper-test", "sub": email, "email": email, "email_verified": true,
            "groups": ["sso-engineers"], "iat": now.unix_timestamp(), "exp": now.unix_timestamp() + 600,
        })
    }

    /// A token with `claims`, signed ES256 with the key `kid` (which may be one it never published).
    pub fn mint(&self, claims: &Value, kid: &str) -> String {
        let keys = self.keys.lock().unwrap();
        let der = match keys.iter().find(|(k, _, _)| k == kid) {
            Some((_, der, _)) => der.clone(),
            None => keys[0].1.clone(),
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(
            &header,
            claims,
            &jsonwebtoken::EncodingKey::from_ec_der(&der),
        )
        .unwrap()
    }
}

/// How a service misbehaves, through the fault proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 503, as a service that is down answers.
    Unavailable,
    /// The service's own throttling error.
    Throttled,
    /// STS refusing the keys a request was signed with (deactivated, or deleted).
    InvalidToken,
}

/// A rule: a service (SigV4 scope: dynamodb, sts, kms, sns, ssm), optionally one operation, and
/// optionally only requests whose body or signature mentions a string (a table name, the
/// access key id that signed it).
#[derive(Debug, Clone)]
struct FaultRule {
    service: String,
    operation: Option<String>,
    mentions: Option<String>,
    fault: Fault,
}

/// Forwards requests to moto unless a rule says the service is failing. Not a mock: every
/// request that passes reaches moto; the rest get the answer a failing AWS service gives.
#[derive(Clone)]
pub struct FaultProxy {
    pub url: String,
    rules: Arc<Mutex<Vec<FaultRule>>>,
    refused: Arc<AtomicUsize>,
    holds: Arc<Mutex<Vec<Arc<Hold>>>>,
    timeline: Timeline,
}

/// The calls the proxy forwarded while a test timed them: when each left and came back.
type Timeline = Arc<Mutex<Option<Vec<TimedCall>>>>;

/// One AWS call as the functions waited on it.
#[derive(Debug, Clone)]
pub struct TimedCall {
    pub service: String,
    pub operation: String,
    pub start: std::time::Instant,
    pub end: std::time::Instant,
}

/// The longest chain of calls each waiting for the one before (a call waits for another when
/// it left after the other came back): how many round trips deep the work was, and that chain.
pub fn sequential_depth(calls: &[TimedCall]) -> (usize, Vec<String>) {
    let mut calls: Vec<&TimedCall> = calls.iter().collect();
    calls.sort_by_key(|c| c.start);
    // Per call: the deepest chain ending with it, and the call before it there.
    let mut best: Vec<(usize, Option<usize>)> = Vec::with_capacity(calls.len());
    for (i, call) in calls.iter().enumerate() {
        let before = (0..i)
            .filter(|&j| calls[j].end <= call.start)
            .max_by_key(|&j| best[j].0);
        best.push((before.map_or(1, |j| best[j].0 + 1), before));
    }
    let Some(mut at) = (0..calls.len()).max_by_key(|&i| best[i].0) else {
        return (0, Vec::new());
    };
    let depth = best[at].0;
    let mut chain = vec![format!("{}:{}", calls[at].service, calls[at].operation)];
    while let Some(j) = best[at].1 {
        chain.push(format!("{}:{}", calls[j].service, calls[j].operation));
        at = j;
    }
    chain.reverse();
    (depth, chain)
}

/// Requests held back by the proxy until the test lets them go: to put another request's
/// effect between a request's read and its write.
pub struct Hold {
    mentions: String,
    gate: tokio::sync::Semaphore,
    held: AtomicUsize,
}

impl Hold {
    /// Lets every held request (and any later match) through.
    pub fn release(&self) {
        self.gate.add_permits(1_000);
    }

    /// Waits until `n` requests are being held.
    pub async fn until_holding(&self, n: usize) {
        for _ in 0..500 {
            if self.held.load(Ordering::SeqCst) >= n {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("no request was held for {:?}", self.mentions);
    }
}

impl FaultProxy {
    async fn start(moto: &str) -> Self {
        use axum::body::Bytes;
        use axum::extract::State;
        use axum::http::{HeaderMap, Method, Uri};
        let rules: Arc<Mutex<Vec<FaultRule>>> = Arc::default();
        let refused: Arc<AtomicUsize> = Arc::default();
        let holds: Arc<Mutex<Vec<Arc<Hold>>>> = Arc::default();
        let timeline: Timeline = Arc::default();
        #[derive(Clone)]
        struct Proxy {
            moto: String,
            http: reqwest::Client,
            rules: Arc<Mutex<Vec<FaultRule>>>,
            refused: Arc<AtomicUsize>,
            holds: Arc<Mutex<Vec<Arc<Hold>>>>,
            timeline: Timeline,
        }
        async fn forward(
            State(p): State<Proxy>,
            method: Method,
            uri: Uri,
            headers: HeaderMap,
            body: Bytes,
        ) -> axum::response::Response {
            use axum::response::IntoResponse;
            let start = std::time::Instant::now();
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let service = auth
                .split("Credential=")
                .nth(1)
                .and_then(|c| c.split('/').nth(3))
                .unwrap_or_default()
                .to_owned();
            let text = String::from_utf8_lossy(&body);
            let operation = headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .and_then(|t| t.rsplit('.').next())
                .map(str::to_owned)
                .or_else(|| {
                    text.split('&')
                        .find_map(|kv| kv.strip_prefix("Action="))
                        .map(str::to_owned)
                })
                .unwrap_or_default();
            let rule = p
                .rules
                .lock()
                .unwrap()
                .iter()
                .find(|r| {
                    r.service == service
                        && r.operation.as_deref().is_none_or(|o| o == operation)
                        && r.mentions
                            .as_deref()
                            .is_none_or(|m| text.contains(m) || auth.contains(m))
                })
                .cloned();
            // While timed, every call takes a while: so calls started side by side overlap
            // whatever the order they were sent in, and a chain shows only real waiting.
            if p.timeline.lock().unwrap().is_some() {
                tokio::time::sleep(std::time::Duration::from_millis(40)).await;
            }
            let hold = p
                .holds
                .lock()
                .unwrap()
                .iter()
                .find(|h| text.contains(&h.mentions))
                .cloned();
            if let Some(hold) = hold {
                hold.held.fetch_add(1, Ordering::SeqCst);
                hold.gate.acquire().await.unwrap().forget();
            }
            if let Some(rule) = rule {
                p.refused.fetch_add(1, Ordering::SeqCst);
                let query = matches!(service.as_str(), "sts" | "sns" | "iam");
                let (status, code) = match rule.fault {
                    Fault::Unavailable => (503, "ServiceUnavailable"),
                    Fault::InvalidToken => (403, "InvalidClientTokenId"),
                    Fault::Throttled if service == "dynamodb" => {
                        (400, "ProvisionedThroughputExceededException")
                    }
                    Fault::Throttled => (
                        400,
                        if query {
                            "Throttling"
                        } else {
                            "ThrottlingException"
                        },
                    ),
                };
                let body = if query {
                    format!(
                        "<ErrorResponse><Error><Type>Receiver</Type><Code>{code}</Code><Message>injected</Message></Error><RequestId>fault</RequestId></ErrorResponse>"
                    )
                } else {
                    format!(r#"{{"__type":"com.amazonaws.{service}#{code}","message":"injected"}}"#)
                };
                let content_type = if query {
                    "text/xml"
                } else {
                    "application/x-amz-json-1.0"
                };
                return (
                    axum::http::StatusCode::from_u16(status).unwrap(),
                    [("content-type", content_type)],
                    body,
                )
                    .into_response();
            }
            let mut request = p.http.request(
                method,
                format!(
                    "{}{}",
                    p.moto,
                    uri.path_and_query().map(|x| x.as_str()).unwrap_or("/")
                ),
            );
            for (name, value) in headers.iter() {
                if name != "host" && name != "content-length" {
                    request = request.header(name, value);
                }
            }
            let response = request.body(body).send().await.unwrap();
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = response.bytes().await.unwrap();
            let mut out = (status, bytes).into_response();
            for (name, value) in headers.iter() {
                if name != "content-length" && name != "transfer-encoding" && name != "connection" {
                    out.headers_mut().insert(name, value.clone());
                }
            }
            if let Some(timeline) = p.timeline.lock().unwrap().as_mut() {
                timeline.push(TimedCall {
                    service,
                    operation,
                    start,
                    end: std::time::Instant::now(),
                });
            }
            out
        }
        let state = Proxy {
            moto: moto.to_owned(),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
            rules: rules.clone(),
            refused: refused.clone(),
            holds: holds.clone(),
            timeline: timeline.clone(),
        };
        let app = axum::Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url,
            rules,
            refused,
            holds,
            timeline,
        }
    }

    /// Runs `f`, timing every call the functions make meanwhile (one timing at a time).
    pub async fn timed<T>(&self, f: impl std::future::Future<Output = T>) -> (T, Vec<TimedCall>) {
        *self.timeline.lock().unwrap() = Some(Vec::new());
        let out = f.await;
        let calls = self.timeline.lock().unwrap().take().unwrap_or_default();
        (out, calls)
    }

    /// Holds back every request whose body mentions `mentions` until the hold is released.
    pub fn hold(&self, mentions: &str) -> Arc<Hold> {
        let hold = Arc::new(Hold {
            mentions: mentions.to_owned(),
            gate: tokio::sync::Semaphore::new(0),
            held: AtomicUsize::new(0),
        });
        self.holds.lock().unwrap().push(hold.clone());
        hold
    }

    /// `service` (all its operations) fails as `fault`.
    pub fn fail(&self, service: &str, fault: Fault) {
        self.fail_only(service, None, None, fault);
    }

    /// Only `operation` of `service` fails, and only when the request mentions `mentions`.
    pub fn fail_only(
        &self,
        service: &str,
        operation: Option<&str>,
        mentions: Option<&str>,
        fault: Fault,
    ) {
        self.rules.lock().unwrap().push(FaultRule {
            service: service.to_owned(),
            operation: operation.map(str::to_owned),
            mentions: mentions.map(str::to_owned),
            fault,
        });
    }

    /// Everything works again.
    pub fn heal(&self) {
        self.rules.lock().unwrap().clear();
    }

    /// How many requests the proxy refused.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}

/// A request id for a test's own changes: unique enough within a run.
pub fn uuid_like() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}
