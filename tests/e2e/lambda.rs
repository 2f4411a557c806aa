//! The Lambda host: API Gateway events (the fixtures in `events/`) through the same routers.

use axum::body::to_bytes;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cooper_core::clock::Clock;
use cooper_core::model::Principal;
use cooper_core::names::UserName;
use secrecy::ExposeSecret;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

use crate::harness::{ACCOUNT_A, NoticeInbox, TestEnv, repo_root};

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

/// What a fixture's answer must show besides its status: not only "not 500", and never the
/// fallback's 404 standing in for a route that is missing.
#[derive(Clone, Copy, Debug)]
enum Shows {
    /// An error with this code (from a route: not the fallback's "no such resource").
    Error(&'static str),
    /// A success whose JSON body holds this member (a JSON pointer).
    Field(&'static str),
    /// The fallback's 404: no route took the request.
    NoRoute,
}

use Shows::{Error, Field, NoRoute};

/// The message of the fallback's 404 (`ApiError::not_found`).
const NO_ROUTE: &str = "no such resource";

/// The functions behind API Gateway that answer JSON (the web console answers pages).
const API_FUNCTIONS: [&str; 3] = ["issue-credentials", "enroll-totp", "admin-targets"];

/// The fixtures of `function`, as `<function>/<file>`, sorted.
fn fixtures(function: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo_root().join("events").join(function))
        .unwrap()
        .map(|f| format!("{function}/{}", f.unwrap().file_name().to_string_lossy()))
        .collect();
    names.sort();
    names
}

/// A fixture's text with its placeholders replaced.
fn fixture_text(fixture: &str, replacements: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(repo_root().join("events").join(fixture)).unwrap();
    for (placeholder, value) in replacements {
        text = text.replace(placeholder, value);
    }
    text
}

/// Every fixture of the three API functions, through the function it belongs to as Lambda hosts
/// it: the status and the error code (or the member of a success) it must give, with API
/// Gateway's request id. The admin fixtures run in the order of the table: one creates what the
/// next reads, changes and deletes.
#[tokio::test(flavor = "multi_thread")]
async fn every_event_fixture_drives_its_function() {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    env.role_target("demo-readonly", ACCOUNT_A, 10, None).await;
    // As in `cooper setup`'s demo: demo-readonly is not the account's top level, so granting it
    // needs no fresh code.
    env.role_target("demo-admin", ACCOUNT_A, 100, None).await;
    let demo = env.user("demo").await;
    env.grant_account(Principal::User(demo.clone()), ACCOUNT_A, 10)
        .await;
    let token = env.api_token(&demo).await;
    // Enrollment is for people: its fixtures carry a one-time enrollment code.
    let enrollment = env.enrollment_code(&demo).await;
    let (_, admin) = env.universal_admin("una").await;

    let cases = [
        (
            "issue-credentials/post-credentials.json",
            200,
            Field("/access_key_id"),
        ),
        (
            "issue-credentials/get-targets.json",
            200,
            Field("/targets/0/name"),
        ),
        ("issue-credentials/get-whoami.json", 200, Field("/user")),
        (
            "issue-credentials/post-console.json",
            200,
            Field("/console_url"),
        ),
        (
            "issue-credentials/post-approvals.json",
            409,
            Error("approval_not_required"),
        ),
        (
            "issue-credentials/get-approval.json",
            404,
            Error("approval_not_found"),
        ),
        ("issue-credentials/get-approvals.json", 200, Field("/items")),
        ("issue-credentials/get-openapi.json", 200, Field("/openapi")),
        // Approving takes a signed-in person: the fixture's script token is refused first.
        (
            "issue-credentials/post-approve.json",
            403,
            Error("session_required"),
        ),
        // Access to demo-readonly cannot be requested (nor need it be: demo holds it).
        (
            "issue-credentials/post-access-requests.json",
            403,
            Error("not_requestable"),
        ),
        (
            "issue-credentials/get-access-requests.json",
            200,
            Field("/items"),
        ),
        (
            "issue-credentials/get-access-request.json",
            404,
            Error("access_request_not_found"),
        ),
        // As approving a second person's request: a script's token is refused first.
        (
            "issue-credentials/post-access-request-approve.json",
            403,
            Error("session_required"),
        ),
        (
            "issue-credentials/post-access-request-deny.json",
            404,
            Error("access_request_not_found"),
        ),
        // No body: withdrawing needs no reason.
        (
            "issue-credentials/post-access-request-cancel.json",
            404,
            Error("access_request_not_found"),
        ),
        // The payload's edge cases: a POST without a body; a body API Gateway base64-encoded;
        // a custom domain's Host.
        (
            "issue-credentials/edge-no-body.json",
            400,
            Error("malformed_json"),
        ),
        (
            "issue-credentials/edge-base64-body.json",
            200,
            Field("/access_key_id"),
        ),
        (
            "issue-credentials/edge-custom-domain.json",
            200,
            Field("/user"),
        ),
        // Behind a named stage API Gateway's rawPath starts with the stage, and lambda_http keeps
        // it in the path: the routes (at /v1/...) do not match. The template deploys the
        // `$default` stage, where this cannot happen; this fixture holds the limitation.
        ("issue-credentials/edge-stage-prefix.json", 404, NoRoute),
        (
            "enroll-totp/post-totp-enrollment.json",
            200,
            Field("/otpauth_uri"),
        ),
        (
            "enroll-totp/post-totp-enrollment-confirm.json",
            403,
            Error("totp_invalid"),
        ),
        (
            "enroll-totp/put-password.json",
            401,
            Error("enrollment_code_only"),
        ),
        (
            "enroll-totp/post-sessions.json",
            401,
            Error("invalid_credentials"),
        ),
        (
            "enroll-totp/post-sessions-oidc.json",
            404,
            Error("oidc_not_configured"),
        ),
        // An enrollment code enrolls, and signs nothing out.
        (
            "enroll-totp/post-sessions-logout.json",
            401,
            Error("enrollment_code_only"),
        ),
        // admin-targets, as the universal admin with an API token: accounts, ...
        (
            "admin-targets/get-accounts.json",
            200,
            Field("/items/0/account/id"),
        ),
        ("admin-targets/post-account.json", 201, Field("/id")),
        ("admin-targets/get-account.json", 200, Field("/name")),
        ("admin-targets/put-account.json", 200, Field("/name")),
        // Deleting an account needs a fresh code, which a script's token cannot give.
        (
            "admin-targets/delete-account.json",
            422,
            Error("totp_required"),
        ),
        // ... targets, ...
        (
            "admin-targets/get-targets.json",
            200,
            Field("/items/0/target/name"),
        ),
        ("admin-targets/post-target.json", 201, Field("/name")),
        ("admin-targets/get-target.json", 200, Field("/level")),
        // A path parameter percent-encoded by the client (demo%2Dreadonly) is decoded.
        (
            "admin-targets/edge-percent-encoded-path.json",
            200,
            Field("/role_arn"),
        ),
        ("admin-targets/put-target.json", 200, Field("/description")),
        ("admin-targets/delete-target.json", 200, Field("/deleted")),
        // ... users and their tokens, ...
        (
            "admin-targets/get-users.json",
            200,
            Field("/items/0/user/name"),
        ),
        ("admin-targets/post-user.json", 201, Field("/name")),
        ("admin-targets/get-user.json", 200, Field("/display_name")),
        // A space in a path (demo%20user) reaches the handler, which refuses the name.
        (
            "admin-targets/edge-path-with-space.json",
            400,
            Error("invalid_request"),
        ),
        ("admin-targets/put-user.json", 200, Field("/display_name")),
        (
            "admin-targets/post-user-totp-reset.json",
            200,
            Field("/user"),
        ),
        (
            "admin-targets/post-user-sessions-revoke.json",
            200,
            Field("/user"),
        ),
        (
            "admin-targets/get-user-tokens.json",
            200,
            Field("/items/0/id"),
        ),
        ("admin-targets/post-user-token.json", 201, Field("/token")),
        (
            "admin-targets/post-user-enrollment-code.json",
            422,
            Error("totp_required"),
        ),
        ("admin-targets/delete-token.json", 404, Error("not_found")),
        ("admin-targets/post-revocations.json", 200, Field("/user")),
        ("admin-targets/delete-user.json", 200, Field("/deleted")),
        // ... groups, their members and grants, ...
        ("admin-targets/get-groups.json", 200, Field("/items")),
        ("admin-targets/post-group.json", 201, Field("/name")),
        ("admin-targets/get-group.json", 200, Field("/description")),
        ("admin-targets/put-group.json", 200, Field("/description")),
        ("admin-targets/put-group-member.json", 200, Field("/member")),
        (
            "admin-targets/delete-group-member.json",
            200,
            Field("/removed"),
        ),
        (
            "admin-targets/get-grants.json",
            200,
            Field("/items/0/max_level"),
        ),
        ("admin-targets/post-grant.json", 201, Field("/target")),
        ("admin-targets/delete-grant.json", 200, Field("/deleted")),
        ("admin-targets/delete-group.json", 200, Field("/deleted")),
        // ... admins (widening admin scope needs a fresh code) and the audit trail.
        (
            "admin-targets/get-admins.json",
            200,
            Field("/items/0/scope"),
        ),
        ("admin-targets/post-admin.json", 422, Error("totp_required")),
        (
            "admin-targets/delete-admin.json",
            422,
            Error("totp_required"),
        ),
        ("admin-targets/get-audit.json", 200, Field("/items/0/id")),
    ];
    // Every fixture of these functions is in the table, once.
    let listed: Vec<&str> = cases.iter().map(|(c, _, _)| *c).collect();
    for name in API_FUNCTIONS.iter().flat_map(|f| fixtures(f)) {
        let times = listed.iter().filter(|c| **c == name).count();
        assert_eq!(times, 1, "{name} is checked {times} times");
    }

    let mut wrong = Vec::new();
    for (fixture, status, shows) in cases {
        let (function, _) = fixture.split_once('/').unwrap();
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
        let text = fixture_text(fixture, &[("REPLACE_WITH_TOKEN", bearer)]);
        let request_id =
            serde_json::from_str::<Value>(&text).unwrap()["requestContext"]["requestId"]
                .as_str()
                .unwrap()
                .to_owned();
        let response = app
            .oneshot(lambda_http::request::from_str(&text).unwrap())
            .await
            .unwrap();
        let got = response.status().as_u16();
        let echoed = response.headers()["x-request-id"] == request_id.as_str();
        let body: Value =
            serde_json::from_slice(&to_bytes(response.into_body(), 1 << 20).await.unwrap())
                .unwrap_or(Value::Null);
        let code = body["error"]["code"].as_str();
        let right = got == status
            && echoed
            && match shows {
                Error(expected) => {
                    code == Some(expected)
                        && body["error"]["request_id"] == request_id.as_str()
                        && body["error"]["message"] != NO_ROUTE
                }
                Field(pointer) => code.is_none() && body.pointer(pointer).is_some(),
                NoRoute => code == Some("not_found") && body["error"]["message"] == NO_ROUTE,
            };
        if !right {
            wrong.push(format!(
                "{fixture}: expected {status} {shows:?}, got {got} {body}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Every route of every function behind API Gateway has a fixture in `events/<function>/`, and
/// every fixture is a true event of a route its function serves: its `routeKey` (in the event
/// and its request context), method, path (after the stage, if named) and path parameters agree.
/// Request ids are unique across the fixtures (each is an audit record's id).
#[test]
fn every_route_of_every_function_has_a_fixture() {
    let mut served: Vec<(String, String)> = cooper_api::router::operations()
        .into_iter()
        .map(|(function, op)| (function.to_owned(), format!("{} {}", op.method, op.path)))
        .collect();
    for (function, ops) in [
        ("web-console", cooper_api::web::operations()),
        ("saml-signin", cooper_api::web::saml_operations()),
    ] {
        served.extend(
            ops.into_iter()
                .map(|op| (function.to_owned(), format!("{} {}", op.method, op.path))),
        );
    }
    let mut keys: Vec<(String, String)> = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    for function in API_FUNCTIONS.iter().chain(&["web-console", "saml-signin"]) {
        for fixture in fixtures(function) {
            let event: Value = serde_json::from_str(&fixture_text(&fixture, &[])).unwrap();
            let key = event["routeKey"].as_str().unwrap();
            let context = &event["requestContext"];
            assert_eq!(event["version"], "2.0", "{fixture}");
            assert_eq!(context["routeKey"], key, "{fixture}");
            let (method, route) = key.split_once(' ').unwrap();
            assert_eq!(context["http"]["method"], method, "{fixture}");
            let raw = event["rawPath"].as_str().unwrap();
            assert_eq!(context["http"]["path"], raw, "{fixture}");
            let stage = context["stage"].as_str().unwrap();
            let path = match stage {
                "$default" => raw,
                stage => raw.strip_prefix(&format!("/{stage}")).unwrap(),
            };
            let (segments, templates) = (path.split('/'), route.split('/'));
            assert_eq!(
                segments.clone().count(),
                templates.clone().count(),
                "{fixture}"
            );
            for (segment, template) in segments.zip(templates) {
                let decoded = percent_encoding::percent_decode_str(segment)
                    .decode_utf8()
                    .unwrap();
                match template.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                    Some(name) => {
                        assert_eq!(event["pathParameters"][name], *decoded, "{fixture}");
                    }
                    None => assert_eq!(decoded, template, "{fixture}"),
                }
            }
            ids.push(context["requestId"].as_str().unwrap().to_owned());
            keys.push(((*function).to_owned(), key.to_owned()));
        }
    }
    for key in &keys {
        assert!(served.contains(key), "fixture for {key:?}: no such route");
    }
    let missing: Vec<String> = served
        .iter()
        .filter(|route| !keys.contains(route))
        .map(|(function, key)| format!("{function}: no fixture for {key}"))
        .collect();
    assert!(missing.is_empty(), "{}", missing.join("\n"));
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "a request id is used twice");
}

/// The web console as Lambda hosts it, from API Gateway events (`events/web-console/`, and
/// SAML sign-in's in `events/saml-signin/`, each through its own function's routes), signed
/// out and signed in (a session cookie in the event's `cookies`, the session's CSRF token in
/// its forms): each page answers its status and shows what it must (a redirect's `Location`,
/// else a piece of the page: its heading, or the refusal's code). Cookies are `Secure` and
/// `__Host-` (a deployment is never a local run); a cross-site form is refused; assets are
/// cached.
#[tokio::test(flavor = "multi_thread")]
async fn the_web_console_answers_api_gateway_events() {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    env.role_target("demo-readonly", ACCOUNT_A, 10, None).await;
    env.role_target("demo-admin", ACCOUNT_A, 100, None).await;
    let demo = env.user("demo").await;
    env.grant_account(Principal::User(demo.clone()), ACCOUNT_A, 10)
        .await;
    let (una, _) = env.universal_admin("una").await;
    let console = env.jwt.for_audience(&cooper_api::web::console_audience(
        &env.settings.jwt_audience,
    ));
    let session = |user: &UserName| {
        console
            .mint(user.as_str(), env.clock.now(), time::Duration::hours(1))
            .unwrap()
            .expose_secret()
            .to_owned()
    };
    let (demo_session, una_session) = (session(&demo), session(&una));
    // A session's CSRF token, as the pages derive it: no other site can compute it.
    let csrf = |token: &str| {
        URL_SAFE_NO_PAD.encode(
            Sha256::new()
                .chain_update("cooper-console-csrf")
                .chain_update([0])
                .chain_update(token)
                .finalize(),
        )
    };
    let (demo_csrf, una_csrf) = (csrf(&demo_session), csrf(&una_session));
    let pages = cooper_api::web::WebState::pages(env.states.clone(), &env.settings, false).unwrap();
    let saml = cooper_api::web::WebState::new(env.states.clone(), &env.settings, false).unwrap();
    let pages = cooper_api::host::lambda_app(cooper_api::router::edge_with_pages(
        cooper_api::web::page_routes(pages),
    ));
    let saml = cooper_api::host::lambda_app(cooper_api::router::edge_with_pages(
        cooper_api::web::saml_routes(saml),
    ));
    let home = |file: &str| {
        if repo_root().join("events/saml-signin").join(file).exists() {
            "saml-signin"
        } else {
            "web-console"
        }
    };

    let cases = [
        // Signed out.
        ("get-signin.json", 200, "<h1>Sign in</h1>"),
        ("get-targets.json", 303, "/signin"),
        ("post-signin.json", 403, "<code>csrf_failed</code>"),
        ("get-enroll.json", 200, "Enrollment code"),
        // A form API Gateway base64-encoded: its CSRF token (of the pre-session cookie) is read
        // from the decoded body, and the code is refused.
        ("post-enroll.json", 401, "<code>invalid_token</code>"),
        (
            "post-enroll-confirm.json",
            409,
            "This enrollment has expired",
        ),
        (
            "get-signin-oidc.json",
            404,
            "<code>oidc_not_configured</code>",
        ),
        (
            "get-signin-oidc-callback.json",
            401,
            "<code>invalid_token</code>",
        ),
        ("get-asset.json", 200, "body"),
        (
            "get-saml-metadata.json",
            404,
            "\"code\":\"saml_not_configured\"",
        ),
        (
            "get-saml-login.json",
            404,
            "<code>saml_not_configured</code>",
        ),
        (
            "post-saml-acs.json",
            404,
            "<code>saml_not_configured</code>",
        ),
        ("post-sessions-saml.json", 401, "\"code\":\"invalid_grant\""),
        // Signed in as demo.
        ("get-home.json", 303, "/targets"),
        ("get-targets-signed-in.json", 200, "demo-readonly"),
        ("edge-custom-domain.json", 200, "demo-readonly"),
        ("get-target.json", 200, "<h1>demo-readonly</h1>"),
        ("post-console.json", 200, "signin.aws.amazon.com"),
        ("post-credentials.json", 200, "AWS_SESSION_TOKEN"),
        ("get-authenticator.json", 200, "<h1>Authenticator</h1>"),
        (
            "post-authenticator.json",
            200,
            "<h1>Enroll an authenticator</h1>",
        ),
        (
            "post-authenticator-confirm.json",
            403,
            "<code>totp_invalid</code>",
        ),
        ("get-approvals.json", 200, "<h1>Approvals</h1>"),
        // No target of demo's needs a second person: refused, on the approvals page (whose
        // form, and so the refusal's code, is not shown when nothing needs approval).
        (
            "post-approvals.json",
            409,
            "None of your targets needs a second person",
        ),
        ("get-approval.json", 404, "<code>approval_not_found</code>"),
        (
            "post-approval-approve.json",
            404,
            "<code>approval_not_found</code>",
        ),
        ("get-access-requests.json", 200, "<h1>Access requests</h1>"),
        (
            "post-access-requests.json",
            403,
            "<code>not_requestable</code>",
        ),
        (
            "get-access-request.json",
            404,
            "<code>access_request_not_found</code>",
        ),
        (
            "post-access-request-approve.json",
            404,
            "<code>access_request_not_found</code>",
        ),
        (
            "post-access-request-deny.json",
            404,
            "<code>access_request_not_found</code>",
        ),
        (
            "post-access-request-cancel.json",
            404,
            "<code>access_request_not_found</code>",
        ),
        // Signed in as una, a universal admin.
        ("get-admin.json", 200, "<h1>Admin</h1>"),
        ("get-admin-accounts.json", 200, "111111111111"),
        ("get-admin-account.json", 200, "demo-admin"),
        ("get-admin-users.json", 200, "demo"),
        ("get-admin-groups.json", 200, "<h1>Groups</h1>"),
        // Signing out ends the session: last.
        ("post-signout.json", 303, "/signin"),
    ];
    let listed: Vec<String> = cases
        .iter()
        .map(|(file, _, _)| format!("{}/{file}", home(file)))
        .collect();
    for name in fixtures("web-console")
        .into_iter()
        .chain(fixtures("saml-signin"))
    {
        let times = listed.iter().filter(|c| **c == name).count();
        assert_eq!(times, 1, "{name} is checked {times} times");
    }

    let mut wrong = Vec::new();
    for (file, status, shows) in cases {
        let fixture = format!("{}/{file}", home(file));
        let (session, token) = if fixture_text(&fixture, &[]).contains("REPLACE_WITH_ADMIN_SESSION")
        {
            (&una_session, &una_csrf)
        } else {
            (&demo_session, &demo_csrf)
        };
        let text = fixture_text(
            &fixture,
            &[
                ("REPLACE_WITH_ADMIN_SESSION", session),
                ("REPLACE_WITH_SESSION", session),
                ("REPLACE_WITH_CSRF", token),
            ],
        );
        let event: Value = serde_json::from_str(&text).unwrap();
        let request = lambda_http::request::from_str(&text).unwrap();
        let app = if home(file) == "saml-signin" {
            &saml
        } else {
            &pages
        };
        let response = app.clone().oneshot(request).await.unwrap();
        let got = response.status().as_u16();
        let headers = response.headers().clone();
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let body = String::from_utf8_lossy(&body);
        let right = got == status
            && headers["x-request-id"] == event["requestContext"]["requestId"].as_str().unwrap()
            && if (300..400).contains(&got) {
                headers["location"] == shows
            } else {
                body.contains(shows)
            };
        if !right {
            wrong.push(format!(
                "{file}: expected {status} {shows:?}, got {got} {:?} {}",
                headers.get("location"),
                body.chars().take(3000).collect::<String>()
            ));
        }
        for cookie in headers.get_all("set-cookie") {
            let cookie = cookie.to_str().unwrap();
            // Every cookie, the recent targets' list included, is `__Host-` on Lambda.
            assert!(cookie.starts_with("__Host-"), "{file}: {cookie}");
            assert!(cookie.contains("; Secure"), "{file}: {cookie}");
        }
        match file {
            "get-signin.json" => assert!(headers.get("set-cookie").is_some(), "{file}"),
            "get-asset.json" => {
                assert!(
                    headers["content-type"]
                        .to_str()
                        .unwrap()
                        .starts_with("text/css")
                );
                assert!(
                    headers["cache-control"]
                        .to_str()
                        .unwrap()
                        .contains("immutable")
                );
            }
            _ => {}
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
    // The pages' function does not read SAML: its routes end at the pages.
    for name in fixtures("saml-signin") {
        let request = lambda_http::request::from_str(&fixture_text(&name, &[])).unwrap();
        let response = pages.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 404, "{name}");
    }
}

/// `events/audit-notify/batch.json` as Lambda delivers it to audit-notify: the INSERT is
/// announced, the MODIFY is not (audit records are never changed), and the admin change whose
/// notice would be larger than SNS takes (256 KiB) is announced in part (it was once handed
/// back as a batch item failure, retried, and parked in the dead-letter queue for good).
#[tokio::test(flavor = "multi_thread")]
async fn the_audit_stream_batch_is_announced_as_lambda_delivers_it() {
    let env = TestEnv::start().await;
    let inbox = NoticeInbox::create(&env.sdk, "cooper-audit").await;
    let event: aws_lambda_events::event::dynamodb::Event =
        serde_json::from_str(&fixture_text("audit-notify/batch.json", &[])).unwrap();
    let names: Vec<&str> = event
        .records
        .iter()
        .map(|r| r.event_name.as_str())
        .collect();
    assert_eq!(names, ["INSERT", "MODIFY", "INSERT"]);

    let response = cooper_api::notify::lambda::handle(&env.notifier(&inbox.topic_arn), event).await;
    let failed: Vec<String> = response
        .batch_item_failures
        .iter()
        .filter_map(|f| f.item_identifier.clone())
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    let notices = inbox.drain().await;
    assert_eq!(
        notices.len(),
        2,
        "the insert and the large change; the modify is not announced"
    );
    assert_eq!(
        notices[0].0,
        "cooper: alice opened the console as demo-readonly in 111111111111"
    );
    // The change too large for one SNS message is announced in part, pointing at its record.
    let (_, large) = &notices[1];
    assert!(
        large.len() <= cooper_core::notify::MAX_BODY,
        "{}",
        large.len()
    );
    assert!(
        large.contains("the whole change is in the audit record"),
        "{}",
        &large[large.len().saturating_sub(400)..]
    );
    // The answer is what the runtime sends back to Lambda: the partial batch response (empty).
    let answer = serde_json::to_value(&response).unwrap();
    assert_eq!(answer["batchItemFailures"], serde_json::json!([]));
}
