//! Bad input of every kind gets the right 4xx with cooper's JSON error shape; never a 5xx, and
//! never an STS call.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cooper_api::jwt::JwtAuthority;
use cooper_core::clock::OsEntropy;
use cooper_core::model::Principal;
use cooper_core::token::{ApiToken, ApiTokenRecord};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

use crate::harness::{ACCOUNT_A, TestEnv, calls_to};

struct Case {
    name: &'static str,
    method: Method,
    path: &'static str,
    bearer: Option<String>,
    body: Option<String>,
    content_type: Option<&'static str>,
    status: u16,
    code: &'static str,
}

fn post(name: &'static str, bearer: &str, body: &str, status: u16, code: &'static str) -> Case {
    Case {
        name,
        method: Method::POST,
        path: "/v1/credentials",
        bearer: Some(bearer.to_owned()),
        body: Some(body.to_owned()),
        content_type: Some("application/json"),
        status,
        code,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_kind_of_bad_request_gets_a_clear_4xx() {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    env.role_target("a-readonly", ACCOUNT_A, 10, None).await; // allows 900..=7200 s
    let alice = env.user("alice").await;
    env.grant_account(Principal::User(alice.clone()), ACCOUNT_A, 10)
        .await;
    let token = env.api_token(&alice).await;
    let now = OffsetDateTime::now_utc();

    // Tokens that must not work.
    let real = ApiToken::parse(&token).unwrap();
    let forged_api = format!("cooper_{}_{}", real.id(), "ab".repeat(32));
    let unknown_api = ApiToken::generate(&OsEntropy)
        .unwrap()
        .reveal()
        .expose_secret()
        .to_owned();
    let expired_api = {
        let t = ApiToken::generate(&OsEntropy).unwrap();
        let r = ApiTokenRecord::issue(
            &t,
            alice.clone(),
            now - time::Duration::days(2),
            time::Duration::days(1),
        );
        env.directory.put_api_token(&r).await.unwrap();
        t.reveal().expose_secret().to_owned()
    };
    let revoked_api = {
        let t = ApiToken::generate(&OsEntropy).unwrap();
        let mut r = ApiTokenRecord::issue(&t, alice.clone(), now, time::Duration::days(1));
        r.revoked = true;
        env.directory.put_api_token(&r).await.unwrap();
        t.reveal().expose_secret().to_owned()
    };
    let other_key = JwtAuthority::new(
        &SecretString::from("ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="),
        &env.settings.jwt_issuer,
        &env.settings.jwt_audience,
    )
    .unwrap();
    let forged_jwt = other_key
        .mint("alice", now, time::Duration::minutes(5))
        .unwrap()
        .expose_secret()
        .to_owned();
    let expired_jwt = env
        .jwt
        .mint(
            "alice",
            now - time::Duration::hours(2),
            time::Duration::hours(1),
        )
        .unwrap()
        .expose_secret()
        .to_owned();
    let future_jwt = env
        .jwt
        .mint(
            "alice",
            now + time::Duration::hours(1),
            time::Duration::hours(1),
        )
        .unwrap()
        .expose_secret()
        .to_owned();
    let good_jwt = env.jwt(&alice);
    let unsigned_jwt = {
        let payload = good_jwt.split('.').nth(1).unwrap();
        format!(
            "{}.{payload}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#)
        )
    };
    let tampered_jwt = {
        let mut parts: Vec<String> = good_jwt.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(
            String::from_utf8(URL_SAFE_NO_PAD.decode(&parts[1]).unwrap())
                .unwrap()
                .replace("\"alice\"", "\"admin\""),
        );
        parts.join(".")
    };

    let ok = r#"{"target":"a-readonly"}"#;
    let cases = vec![
        post(
            "malformed JSON",
            &token,
            r#"{"target":"#,
            400,
            "malformed_json",
        ),
        post(
            "not an object",
            &token,
            r#"["a-readonly"]"#,
            400,
            "invalid_request",
        ),
        post(
            "unknown field",
            &token,
            r#"{"target":"a-readonly","role":"admin"}"#,
            400,
            "invalid_request",
        ),
        post(
            "missing target",
            &token,
            r#"{"duration_seconds":900}"#,
            400,
            "invalid_request",
        ),
        post(
            "target of the wrong type",
            &token,
            r#"{"target":42}"#,
            400,
            "invalid_request",
        ),
        post(
            "duration as a string",
            &token,
            r#"{"target":"a-readonly","duration_seconds":"1h"}"#,
            400,
            "invalid_request",
        ),
        post(
            "negative duration",
            &token,
            r#"{"target":"a-readonly","duration_seconds":-900}"#,
            400,
            "invalid_request",
        ),
        post(
            "fractional duration",
            &token,
            r#"{"target":"a-readonly","duration_seconds":900.5}"#,
            400,
            "invalid_request",
        ),
        post(
            "duration below the minimum",
            &token,
            r#"{"target":"a-readonly","duration_seconds":899}"#,
            400,
            "invalid_duration",
        ),
        post(
            "duration above the target's maximum",
            &token,
            r#"{"target":"a-readonly","duration_seconds":7201}"#,
            400,
            "invalid_duration",
        ),
        post(
            "huge duration",
            &token,
            r#"{"target":"a-readonly","duration_seconds":18446744073709551615}"#,
            400,
            "invalid_duration",
        ),
        post(
            "invalid target name",
            &token,
            r#"{"target":"../../etc/passwd"}"#,
            400,
            "invalid_target",
        ),
        post(
            "empty target name",
            &token,
            r#"{"target":""}"#,
            400,
            "invalid_target",
        ),
        post(
            "unknown target",
            &token,
            r#"{"target":"no-such-target"}"#,
            403,
            "not_granted",
        ),
        Case {
            content_type: None,
            ..post("no content type", &token, ok, 415, "unsupported_media_type")
        },
        Case {
            content_type: Some("text/plain"),
            ..post(
                "wrong content type",
                &token,
                ok,
                415,
                "unsupported_media_type",
            )
        },
        post(
            "oversized body",
            &token,
            &format!(
                r#"{{"target":"a-readonly","pad":"{}"}}"#,
                "x".repeat(20_000)
            ),
            413,
            "body_too_large",
        ),
        Case {
            path: "/v1/credentials?format=yaml",
            ..post("unknown format", &token, ok, 400, "invalid_format")
        },
        Case {
            bearer: None,
            ..post("no token", &token, ok, 401, "unauthenticated")
        },
        post("forged API token", &forged_api, ok, 401, "invalid_token"),
        post("unknown API token", &unknown_api, ok, 401, "invalid_token"),
        post(
            "malformed API token",
            "cooper_nothex_x",
            ok,
            401,
            "invalid_token",
        ),
        post("expired API token", &expired_api, ok, 401, "token_expired"),
        post("revoked API token", &revoked_api, ok, 401, "token_revoked"),
        post(
            "JWT signed with another key",
            &forged_jwt,
            ok,
            401,
            "invalid_token",
        ),
        post("expired JWT", &expired_jwt, ok, 401, "token_expired"),
        post(
            "JWT not valid yet",
            &future_jwt,
            ok,
            401,
            "token_not_yet_valid",
        ),
        post("JWT with alg none", &unsigned_jwt, ok, 401, "invalid_token"),
        post(
            "JWT with a tampered payload",
            &tampered_jwt,
            ok,
            401,
            "invalid_token",
        ),
        post("garbage bearer", "hello", ok, 401, "invalid_token"),
        Case {
            name: "wrong method",
            method: Method::GET,
            body: None,
            ..post("", &token, ok, 405, "method_not_allowed")
        },
        Case {
            name: "unknown path",
            path: "/v1/nothing",
            ..post("", &token, ok, 404, "not_found")
        },
    ];

    let (results, calls) = env
        .moto
        .record(async {
            let mut results = Vec::new();
            for case in &cases {
                let answer = env
                    .call(
                        case.method.clone(),
                        case.path,
                        case.bearer.as_deref(),
                        case.body.as_deref(),
                        case.content_type,
                    )
                    .await;
                results.push(answer);
            }
            results
        })
        .await;

    for (case, answer) in cases.iter().zip(&results) {
        assert_eq!(
            answer.status.as_u16(),
            case.status,
            "{}: {}",
            case.name,
            answer.text
        );
        assert_eq!(answer.error_code(), case.code, "{}", case.name);
    }
    assert!(
        calls_to(&calls, "sts").is_empty(),
        "bad input never reaches STS"
    );

    // A non-Bearer scheme.
    let answer = env
        .http
        .post(format!("{}/v1/credentials", env.url))
        .header("authorization", "Basic YWxpY2U6c2VjcmV0")
        .header("content-type", "application/json")
        .body(ok)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    assert_eq!(
        answer.headers()["www-authenticate"],
        "Bearer realm=\"cooper\""
    );
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_authorization");

    // And after all that, the good request still works.
    let answer = env
        .credentials(&token, serde_json::json!({"target": "a-readonly"}))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}
