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
