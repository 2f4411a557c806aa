//! cargo-lambda, as a Rust Lambda developer runs a function (`make watch`, `make invoke`): its
//! emulator of the Lambda runtime API hosting the issue-credentials binary against moto, and a
//! fixture of `events/` sent through `cargo lambda invoke`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cooper_core::model::Principal;
use serde_json::Value;

use crate::harness::{ACCOUNT_A, TestEnv, repo_root};

/// A process stopped when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The tools' venv, where `make tools` installs cargo-lambda (and the zig it cross-compiles
/// with, found on PATH).
fn tools_bin() -> PathBuf {
    repo_root().join(".venv-tools/bin")
}

/// cargo-lambda, if it can run here; else why not.
fn cargo_lambda() -> Result<PathBuf, String> {
    let path = tools_bin().join("cargo-lambda");
    if !path.exists() {
        return Err(format!(
            "{} is missing (`make tools` installs it)",
            path.display()
        ));
    }
    match Command::new(&path).args(["lambda", "--version"]).output() {
        Ok(out) if out.status.success() => Ok(path),
        Ok(out) => Err(format!(
            "`cargo-lambda lambda --version` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("cargo-lambda cannot run here: {e}")),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The issue-credentials binary, built as this suite's dependencies were: the same profile and
/// target directory, and the same features (the suite's package and the function's, with their
/// dev-dependencies, as `cargo nextest run` resolves them), so nothing but the function's own
/// crate is compiled.
fn built_function() -> PathBuf {
    let started = Instant::now();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(repo_root())
        .args([
            "build",
            "--quiet",
            "-p",
            "cooper-cli",
            "-p",
            "cooper-issue-credentials",
            "--test",
            "e2e",
            "--bin",
            "issue-credentials",
        ])
        .status()
        .unwrap();
    assert!(status.success(), "cargo build of issue-credentials failed");
    eprintln!(
        "issue-credentials built (or found fresh) in {:.1?}",
        started.elapsed()
    );
    Path::new(env!("CARGO_BIN_EXE_cooper")).with_file_name("issue-credentials")
}

fn wait_for_listener(addr: SocketAddr, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `cargo lambda watch --only-lambda-apis` (the emulator `make watch` runs, without its
/// `cargo run`: the binary is started here, as Lambda starts a bootstrap) serves the function,
/// and `cargo lambda invoke --data-file events/issue-credentials/post-credentials.json` (its token
/// filled in) gets credentials back in API Gateway's response shape, audited under the fixture's
/// request id and source address.
#[tokio::test(flavor = "multi_thread")]
async fn cargo_lambda_serves_a_function_and_invokes_it_with_a_fixture() {
    let cargo_lambda = match cargo_lambda() {
        Ok(path) => path,
        Err(why) => {
            eprintln!("SKIPPED cargo_lambda: cargo-lambda cannot run here: {why}");
            return;
        }
    };
    let binary = built_function();

    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    env.role_target("demo-readonly", ACCOUNT_A, 10, None).await;
    let demo = env.user("demo").await;
    env.grant_account(Principal::User(demo.clone()), ACCOUNT_A, 10)
        .await;
    let token = env.api_token(&demo).await;

    let path = format!(
        "{}:{}",
        tools_bin().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let _emulator = Running(
        Command::new(&cargo_lambda)
            .current_dir(repo_root())
            .env("PATH", &path)
            .args(["lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1"])
            .args(["-P", &port.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_listener(addr, "cargo lambda watch");

    // The function as Lambda starts it: the runtime API's address, and its configuration in the
    // environment (as template.yaml sets it, with AWS_ENDPOINT_URL pointing at moto).
    let settings = &env.settings;
    let _function = Running(
        Command::new(&binary)
            .env("AWS_LAMBDA_RUNTIME_API", format!("http://{addr}/.rt"))
            .env("AWS_LAMBDA_FUNCTION_NAME", "issue-credentials")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_ENDPOINT_URL", &env.moto.endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .env("COOPER_DIRECTORY_TABLE", &settings.directory_table)
            .env("COOPER_AUDIT_TABLE", &settings.audit_table)
            .env("COOPER_SSM_PREFIX", &settings.ssm_prefix)
            .env("COOPER_JWT_ISSUER", &settings.jwt_issuer)
            .env("COOPER_JWT_AUDIENCE", &settings.jwt_audience)
            .env("COOPER_KMS_KEY", &env.kms_key)
            .env("COOPER_SIGNIN_ENDPOINT", &env.signin.url)
            .spawn()
            .unwrap(),
    );

    let fixture =
        std::fs::read_to_string(repo_root().join("events/issue-credentials/post-credentials.json"))
            .unwrap()
            .replace("REPLACE_WITH_TOKEN", &token);
    let data = std::env::temp_dir().join(format!("cooper-e2e-invoke-{port}.json"));
    std::fs::write(&data, fixture).unwrap();
    let invoke = {
        let (cargo_lambda, data, path) = (cargo_lambda.clone(), data.clone(), path.clone());
        tokio::task::spawn_blocking(move || {
            Command::new(&cargo_lambda)
                .current_dir(repo_root())
                .env("PATH", path)
                .args([
                    "lambda",
                    "invoke",
                    "-A",
                    "127.0.0.1",
                    "-P",
                    &port.to_string(),
                ])
                .arg("--data-file")
                .arg(&data)
                .args(["--output-format", "json"])
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    let _ = std::fs::remove_file(&data);
    assert!(
        invoke.status.success(),
        "cargo lambda invoke: {}",
        String::from_utf8_lossy(&invoke.stderr)
    );

    // API Gateway's response (payload 2.0), as the runtime made it from the router's answer.
    let answer: Value = serde_json::from_slice(&invoke.stdout).unwrap();
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(answer["headers"]["x-request-id"], "B2nJ7gQxIAMEVdw=");
    assert_eq!(answer["headers"]["cache-control"], "no-store");
    assert_eq!(answer["isBase64Encoded"], false);
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["target"], "demo-readonly");
    assert!(
        body["access_key_id"].as_str().unwrap().starts_with("ASIA"),
        "{body}"
    );
    assert_eq!(body["request_id"], "B2nJ7gQxIAMEVdw=");

    // The function really ran against moto: the issuance is audited under API Gateway's request
    // id, with the caller's address from the event.
    let items = env.audit_items().await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"].as_s().unwrap(), "B2nJ7gQxIAMEVdw=");
    assert_eq!(items[0]["source_ip"].as_s().unwrap(), "203.0.113.7");
}
