//! The Lambda host: API Gateway events (the fixtures in `events/`) through the same routers.

use axum::body::to_bytes;
use cooper_core::model::Principal;
use serde_json::Value;
use tower::ServiceExt;

use crate::harness::{ACCOUNT_A, TestEnv, repo_root};

fn event(name: &str, token: &str) -> lambda_http::Request {
    let path = repo_root().join("events/issue-credentials").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("REPLACE_WITH_TOKEN", token);
    lambda_http::request::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn api_gateway_events_are_served_with_their_request_id_and_source_ip() {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    env.role_target("demo-readonly", ACCOUNT_A, 10, None).await;
    let alice = env.user("alice").await;
    env.grant_account(Principal::User(alice.clone()), ACCOUNT_A, 10)
        .await;
    let token = env.api_token(&alice).await;
    let app = || {
        cooper_api::host::lambda_app(cooper_api::router::edge(
            cooper_api::router::issue_credentials(env.state.clone()),
        ))
    };

    let response = app()
        .oneshot(event("post-credentials.json", &token))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "B2nJ7gQxIAMEVdw=");
    let body: Value =
        serde_json::from_slice(&to_bytes(response.into_body(), 1 << 20).await.unwrap()).unwrap();
    assert_eq!(body["target"], "demo-readonly");
    assert_eq!(body["request_id"], "B2nJ7gQxIAMEVdw=");

    // The audit record carries API Gateway's request id and the caller's sourceIp.
    let items = env.audit_items().await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"].as_s().unwrap(), "B2nJ7gQxIAMEVdw=");
    assert_eq!(items[0]["source_ip"].as_s().unwrap(), "203.0.113.7");

    let response = app()
        .oneshot(event("get-targets.json", &token))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value =
        serde_json::from_slice(&to_bytes(response.into_body(), 1 << 20).await.unwrap()).unwrap();
    assert_eq!(body["targets"][0]["name"], "demo-readonly");

    // An error through the Lambda host has the same JSON shape, with API Gateway's id.
    let response = app()
        .oneshot(event("get-targets.json", "not-a-token"))
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value =
        serde_json::from_slice(&to_bytes(response.into_body(), 1 << 20).await.unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "invalid_token");
    assert_eq!(body["error"]["request_id"], "B2nJ9hQyIAMEVeA=");
}

/// Every fixture in `events/`, through the function it belongs to as Lambda hosts it: the answer
/// it should give (status and error code), with API Gateway's request id.
#[tokio::test(flavor = "multi_thread")]
async fn every_event_fixture_drives_its_function() {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    env.role_target("demo-readonly", ACCOUNT_A, 10, None).await;
    let demo = env.user("demo").await;
    env.grant_account(Principal::User(demo.clone()), ACCOUNT_A, 10)
        .await;
    let token = env.api_token(&demo).await;
    // Enrollment is for people: its fixtures carry a one-time enrollment code.
    let enrollment = env.enrollment_code(&demo).await;
    let (_, admin) = env.universal_admin("una").await;

    let cases = [
        ("issue-credentials/post-credentials.json", 200, None),
        ("issue-credentials/get-targets.json", 200, None),
        ("issue-credentials/get-whoami.json", 200, None),
        ("issue-credentials/post-console.json", 200, None),
        (
            "issue-credentials/post-approvals.json",
            409,
            Some("approval_not_required"),
        ),
        (
            "issue-credentials/get-approval.json",
            404,
            Some("approval_not_found"),
        ),
        ("issue-credentials/get-approvals.json", 200, None),
        ("issue-credentials/get-openapi.json", 200, None),
        // Approving takes a signed-in person: the fixture's script token is refused first.
        (
            "issue-credentials/post-approve.json",
            403,
            Some("session_required"),
        ),
        // Access to demo-readonly cannot be requested (nor need it be: demo holds it).
        (
            "issue-credentials/post-access-requests.json",
            403,
            Some("not_requestable"),
        ),
        ("issue-credentials/get-access-requests.json", 200, None),
        (
            "issue-credentials/get-access-request.json",
            404,
            Some("access_request_not_found"),
        ),
        // As approving a second person's request: a script's token is refused first.
        (
            "issue-credentials/post-access-request-approve.json",
            403,
            Some("session_required"),
        ),
        (
            "issue-credentials/post-access-request-deny.json",
            404,
            Some("access_request_not_found"),
        ),
        // No body: withdrawing needs no reason.
        (
            "issue-credentials/post-access-request-cancel.json",
            404,
            Some("access_request_not_found"),
        ),
        ("enroll-totp/post-totp-enrollment.json", 200, None),
        (
            "enroll-totp/post-totp-enrollment-confirm.json",
            403,
            Some("totp_invalid"),
        ),
        (
            "enroll-totp/put-password.json",
            401,
            Some("enrollment_code_only"),
        ),
        (
            "enroll-totp/post-sessions.json",
            401,
            Some("invalid_credentials"),
        ),
        (
            "enroll-totp/post-sessions-oidc.json",
            404,
            Some("oidc_not_configured"),
        ),
        // An enrollment code enrolls, and signs nothing out.
        (
            "enroll-totp/post-sessions-logout.json",
            401,
            Some("enrollment_code_only"),
        ),
        ("admin-targets/get-accounts.json", 200, None),
        ("admin-targets/post-target.json", 201, None),
        ("admin-targets/get-audit.json", 200, None),
    ];
    // Every HTTP fixture is in the table.
    for function in ["issue-credentials", "enroll-totp", "admin-targets"] {
        for file in std::fs::read_dir(repo_root().join("events").join(function)).unwrap() {
            let name = format!("{function}/{}", file.unwrap().file_name().to_string_lossy());
            assert!(
                cases.iter().any(|(c, _, _)| *c == name),
                "{name} is not checked"
            );
        }
    }

    for (fixture, status, code) in cases {
        let (function, file) = fixture.split_once('/').unwrap();
        let routes = match function {
            "issue-credentials" => cooper_api::router::issue_credentials(env.states.issue.clone()),
            "enroll-totp" => cooper_api::router::enroll_totp(env.states.enroll.clone()),
            _ => cooper_api::router::admin_targets(env.states.admin.clone()),
        };
        let app = cooper_api::host::lambda_app(cooper_api::router::edge(routes));
        let bearer = match function {
            "admin-targets" => &admin,
            "enroll-totp" => &enrollment,
            _ => &token,
        };
        let text =
            std::fs::read_to_string(repo_root().join("events").join(function).join(file)).unwrap();
        let request_id =
            serde_json::from_str::<Value>(&text).unwrap()["requestContext"]["requestId"]
                .as_str()
                .unwrap()
                .to_owned();
        let request =
            lambda_http::request::from_str(&text.replace("REPLACE_WITH_TOKEN", bearer)).unwrap();
        let response = app.oneshot(request).await.unwrap();
        let got = response.status().as_u16();
        assert_eq!(
            response.headers()["x-request-id"],
            request_id.as_str(),
            "{fixture}"
        );
        let body: Value =
            serde_json::from_slice(&to_bytes(response.into_body(), 1 << 20).await.unwrap())
                .unwrap_or(Value::Null);
        assert_eq!(got, status, "{fixture}: {body}");
        // The code too: a route that is missing must not pass as the fallback's 404.
        assert_eq!(body["error"]["code"].as_str(), code, "{fixture}: {body}");
        if got >= 400 {
            assert_eq!(
                body["error"]["request_id"],
                request_id.as_str(),
                "{fixture}"
            );
        }
    }
}

/// `events/` holds an API Gateway event for every route of issue-credentials and enroll-totp (the
/// functions people and scripts call), and for three of admin-targets' (a read, a create and the
/// audit query: the rest share their host path). Each fixture's `routeKey` is a route its function
/// serves.
#[test]
fn the_people_facing_functions_have_a_fixture_for_every_route() {
    let mut keys: Vec<(String, String)> = Vec::new();
    for function in ["issue-credentials", "enroll-totp", "admin-targets"] {
        for file in std::fs::read_dir(repo_root().join("events").join(function)).unwrap() {
            let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
            let event: Value = serde_json::from_str(&text).unwrap();
            keys.push((
                function.to_owned(),
                event["routeKey"].as_str().unwrap().to_owned(),
            ));
        }
    }
    let served: Vec<(String, String)> = cooper_api::router::operations()
        .into_iter()
        .map(|(function, op)| (function.to_owned(), format!("{} {}", op.method, op.path)))
        .collect();
    for key in &keys {
        assert!(served.contains(key), "fixture for {key:?}: no such route");
    }
    for (function, key) in &served {
        if function != "admin-targets" {
            assert!(
                keys.contains(&(function.clone(), key.clone())),
                "{function}: no fixture for {key}"
            );
        }
    }
    assert_eq!(keys.iter().filter(|(f, _)| f == "admin-targets").count(), 3);
}

/// The web console as Lambda hosts it, from API Gateway events (`events/web-console/`): pages
/// answer HTML, cookies are `__Host-` and `Secure` (a deployment is never a local run), a
/// cross-site form is refused, assets are cached, and each fixture names a route it serves.
#[tokio::test]
async fn the_web_console_answers_api_gateway_events() {
    let env = TestEnv::start().await;
    let web = cooper_api::web::WebState::new(env.states.clone(), &env.settings, false).unwrap();
    let app = cooper_api::host::lambda_app(cooper_api::router::edge_with_pages(
        cooper_api::web::routes(web),
    ));
    let served: Vec<String> = cooper_api::web::operations()
        .into_iter()
        .map(|op| format!("{} {}", op.method, op.path))
        .collect();
    let cases = [
        ("get-signin.json", 200, "text/html"),
        ("get-targets.json", 303, ""),
        ("post-signin.json", 403, "text/html"),
        ("get-asset.json", 200, "text/css"),
    ];
    let dir = repo_root().join("events/web-console");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        cases.len(),
        "every fixture is checked"
    );
    for (file, status, kind) in cases {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let event: Value = serde_json::from_str(&text).unwrap();
        let route = event["routeKey"].as_str().unwrap();
        assert!(
            served.iter().any(|s| s == route),
            "{file}: no such route {route}"
        );
        let request = lambda_http::request::from_str(&text).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{file}");
        let headers = response.headers();
        assert_eq!(
            headers["x-request-id"],
            event["requestContext"]["requestId"].as_str().unwrap(),
            "{file}"
        );
        if !kind.is_empty() {
            assert!(
                headers["content-type"].to_str().unwrap().starts_with(kind),
                "{file}"
            );
        }
        for cookie in headers.get_all("set-cookie") {
            let cookie = cookie.to_str().unwrap();
            assert!(cookie.starts_with("__Host-"), "{file}: {cookie}");
            assert!(cookie.contains("; Secure"), "{file}: {cookie}");
        }
        if file == "get-signin.json" {
            assert!(
                headers.get("set-cookie").is_some(),
                "the sign-in form's cookie"
            );
        }
        if file == "get-targets.json" {
            assert_eq!(headers["location"], "/signin");
        }
    }
}
