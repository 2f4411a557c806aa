//! The API's description: served without credentials, byte for byte the committed
//! docs/openapi.json (which unit tests hold equal to the routers and the SAM template, and
//! `scripts/fuzz.sh` holds true of every response).

use reqwest::Method;
use serde_json::Value;

use crate::harness::{TestEnv, repo_root};

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_is_served_without_credentials_as_committed() {
    let env = TestEnv::start().await;
    let answer = env
        .call(Method::GET, "/v1/openapi.json", None, None, None)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.headers["content-type"], "application/json");
    let committed = std::fs::read_to_string(repo_root().join("docs/openapi.json")).unwrap();
    // The committed document, compacted: the same JSON in fewer bytes.
    let committed_json: Value = serde_json::from_str(&committed).unwrap();
    assert_eq!(answer.body, committed_json);
    assert!(
        answer.text.len() < committed.len() * 2 / 3,
        "served compacted"
    );
    assert_eq!(answer.body["openapi"], "3.1.0");

    // Only GET: anything else is a JSON 405 like every other route.
    let post = env
        .call(Method::POST, "/v1/openapi.json", None, Some("{}"), None)
        .await;
    assert_eq!(post.status, 405);
    assert_eq!(post.error_code(), "method_not_allowed");
    let parsed: Value = serde_json::from_str(&committed).unwrap();
    assert!(parsed["paths"]["/v1/credentials"]["post"].is_object());
}
