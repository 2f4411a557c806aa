//! Limits, each with a clear error: credential requests per user per minute (429 with
//! Retry-After, counted across every instance in DynamoDB), request line and header size (431),
//! body size (413, in bad_input).

use cooper_core::clock::Clock;
use cooper_core::model::Principal;
use reqwest::Method;
use serde_json::json;

use crate::harness::{ACCOUNT_A, TestEnv, calls_to};

#[tokio::test(flavor = "multi_thread")]
async fn each_user_gets_so_many_credential_requests_a_minute() {
    let env = TestEnv::start_with(|s| s.credential_rate_limit = 3).await;
    env.account(ACCOUNT_A).await;
    env.role_target("a-ro", ACCOUNT_A, 10, None).await;
    let alice = env.user("alice").await;
    let bob = env.user("bob").await;
    for user in [&alice, &bob] {
        env.grant_account(Principal::User(user.clone()), ACCOUNT_A, 10)
            .await;
    }
    let (alice_jwt, bob_jwt) = (env.jwt(&alice), env.jwt(&bob));
    // The window is the clock's minute: start at its beginning so the test cannot straddle two.
    let now = env.clock.now();
    env.clock
        .advance(time::Duration::seconds(60 - i64::from(now.second())));

    // Refusals count as requests too: a caller cannot probe targets without limit.
    let refused = env.credentials(&alice_jwt, json!({"target": "nope"})).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    for _ in 0..2 {
        let answer = env.credentials(&alice_jwt, json!({"target": "a-ro"})).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    let audit_before = env.audit_items().await.len();

    let (limited, calls) = env
        .moto
        .record(env.credentials(&alice_jwt, json!({"target": "a-ro"})))
        .await;
    assert_eq!(limited.status, 429, "{}", limited.text);
    assert_eq!(limited.error_code(), "rate_limited");
    let retry: i64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert!(
        calls_to(&calls, "sts").is_empty(),
        "no STS call once limited"
    );
    // The console is the same issuance and shares the count.
    let console = env
        .call(
            Method::POST,
            "/v1/console",
            Some(&alice_jwt),
            Some(r#"{"target":"a-ro"}"#),
            Some("application/json"),
        )
        .await;
    assert_eq!(console.status, 429, "{}", console.text);
    assert_eq!(
        env.audit_items().await.len(),
        audit_before,
        "a flood of refused requests writes no audit records"
    );

    // Another user has their own count.
    let answer = env.credentials(&bob_jwt, json!({"target": "a-ro"})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);

    // The next window admits alice again.
    env.clock.advance(time::Duration::seconds(retry));
    let answer = env.credentials(&alice_jwt, json!({"target": "a-ro"})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_headers_get_a_431_and_large_but_allowed_ones_pass() {
    let env = TestEnv::start().await;
    let alice = env.user("alice").await;
    let jwt = env.jwt(&alice);

    let padded = |bytes: usize| {
        let padding = "x".repeat(bytes);
        let (env, jwt) = (&env, &jwt);
        async move {
            let headers = [("x-padding", padding.as_str())];
            env.call_with(Method::GET, "/v1/whoami", Some(jwt), None, None, &headers)
                .await
        }
    };
    let refused = padded(10 * 1024).await;
    assert_eq!(refused.status, 431, "{}", refused.text);
    assert_eq!(refused.error_code(), "headers_too_large");

    // A long query string counts as well.
    let path = format!("/v1/whoami?pad={}", "y".repeat(10 * 1024));
    let refused = env.get(&path, &jwt).await;
    assert_eq!(refused.status, 431, "{}", refused.text);

    let answer = padded(8 * 1024).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}
