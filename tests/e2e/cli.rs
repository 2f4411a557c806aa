//! The `cooper` binary against moto: setup (twice), serve, a request with the demo token,
//! encrypt, and a clear start-up error when configuration is missing.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

use cooper_aws::kms::KmsVault;
use cooper_core::model::Sealed;
use cooper_core::ports::KeyVault;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use std::path::PathBuf;

use crate::harness::{FakeSignin, Moto, NoticeInbox, REGION, pyotp_code, sdk_for};

pub(crate) fn cooper(moto: &Moto) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cooper"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("COOPER_LOG", "warn");
    command
}

pub(crate) fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "cooper failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `cooper serve` on a free port; returns the process and its base URL.
fn serve(moto: &Moto) -> (ServeGuard, String) {
    let mut child = cooper(moto)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("cooper serve exited early").unwrap();
        if let Some(rest) = line.strip_prefix("cooper serving on ") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    (ServeGuard(child), url)
}

pub(crate) struct ServeGuard(pub(crate) Child);

impl Drop for ServeGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn setup_twice_then_serve_and_the_demo_token_gets_credentials() {
    let moto = Moto::start();

    let first: Value =
        serde_json::from_slice(&run(cooper(&moto).args(["setup", "--json"])).stdout).unwrap();
    assert!(
        first["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["created"] == true),
        "{first}"
    );
    // The directory was seeded through the audited use cases, as the operator: one record per
    // item created, each naming the AWS principal that ran setup.
    let sdk = sdk_for(&moto.endpoint).await;
    let operator_records = || async {
        cooper_aws::aws_sdk_dynamodb::Client::new(&sdk)
            .scan()
            .table_name("cooper-audit")
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default()
            .into_iter()
            .filter(|i| i["actor"].as_s().unwrap() == "operator")
            .collect::<Vec<_>>()
    };
    let seeded = operator_records().await;
    let created_items = first["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            ![
                "directory table",
                "audit table",
                "KMS key",
                "JWT signing key",
                "broker keys",
            ]
            .contains(&s["what"].as_str().unwrap())
        })
        .count();
    // Every seeded item, and the two tokens and two enrollment codes.
    assert_eq!(seeded.len(), created_items + 4, "{seeded:?}");
    assert!(seeded.iter().all(|i| {
        i["event"].as_s().unwrap() == "admin.change"
            && i["auth"].as_s().unwrap().starts_with("aws:arn:aws:")
    }));

    // Safe to re-run: everything is kept, nothing is written, and no token is minted again.
    let second: Value =
        serde_json::from_slice(&run(cooper(&moto).args(["setup", "--json"])).stdout).unwrap();
    assert!(
        second["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["created"] == false),
        "{second}"
    );
    assert!(second.get("admin_token").is_none(), "{second}");
    assert!(second["demo"].get("token").is_none(), "{second}");
    assert_eq!(operator_records().await.len(), seeded.len());
    let demo = &first["demo"];
    let token = demo["token"].as_str().unwrap();

    // The human-readable form shows the curl line, and says the token is not shown again.
    let text = String::from_utf8(run(cooper(&moto).arg("setup")).stdout).unwrap();
    assert!(
        text.contains("curl -s -H 'Authorization: Bearer <token>'"),
        "{text}"
    );
    assert!(text.contains("cooper token issue --user demo"), "{text}");

    let (_server, url) = serve(&moto);
    let http = reqwest::Client::new();
    let ask = |target: &str| {
        http.post(format!("{url}/v1/credentials"))
            .bearer_auth(token)
            .json(&json!({ "target": target }))
            .send()
    };
    for target in [&demo["target"], &demo["federated_target"]] {
        let answer = ask(target.as_str().unwrap()).await.unwrap();
        assert_eq!(answer.status(), 200, "{target}");
        let body: Value = answer.json().await.unwrap();
        assert!(body["access_key_id"].as_str().unwrap().len() >= 16);
    }
    let answer = ask(demo["denied_target"].as_str().unwrap()).await.unwrap();
    assert_eq!(answer.status(), 403);

    // The admin's token works too: re-running setup signed nobody out.
    let answer = http
        .get(format!("{url}/v1/whoami"))
        .bearer_auth(first["admin_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn encrypt_seals_keys_that_only_open_as_federation_keys() {
    let moto = Moto::start();
    run(cooper(&moto).args(["setup", "--no-demo"]));
    let keys = "AKIAIOSFODNN7EXAMPLE|wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let sealed_for = ["--account", "111111111111", "--target", "a-fed"];
    let encrypt = |extra: &[&str]| {
        let mut c = cooper(&moto);
        c.args(["encrypt", "--kms-key", "alias/cooper"])
            .args(sealed_for)
            .args(extra);
        c
    };

    let from_arg = run(&mut encrypt(&[keys]));
    let blob = String::from_utf8(from_arg.stdout)
        .unwrap()
        .trim()
        .to_owned();
    assert!(!blob.contains("wJalrXUtn"));

    let sdk = sdk_for(&moto.endpoint).await;
    let kms = cooper_aws::aws_sdk_kms::Client::new(&sdk);
    let binding = |account: &str, target: &str| cooper_core::ports::FederationBinding {
        account: cooper_core::names::AccountId::parse(account).unwrap(),
        target: cooper_core::names::TargetName::parse(target).unwrap(),
    };
    let vault = KmsVault::new(kms.clone());
    let sealed = Sealed::parse(&blob).unwrap();
    let opened = vault
        .open_federation_keys(&sealed, &binding("111111111111", "a-fed"))
        .await
        .unwrap();
    // Sealed for that target of that account: it opens for no other.
    for (account, target) in [("111111111111", "a-other"), ("222222222222", "a-fed")] {
        assert!(
            vault
                .open_federation_keys(&sealed, &binding(account, target))
                .await
                .is_err(),
            "opened for {account}/{target}"
        );
    }
    assert_eq!(opened.access_key_id, "AKIAIOSFODNN7EXAMPLE");
    assert_eq!(
        opened.secret_access_key.expose_secret(),
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    );

    // Bound to its purpose: without the encryption context, KMS will not decrypt it.
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&blob)
        .unwrap();
    let plain = kms
        .decrypt()
        .ciphertext_blob(cooper_aws::aws_sdk_kms::primitives::Blob::new(raw))
        .send()
        .await;
    assert!(plain.is_err());

    // From stdin, so the keys stay out of shell history.
    let mut child = encrypt(&[])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(child.stdin.take().unwrap(), "{keys}").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert!(!String::from_utf8(output.stdout).unwrap().trim().is_empty());

    // Not in the AKID|SECRET form: refused, and the input is not echoed.
    let output = encrypt(&["just-a-secret-value"]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("ACCESS_KEY_ID|SECRET_ACCESS_KEY"),
        "{stderr}"
    );
    assert!(!stderr.contains("just-a-secret-value"));
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_without_setup_names_the_missing_parameters() {
    let moto = Moto::start();
    let output = cooper(&moto)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("/cooper/jwt/signing-key"), "{stderr}");
    assert!(stderr.contains("/cooper/broker/access-key-id"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_issued_listed_and_revoked_at_once() {
    let moto = Moto::start();
    run(cooper(&moto).args(["setup", "--json"]));
    let issued: Value = serde_json::from_slice(
        &run(cooper(&moto).args([
            "token", "issue", "--user", "demo", "--days", "7", "--label", "ci", "--json",
        ]))
        .stdout,
    )
    .unwrap();
    let token = issued["token"].as_str().unwrap();
    let id = issued["id"].as_str().unwrap();

    let (_server, url) = serve(&moto);
    let http = reqwest::Client::new();
    let whoami = || {
        http.get(format!("{url}/v1/whoami"))
            .bearer_auth(token)
            .send()
    };
    let answer = whoami().await.unwrap();
    assert_eq!(answer.status(), 200);
    let me: Value = answer.json().await.unwrap();
    assert_eq!(me["token_id"], id);

    run(cooper(&moto).args(["token", "revoke", id]));
    let answer = whoami().await.unwrap();
    assert_eq!(answer.status(), 401);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "token_revoked");

    let listed: Value = serde_json::from_slice(
        &run(cooper(&moto).args(["token", "list", "--user", "demo", "--json"])).stdout,
    )
    .unwrap();
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap();
    assert_eq!(row["revoked"], true);
    assert_eq!(row["label"], "ci");
    assert!(
        !listed.to_string().contains(token),
        "listing never shows a token"
    );

    // Both changes went through the admin use cases: audited, as the operator who ran them.
    let records = cooper_aws::aws_sdk_dynamodb::Client::new(&sdk_for(&moto.endpoint).await)
        .scan()
        .table_name("cooper-audit")
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    let by_operator = |action: &str, resource: &str| {
        records
            .iter()
            .filter(|i| {
                i["actor"].as_s().unwrap() == "operator"
                    && i.get("action")
                        .and_then(|a| a.as_s().ok())
                        .map(String::as_str)
                        == Some(action)
                    && i.get("resource")
                        .and_then(|a| a.as_s().ok())
                        .map(String::as_str)
                        == Some(resource)
            })
            .count()
    };
    assert_eq!(by_operator("revoke", &format!("token:{id}")), 1);
    // setup's demo token, and this one.
    assert_eq!(by_operator("issue_token", "user:demo"), 2);

    // Unknown users and tokens are refused with a clear message.
    let output = cooper(&moto)
        .args(["token", "issue", "--user", "nobody"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("user nobody does not exist"));
    let output = cooper(&moto)
        .args(["token", "revoke", "0123456789abcdef"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("does not exist"));
}

/// Three operations in a row that each need a code of a later step than the last use the steps
/// one before, at and one after now (all within the accepted skew), away from a step boundary:
/// `at(-30)`, `at(0)`, `at(30)`.
fn code_steps() -> impl Fn(i64) -> time::OffsetDateTime {
    use std::time::{SystemTime, UNIX_EPOCH};
    let mut now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if now % 30 > 24 {
        std::thread::sleep(std::time::Duration::from_secs(31 - now % 30));
        now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
    }
    move |offset: i64| time::OffsetDateTime::from_unix_timestamp(now as i64 + offset).unwrap()
}

/// `cooper enroll --code` (the `enroll` command given) with the one-time `code` from the
/// environment: reads the printed URI, answers with the first code (of step `at(-30)`) and a
/// first password ("a long demo passphrase"). Returns the code steps and the URI.
fn enroll_with_code(
    mut enroll: Command,
    code: &str,
) -> (impl Fn(i64) -> time::OffsetDateTime, String) {
    let at = code_steps();
    let password = "a long demo passphrase";
    let mut child = enroll
        .env("COOPER_ENROLLMENT_CODE", code)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let uri = loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "no otpauth URI printed"
        );
        if let Some(uri) = line.trim().strip_prefix("otpauth URI: ") {
            break uri.to_owned();
        }
    };
    {
        use std::io::Write;
        writeln!(
            child.stdin.take().unwrap(),
            "{}\n{password}\n{password}",
            pyotp_code(&uri, at(-30))
        )
        .unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (at, uri)
}

/// Runs `cooper` with `input` on stdin; returns stdout, or panics with stderr.
fn run_with_input(command: &mut Command, input: &str) -> String {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "cooper failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn enroll_password_login_and_approve_from_the_command_line() {
    use std::os::unix::fs::PermissionsExt;

    let moto = Moto::start();
    let setup: Value =
        serde_json::from_slice(&run(cooper(&moto).args(["setup", "--json"])).stdout).unwrap();
    let enrollment_code = setup["demo"]["enrollment_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_server, url) = serve(&moto);
    let config = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli-config-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&config);
    let client = |args: &[&str]| {
        let mut c = cooper(&moto);
        c.args(args)
            .args(["--endpoint", &url])
            .env("COOPER_CONFIG_DIR", &config);
        c
    };

    let (at, uri) = enroll_with_code(client(&["enroll", "--code", "--no-qr"]), &enrollment_code);
    let password = "a long demo passphrase";

    run_with_input(
        &mut client(&["login", "--user", "demo"]),
        &format!("{password}\n{}\n", pyotp_code(&uri, at(0))),
    );
    // Changing the password takes the signed-in session (saved by login) and a fresh code.
    let changed = "another long demo passphrase";
    run_with_input(
        &mut client(&["password"]),
        &format!("{changed}\n{changed}\n{}\n", pyotp_code(&uri, at(30))),
    );

    // The session is kept for the owner only, and works.
    let session_file = config.join("sessions/default.json");
    let mode = std::fs::metadata(&session_file)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let session: Value = serde_json::from_slice(&std::fs::read(&session_file).unwrap()).unwrap();
    let me = reqwest::Client::new()
        .get(format!("{url}/v1/whoami"))
        .bearer_auth(session["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    // `cooper approve` (using the saved session) reports the server's refusal plainly.
    let output = client(&["approve", &"0".repeat(32)]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("approval_not_found") && stderr.contains("HTTP 404"),
        "{stderr}"
    );

    // `cooper logout` ends the session at cooper (a copy of the token stops working) and forgets it.
    run(&mut client(&["logout"]));
    assert!(!session_file.exists());
    let me = reqwest::Client::new()
        .get(format!("{url}/v1/whoami"))
        .bearer_auth(session["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401);
    assert_eq!(
        me.json::<Value>().await.unwrap()["error"]["code"],
        "session_revoked"
    );
    let output = client(&["logout"]).output().unwrap();
    assert!(output.status.success(), "logging out twice is fine");
    let _ = std::fs::remove_dir_all(&config);
}

/// Just-in-time access from the terminal: the demo user asks for the demo's top target (setup
/// makes it requestable from the first admin), the admin enrolls, signs in, sees it waiting and
/// approves it with a code; the demo user then gets credentials, and gives the access up.
#[tokio::test(flavor = "multi_thread")]
async fn ask_for_access_approve_it_use_it_and_give_it_up_from_the_command_line() {
    let moto = Moto::start();
    let setup: Value =
        serde_json::from_slice(&run(cooper(&moto).args(["setup", "--json"])).stdout).unwrap();
    let demo = setup["demo"]["token"].as_str().unwrap().to_owned();
    let top = setup["demo"]["denied_target"].as_str().unwrap().to_owned();
    let admin_code = setup["admin_enrollment_code"].as_str().unwrap().to_owned();
    let (_server, url) = serve(&moto);
    let config = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli-access-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&config);
    let client = |args: &[&str]| {
        let mut c = cooper(&moto);
        c.args(args)
            .args(["--endpoint", &url])
            .env("COOPER_CONFIG_DIR", &config);
        c
    };
    let as_demo = |args: &[&str]| -> Value {
        let mut c = client(args);
        c.args(["--token", &demo, "--json"]);
        serde_json::from_slice(&run(&mut c).stdout).unwrap()
    };

    let refused = client(&["get", &top, "--token", &demo]).output().unwrap();
    assert!(!refused.status.success());
    let asked = as_demo(&[
        "access",
        "request",
        &top,
        "--duration",
        "30m",
        "--reason",
        "rotate the demo keys",
    ]);
    assert_eq!(asked["status"], "pending", "{asked}");
    assert_eq!(asked["duration_seconds"], 1800);
    let id = asked["id"].as_str().unwrap().to_owned();

    let (at, uri) = enroll_with_code(client(&["enroll", "--code", "--no-qr"]), &admin_code);
    run_with_input(
        &mut client(&["login", "--user", "admin"]),
        &format!("a long demo passphrase\n{}\n", pyotp_code(&uri, at(0))),
    );
    let waiting = client(&["access", "list", "--approver", "--state", "pending"])
        .output()
        .unwrap();
    assert!(waiting.status.success());
    let waiting = String::from_utf8_lossy(&waiting.stdout);
    assert!(
        waiting.contains(&id) && waiting.contains("demo"),
        "{waiting}"
    );
    let approved = run_with_input(
        &mut client(&["access", "approve", &id, "--duration", "30m"]),
        &format!("{}\n", pyotp_code(&uri, at(30))),
    );
    assert!(approved.contains("Approved: demo holds"), "{approved}");

    let credentials = client(&["get", &top, "--token", &demo, "--format", "json"])
        .output()
        .unwrap();
    assert!(
        credentials.status.success(),
        "{}",
        String::from_utf8_lossy(&credentials.stderr)
    );
    let shown = as_demo(&["access", "show", &id]);
    assert_eq!(shown["status"], "approved");
    assert_eq!(shown["decided_by"], "admin");

    let ended = as_demo(&["access", "cancel", &id, "--reason", "done"]);
    assert_eq!(ended["status"], "ended");
    let after = client(&["get", &top, "--token", &demo]).output().unwrap();
    assert!(!after.status.success());
    assert!(
        String::from_utf8_lossy(&after.stderr).contains("not_granted"),
        "{}",
        String::from_utf8_lossy(&after.stderr)
    );
    let _ = std::fs::remove_dir_all(&config);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_admin_from_setup_administers_through_cooper_admin() {
    let moto = Moto::start();
    let setup: Value =
        serde_json::from_slice(&run(cooper(&moto).args(["setup", "--json"])).stdout).unwrap();
    let admin = setup["admin_token"].as_str().unwrap().to_owned();
    assert_eq!(setup["admin_user"], "admin");
    let (_server, url) = serve(&moto);
    let admin_cli = |args: &[&str]| -> Value {
        let mut c = cooper(&moto);
        c.arg("admin")
            .args(args)
            .args(["--endpoint", &url, "--token", &admin]);
        serde_json::from_slice(&run(&mut c).stdout).unwrap()
    };

    let accounts = admin_cli(&["accounts", "list"]);
    assert_eq!(accounts["items"][0]["account"]["id"], "111111111111");
    admin_cli(&[
        "users",
        "create",
        "--json",
        r#"{"name": "carol", "display_name": "Carol"}"#,
    ]);
    admin_cli(&[
        "grants",
        "create",
        "--json",
        r#"{"principal": {"user": "carol"}, "target": "demo-readonly"}"#,
    ]);
    let grants = admin_cli(&["grants", "list", "--user", "carol"]);
    assert_eq!(grants["items"][0]["target"], "demo-readonly");

    // An update without --if-match sends the version it reads first.
    let target = admin_cli(&["targets", "get", "demo-readonly"]);
    let mut body = target.clone();
    body.as_object_mut().unwrap().remove("version");
    body["description"] = json!("edited from the CLI");
    let updated = admin_cli(&[
        "targets",
        "update",
        "demo-readonly",
        "--json",
        &body.to_string(),
    ]);
    assert_eq!(updated["version"], target["version"].as_u64().unwrap() + 1);

    let issued = admin_cli(&["users", "issue-token", "carol", "--label", "ci"]);
    let carol = issued["token"].as_str().unwrap();
    let answer = reqwest::Client::new()
        .post(format!("{url}/v1/credentials"))
        .bearer_auth(carol)
        .json(&json!({"target": "demo-readonly"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let key = answer.json::<Value>().await.unwrap()["access_key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let holder = admin_cli(&["audit", "--access-key-id", &key]);
    assert_eq!(holder["items"][0]["actor"], "carol");

    // Revoking carol's AWS sessions: the demo role is not in (moto's) IAM, so the deny cannot be
    // written there; the command prints the answer and fails, saying to run it again.
    let mut c = cooper(&moto);
    c.args([
        "admin",
        "revoke-sessions",
        "carol",
        "--endpoint",
        &url,
        "--token",
        &admin,
    ]);
    let output = c.output().unwrap();
    assert!(!output.status.success());
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["complete"], false, "{answer}");
    assert_eq!(answer["holders"][0]["targets"], json!(["demo-readonly"]));
    assert!(String::from_utf8_lossy(&output.stderr).contains("run it again"));
    // Disabling her: the user is disabled (and her sessions ended) whatever IAM says.
    let mut c = cooper(&moto);
    c.args([
        "admin",
        "users",
        "disable",
        "carol",
        "--endpoint",
        &url,
        "--token",
        &admin,
    ]);
    let disabled: Value = serde_json::from_slice(&run(&mut c).stdout).unwrap();
    assert_eq!(disabled["enabled"], false);
    assert_eq!(admin_cli(&["users", "get", "carol"])["enabled"], false);

    // Refusals come back as the server's code, on stderr.
    let mut c = cooper(&moto);
    c.args([
        "admin",
        "accounts",
        "get",
        "999999999999",
        "--endpoint",
        &url,
        "--token",
        &admin,
    ]);
    let output = c.output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not_found, HTTP 404"));
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_announces_audit_records_and_console_prints_a_sign_in_link() {
    let moto = Moto::start();
    let setup: Value =
        serde_json::from_slice(&run(cooper(&moto).args(["setup", "--json"])).stdout).unwrap();
    let token = setup["demo"]["token"].as_str().unwrap().to_owned();
    let sdk = sdk_for(&moto.endpoint).await;
    let inbox = NoticeInbox::subscribe(&sdk, setup["notify_topic_arn"].as_str().unwrap()).await;
    let signin = FakeSignin::start().await;

    let mut child = cooper(&moto)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--signin-endpoint",
            &signin.url,
        ])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("cooper serve exited early").unwrap();
        if let Some(rest) = line.strip_prefix("cooper serving on ") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let _server = ServeGuard(child);

    let printed = run(cooper(&moto).args([
        "console",
        "demo-readonly",
        "--print",
        "--endpoint",
        &url,
        "--token",
        &token,
    ]));
    let link = String::from_utf8(printed.stdout).unwrap();
    assert!(
        link.trim()
            .starts_with("https://signin.aws.amazon.com/federation?Action=login&Issuer=cooper"),
        "{link}"
    );
    assert_eq!(signin.requests().len(), 1);

    // `cooper serve` follows the audit stream: the console link is announced.
    let mut notices = Vec::new();
    for _ in 0..20 {
        notices.extend(inbox.drain().await);
        if notices
            .iter()
            .any(|(s, _): &(String, String)| s.contains("opened the console"))
        {
            break;
        }
    }
    let (subject, body) = notices
        .iter()
        .find(|(s, _)| s.contains("opened the console"))
        .expect("no notice arrived");
    assert_eq!(
        subject,
        "cooper: demo opened the console as demo-readonly in 111111111111"
    );
    assert!(!body.contains("signin-token"), "the link is a secret");
}

fn aws_cli() -> PathBuf {
    crate::harness::repo_root().join(".venv/bin/aws")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_aws_cli_gets_credentials_through_credential_process_then_from_the_cache() {
    use std::os::unix::fs::PermissionsExt;
    let moto = Moto::start();
    let setup: Value =
        serde_json::from_slice(&run(cooper(&moto).args(["setup", "--json"])).stdout).unwrap();
    let token = setup["demo"]["token"].as_str().unwrap().to_owned();
    let (server, url) = serve(&moto);
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("aws-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("aws-config"),
        format!(
            "[profile cooper-demo]\ncredential_process = {} credential-process demo-readonly --endpoint {url}\nregion = us-east-1\n",
            env!("CARGO_BIN_EXE_cooper")
        ),
    )
    .unwrap();
    let caller_identity = || {
        let output = Command::new(aws_cli())
            .args([
                "sts",
                "get-caller-identity",
                "--profile",
                "cooper-demo",
                "--output",
                "json",
            ])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_CONFIG_FILE", dir.join("aws-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("no-credentials"))
            .env("AWS_ENDPOINT_URL", &moto.endpoint)
            .env("COOPER_TOKEN", &token)
            .env("COOPER_CONFIG_DIR", &dir)
            .env("COOPER_LOG", "warn")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "aws failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    };

    let me = caller_identity();
    assert_eq!(
        me["Arn"],
        "arn:aws:sts::111111111111:assumed-role/cooper-demo-readonly/demo"
    );

    // cooper is gone: the second call is answered from the cache, with no request to cooper.
    drop(server);
    let again = caller_identity();
    assert_eq!(again["Arn"], me["Arn"]);
    let cached: Vec<_> = std::fs::read_dir(dir.join("cache"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(cached.len(), 1);
    assert_eq!(
        std::fs::metadata(&cached[0]).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // (and cooper really is gone: asking it directly fails)
    let direct = cooper(&moto)
        .args([
            "credential-process",
            "demo-readonly",
            "--no-cache",
            "--endpoint",
            &url,
            "--token",
            &token,
        ])
        .env("COOPER_CONFIG_DIR", &dir)
        .output()
        .unwrap();
    assert!(!direct.status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_passes_working_credentials_and_get_prints_them() {
    let moto = Moto::start();
    let setup: Value =
        serde_json::from_slice(&run(cooper(&moto).args(["setup", "--json"])).stdout).unwrap();
    let token = setup["demo"]["token"].as_str().unwrap().to_owned();
    let (_server, url) = serve(&moto);
    let exec = |command: &[&str]| {
        let mut c = cooper(&moto);
        c.args([
            "exec",
            "demo-readonly",
            "--endpoint",
            &url,
            "--token",
            &token,
            "--",
        ])
        .args(command);
        c.env("AWS_DEFAULT_REGION", REGION).output().unwrap()
    };

    let aws = aws_cli();
    let output = exec(&[
        aws.to_str().unwrap(),
        "sts",
        "get-caller-identity",
        "--output",
        "json",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let me: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        me["Arn"],
        "arn:aws:sts::111111111111:assumed-role/cooper-demo-readonly/demo"
    );
    // The child's exit status is cooper's.
    assert_eq!(exec(&["sh", "-c", "exit 7"]).status.code(), Some(7));
    // The child gets the target's credentials, not cooper's bearer token.
    let mut with_env_token = cooper(&moto);
    with_env_token
        .args([
            "exec",
            "demo-readonly",
            "--endpoint",
            &url,
            "--",
            "sh",
            "-c",
        ])
        .arg("test -z \"$COOPER_TOKEN\" && test -n \"$AWS_SESSION_TOKEN\"")
        .env("COOPER_TOKEN", &token);
    assert!(
        with_env_token.status().unwrap().success(),
        "COOPER_TOKEN reached the child"
    );

    let get = |format: &str| {
        let mut c = cooper(&moto);
        c.args([
            "get",
            "demo-readonly",
            "--format",
            format,
            "--endpoint",
            &url,
            "--token",
            &token,
        ]);
        String::from_utf8(run(&mut c).stdout).unwrap()
    };
    let exports = get("export");
    assert!(
        exports
            .lines()
            .next()
            .unwrap()
            .starts_with("export AWS_ACCESS_KEY_ID='ASIA"),
        "{exports}"
    );
    assert_eq!(exports.lines().count(), 4);
    let process: Value = serde_json::from_str(&get("credential_process")).unwrap();
    assert_eq!(process["Version"], 1);
    assert!(get("ini").starts_with("[demo-readonly]\naws_access_key_id = "));

    // Errors a person understands, with the server's code.
    let mut c = cooper(&moto);
    c.args(["get", "demo-admin", "--endpoint", &url, "--token", &token]);
    let output = c.output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not_granted, HTTP 403"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn profiles_name_deployments_in_the_config_file() {
    let moto = Moto::start();
    let setup: Value =
        serde_json::from_slice(&run(cooper(&moto).args(["setup", "--json"])).stdout).unwrap();
    let token = setup["demo"]["token"].as_str().unwrap().to_owned();
    let (_server, url) = serve(&moto);
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("profiles-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        format!("default_profile = \"local\"\n\n[profiles.local]\nendpoint = \"{url}\"\n\n[profiles.elsewhere]\nendpoint = \"http://127.0.0.1:9\"\n"),
    )
    .unwrap();
    let whoami = |profile: Option<&str>| {
        let mut c = cooper(&moto);
        c.args(["whoami", "--json", "--token", &token])
            .env("COOPER_CONFIG_DIR", &dir);
        if let Some(p) = profile {
            c.args(["--profile", p]);
        }
        c.output().unwrap()
    };
    let default = whoami(None);
    assert!(
        default.status.success(),
        "{}",
        String::from_utf8_lossy(&default.stderr)
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&default.stdout).unwrap()["user"],
        "demo"
    );
    let elsewhere = whoami(Some("elsewhere"));
    assert!(!elsewhere.status.success());
    assert!(String::from_utf8_lossy(&elsewhere.stderr).contains("cannot reach cooper"));
    let unknown = whoami(Some("nowhere"));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no profile nowhere"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// What the child of `cooper exec --server` sees: who it is to STS through boto3's own
/// container-credentials provider (twice, the second time after the first credentials were
/// due, so fetched again without the child doing anything), which key it used each time, that
/// it holds no static keys, and how the endpoint answers requests that must be refused.
const ENDPOINT_CHILD: &str = r#"
import json, os, sys, time, urllib.error, urllib.request
import boto3
session = boto3.Session(region_name="us-east-1")
sts = session.client("sts")
first = sts.get_caller_identity()["Arn"]
k1 = session.get_credentials().get_frozen_credentials().access_key
time.sleep(float(sys.argv[1]))
second = sts.get_caller_identity()["Arn"]
k2 = session.get_credentials().get_frozen_credentials().access_key
uri = os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
token = os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
port = uri.split(":")[2].split("/")[0]
def status(headers):
    try:
        return urllib.request.urlopen(urllib.request.Request(uri, headers=headers)).status
    except urllib.error.HTTPError as e:
        return e.code
print(json.dumps({
    "first": first, "second": second, "k1": k1, "k2": k2,
    "static_keys": "AWS_ACCESS_KEY_ID" in os.environ or "COOPER_TOKEN" in os.environ,
    "good": status({"Authorization": token}),
    "no_token": status({}),
    "wrong_token": status({"Authorization": "0" * len(token)}),
    "origin": status({"Authorization": token, "Origin": "https://evil.example"}),
    "browser": status({"Authorization": token, "User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"}),
    "host": status({"Authorization": token, "Host": "evil.example:" + port}),
}), flush=True)
sys.exit(7)
"#;

#[tokio::test(flavor = "multi_thread")]
async fn exec_server_hands_sdks_credentials_that_renew_themselves_and_refuses_strangers() {
    let moto = Moto::start();
    let setup: Value =
        serde_json::from_slice(&run(cooper(&moto).args(["setup", "--json"])).stdout).unwrap();
    let token = setup["demo"]["token"].as_str().unwrap().to_owned();
    let (_server, url) = serve(&moto);
    let python = crate::harness::repo_root().join(".venv/bin/python");
    // Fifteen-minute credentials, due again 898 seconds before they end: two seconds after
    // each fetch (waiting for real expiry would take a quarter of an hour).
    let output = cooper(&moto)
        .args([
            "exec",
            "demo-readonly",
            "--server",
            "--duration",
            "900",
            "--refresh-before",
            "898",
            "--endpoint",
            &url,
            "--",
        ])
        .arg(&python)
        .args(["-c", ENDPOINT_CHILD, "4"])
        .env("COOPER_TOKEN", &token)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(7),
        "the child's exit code: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    let me = "arn:aws:sts::111111111111:assumed-role/cooper-demo-readonly/demo";
    assert_eq!(
        (seen["first"].as_str(), seen["second"].as_str()),
        (Some(me), Some(me))
    );
    assert_ne!(
        seen["k1"], seen["k2"],
        "fresh credentials, fetched on their own: {seen}"
    );
    assert_eq!(seen["static_keys"], false);
    assert_eq!(seen["good"], 200);
    for refused in ["no_token", "wrong_token", "origin", "browser", "host"] {
        assert_eq!(seen[refused], 403, "{refused}: {seen}");
    }

    // The AWS CLI, as the child, is who it should be too.
    let output = cooper(&moto)
        .args([
            "exec",
            "demo-readonly",
            "--server",
            "--endpoint",
            &url,
            "--",
        ])
        .arg(aws_cli())
        .args([
            "sts",
            "get-caller-identity",
            "--region",
            "us-east-1",
            "--output",
            "json",
        ])
        .env("COOPER_TOKEN", &token)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let me_cli: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(me_cli["Arn"], me);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signal_sent_to_cooper_exec_reaches_the_child_and_its_exit_code_comes_back() {
    let moto = Moto::start();
    let setup: Value =
        serde_json::from_slice(&run(cooper(&moto).args(["setup", "--json"])).stdout).unwrap();
    let token = setup["demo"]["token"].as_str().unwrap().to_owned();
    let (_server, url) = serve(&moto);
    let python = crate::harness::repo_root().join(".venv/bin/python");
    let child_code = "import signal, sys, time\n\
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(42))\n\
        print('ready', flush=True)\n\
        time.sleep(60)\n\
        sys.exit(3)\n";
    for server in [false, true] {
        let mut command = cooper(&moto);
        command.args(["exec", "demo-readonly", "--endpoint", &url]);
        if server {
            command.arg("--server");
        }
        let mut child = command
            .arg("--")
            .arg(&python)
            .args(["-c", child_code])
            .env("COOPER_TOKEN", &token)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        let killed = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(42), "server mode: {server}");
    }
}

/// A target that needs a second person, from the terminal: the approver next to you types
/// their code at the prompt; `credential_process` (no terminal) says what to run instead, at
/// once; an asynchronous request is listed with its state.
#[tokio::test(flavor = "multi_thread")]
async fn an_approval_gated_target_from_the_command_line() {
    let moto = Moto::start();
    let setup: Value =
        serde_json::from_slice(&run(cooper(&moto).args(["setup", "--json"])).stdout).unwrap();
    let demo = setup["demo"]["token"].as_str().unwrap().to_owned();
    let admin = setup["admin_token"].as_str().unwrap().to_owned();
    let admin_code = setup["admin_enrollment_code"].as_str().unwrap().to_owned();
    let (_server, url) = serve(&moto);
    let config = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli-gated-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&config);
    let client = |args: &[&str]| {
        let mut c = cooper(&moto);
        c.args(args)
            .args(["--endpoint", &url])
            .env("COOPER_CONFIG_DIR", &config);
        c
    };
    // A target of the demo account, below the top, that needs the admin's approval; the demo
    // group reaches it by its cascade.
    let mut create = client(&[
        "admin",
        "targets",
        "create",
        "--token",
        &admin,
        "--json",
        r#"{"name": "demo-gated", "account_id": "111111111111", "level": 20, "kind": "role",
            "role_arn": "arn:aws:iam::111111111111:role/cooper-demo-readonly",
            "approvers": [{"user": "admin"}]}"#,
    ]);
    run(&mut create);
    let (at, uri) = enroll_with_code(client(&["enroll", "--code", "--no-qr"]), &admin_code);

    // No terminal, no approver: credential_process fails at once, naming what to run.
    let process = client(&["credential-process", "demo-gated", "--token", &demo])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!process.status.success());
    let said = String::from_utf8_lossy(&process.stderr);
    assert!(
        said.contains("second person") && said.contains("cooper approvals request demo-gated"),
        "{said}"
    );

    // The approver next to the requester types their code at the prompt.
    let exports = run_with_input(
        &mut client(&["get", "demo-gated", "--approver", "admin", "--token", &demo]),
        &format!("{}\n", pyotp_code(&uri, at(0))),
    );
    assert!(exports.contains("export AWS_ACCESS_KEY_ID="), "{exports}");

    // Asked for asynchronously: listed, with its state.
    let mut ask = client(&[
        "approvals",
        "request",
        "demo-gated",
        "--reason",
        "deploy",
        "--token",
        &demo,
        "--json",
    ]);
    let asked: Value = serde_json::from_slice(&run(&mut ask).stdout).unwrap();
    let mut list = client(&["approvals", "list", "--token", &demo, "--json"]);
    let listed: Value = serde_json::from_slice(&run(&mut list).stdout).unwrap();
    assert_eq!(listed["items"][0]["id"], asked["id"]);
    assert_eq!(listed["items"][0]["status"], "pending");
    let _ = std::fs::remove_dir_all(&config);
}

/// `cooper doctor` checks what stands between a person and credentials, and says what is wrong;
/// `cooper completion` and `cooper --version` answer as people expect.
#[tokio::test(flavor = "multi_thread")]
async fn doctor_completion_and_version() {
    use std::os::unix::fs::PermissionsExt;
    let moto = Moto::start();
    let setup: Value =
        serde_json::from_slice(&run(cooper(&moto).args(["setup", "--json"])).stdout).unwrap();
    let demo = setup["demo"]["token"].as_str().unwrap().to_owned();
    let (_server, url) = serve(&moto);
    let config = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli-doctor-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&config);
    let doctor = |args: &[&str]| {
        let output = cooper(&moto)
            .args(["doctor", "--json"])
            .args(args)
            .env("COOPER_CONFIG_DIR", &config)
            .output()
            .unwrap();
        let checks: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
        let status = |name: &str| {
            checks
                .iter()
                .filter(|c| c["check"] == name)
                .map(|c| c["status"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        (
            output.status.success(),
            status("endpoint"),
            status("clock"),
            status("session"),
            status("kept files"),
            checks.clone(),
        )
    };

    let (ok, endpoint, clock, session, files, all) =
        doctor(&["--endpoint", &url, "--token", &demo]);
    assert!(ok, "{all:?}");
    assert_eq!(
        (endpoint, clock, session, files),
        (
            vec!["ok".to_owned()],
            vec!["ok".to_owned()],
            vec!["ok".to_owned()],
            vec!["ok".to_owned()]
        )
    );

    // A cache file others may read fails the check, naming it.
    let cache = config.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let leaky = cache.join("default-0123.json");
    std::fs::write(&leaky, "{}").unwrap();
    std::fs::set_permissions(&leaky, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, _, _, _, files, all) = doctor(&["--endpoint", &url, "--token", &demo]);
    assert!(!ok);
    assert_eq!(files, ["fail"]);
    assert!(
        all.iter()
            .any(|c| c["detail"].as_str().unwrap().contains("default-0123.json")),
        "{all:?}"
    );
    std::fs::remove_file(&leaky).unwrap();

    // A token cooper refuses, and an endpoint that does not answer.
    let (ok, _, _, session, _, _) = doctor(&["--endpoint", &url, "--token", "cooper_not-a-token"]);
    assert!(!ok);
    assert_eq!(session, ["fail"]);
    let (ok, endpoint, _, session, _, _) = doctor(&["--endpoint", "http://127.0.0.1:9"]);
    assert!(!ok);
    assert_eq!(endpoint, ["fail"]);
    assert!(session.is_empty());

    let bash = run(cooper(&moto).args(["completion", "bash"])).stdout;
    let bash = String::from_utf8_lossy(&bash);
    assert!(
        bash.contains("_cooper()") && bash.contains("credential-process"),
        "{bash}"
    );
    let version = run(cooper(&moto).arg("--version")).stdout;
    assert_eq!(
        String::from_utf8_lossy(&version).trim(),
        format!("cooper {}", env!("CARGO_PKG_VERSION"))
    );
    let _ = std::fs::remove_dir_all(&config);
}

/// `cooper rotate-keys`: an operator rotates the broker's key now (`--force`); run again at
/// once, it keeps the new key; credentials are issued before and after.
#[tokio::test(flavor = "multi_thread")]
async fn an_operator_rotates_the_brokers_key_from_the_command_line() {
    let moto = Moto::start();
    let setup: Value =
        serde_json::from_slice(&run(cooper(&moto).args(["setup", "--json"])).stdout).unwrap();
    let token = setup["demo"]["token"].as_str().unwrap().to_owned();
    let (_server, url) = serve(&moto);
    let issue = || {
        cooper(&moto)
            .args([
                "get",
                "demo-readonly",
                "--endpoint",
                &url,
                "--token",
                &token,
            ])
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(issue());
    let rotated: Value = serde_json::from_slice(
        &run(cooper(&moto).args(["rotate-keys", "--force", "--json"])).stdout,
    )
    .unwrap();
    let (from, to) = (
        rotated["rotated"]["from"].as_str().unwrap().to_owned(),
        rotated["rotated"]["to"].as_str().unwrap().to_owned(),
    );
    assert_ne!(from, to);
    let again: Value =
        serde_json::from_slice(&run(cooper(&moto).args(["rotate-keys", "--json"])).stdout).unwrap();
    assert!(again["rotated"].is_null(), "{again}");
    assert!(
        again["skipped"].as_str().unwrap().contains("days old"),
        "{again}"
    );
    assert!(issue());
}
