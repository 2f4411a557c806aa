//! Signing in with an identity provider: a real OpenID Provider end to end (its token, its
//! groups, credentials back; the CLI's device and code flows), and every way a token can be
//! wrong, minted locally; the provider's keys fetched once and again on rotation.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cooper_core::clock::Clock;
use cooper_core::model::Principal;
use cooper_core::names::GroupName;
use serde_json::{Value, json};

use crate::harness::{ACCOUNT_A, FakeIdp, OpenIdProvider, TestEnv};

/// Account A with `a-ro`, granted to the group `sso-engineers` (which only the IdP asserts).
async fn granted_to_sso_group(env: &TestEnv) {
    env.account(ACCOUNT_A).await;
    env.role_target("a-ro", ACCOUNT_A, 10, None).await;
    env.group("sso-engineers", &[]).await;
    env.grant_account(
        Principal::Group(GroupName::parse("sso-engineers").unwrap()),
        ACCOUNT_A,
        10,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_providers_token_signs_in_and_its_groups_grant_a_target() {
    let op = OpenIdProvider::start(&["sso-engineers", "everyone"]);
    let config = op.config();
    let env = TestEnv::start_with(|s| s.oidc_providers = vec![config]).await;
    granted_to_sso_group(&env).await;

    let id_token = op.id_token("alice").await;
    // As a bearer token, straight away: no user record is needed, the groups carry the grant.
    let me = env.get("/v1/whoami", &id_token).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["user"], "alice@example.com");
    assert_eq!(me.body["authenticated_by"], "oidc");
    assert_eq!(me.body["groups"], json!(["everyone", "sso-engineers"]));
    let credentials = env.credentials(&id_token, json!({"target": "a-ro"})).await;
    assert_eq!(credentials.status, 200, "{}", credentials.text);
    assert!(
        credentials.body["principal_arn"]
            .as_str()
            .unwrap()
            .ends_with("/alice@example.com")
    );

    // Or exchanged for a cooper session that keeps the groups.
    let session = env
        .post("/v1/sessions/oidc", None, json!({"id_token": id_token}))
        .await;
    assert_eq!(session.status, 200, "{}", session.text);
    assert_eq!(session.body["groups"], json!(["everyone", "sso-engineers"]));
    let jwt = session.body["token"].as_str().unwrap();
    let credentials = env.credentials(jwt, json!({"target": "a-ro"})).await;
    assert_eq!(credentials.status, 200, "{}", credentials.text);

    let items = env.audit_items().await;
    let sessions: Vec<_> = items
        .iter()
        .filter(|i| i["event"].as_s().unwrap() == "session.created")
        .collect();
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        sessions[0]["auth"].as_s().unwrap(),
        &format!("oidc:{}", op.issuer)
    );
    assert!(
        !format!("{items:?}").contains(&id_token[40..]),
        "no token in the audit trail"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_directory_still_governs_people_the_provider_vouches_for() {
    let op = OpenIdProvider::start(&["sso-engineers"]);
    let config = op.config();
    let env = TestEnv::start_with(|s| s.oidc_providers = vec![config]).await;
    granted_to_sso_group(&env).await;
    env.put_user(&cooper_core::model::User {
        enabled: false,
        ..cooper_core::model::User::new(
            cooper_core::names::UserName::parse("bob@example.com").unwrap(),
        )
    })
    .await;
    let bob = op.id_token("bob").await;
    let refused = env.credentials(&bob, json!({"target": "a-ro"})).await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.error_code(), "user_disabled");
    let exchange = env
        .post("/v1/sessions/oidc", None, json!({"id_token": bob}))
        .await;
    assert_eq!(exchange.status, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_signs_in_with_the_device_grant_and_with_pkce() {
    let op = OpenIdProvider::start(&["sso-engineers"]);
    let config = op.config();
    let env = TestEnv::start_with(|s| s.oidc_providers = vec![config]).await;
    granted_to_sso_group(&env).await;

    for flow in ["device", "code"] {
        let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("oidc-{flow}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cooper"))
            .args([
                "login",
                "--oidc",
                "--issuer",
                &op.issuer,
                "--client-id",
                "cooper-cli",
                "--no-browser",
                "--flow",
                flow,
            ])
            .args(["--scopes", "openid email groups", "--endpoint", &env.url])
            .env("COOPER_CONFIG_DIR", &dir)
            .env("COOPER_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let url = loop {
            let mut line = String::new();
            assert!(
                stderr.read_line(&mut line).unwrap() > 0,
                "cooper login printed no URL"
            );
            if let Some(url) = line.trim().strip_prefix("Sign in at: ") {
                break url.to_owned();
            }
        };
        // The person at the browser signs in; the code flow ends by redirecting to the CLI.
        if let Some(callback) = op.sign_in(&url, "carol").await {
            assert_eq!(flow, "code");
            assert!(callback.starts_with("http://127.0.0.1:"), "{callback}");
            let page = reqwest::get(&callback).await.unwrap().text().await.unwrap();
            assert!(page.contains("Signed in"));
        }
        let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
            .await
            .unwrap();
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
        assert!(status.success(), "{flow}: {rest}");
        let session: Value =
            serde_json::from_slice(&std::fs::read(dir.join("sessions/default.json")).unwrap())
                .unwrap();
        assert_eq!(session["user"], "carol@example.com");
        let credentials = env
            .credentials(
                session["token"].as_str().unwrap(),
                json!({"target": "a-ro"}),
            )
            .await;
        assert_eq!(credentials.status, 200, "{flow}: {}", credentials.text);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn tamper_payload(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    edit(&mut claims);
    format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn every_kind_of_bad_token_is_a_401_with_its_own_code() {
    let idp = FakeIdp::start().await;
    let config = idp.config(json!({}));
    let env = TestEnv::start_with(|s| s.oidc_providers = vec![config]).await;
    granted_to_sso_group(&env).await;
    let now = env.clock.now();
    let good = idp.claims("alice@example.com", now);
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        edit(&mut c);
        idp.mint(&c, "key-1")
    };

    let valid = idp.mint(&good, "key-1");
    let ok = env.credentials(&valid, json!({"target": "a-ro"})).await;
    assert_eq!(ok.status, 200, "{}", ok.text);

    let other_issuer = FakeIdp::start().await;
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"key-1"}"#);
    let payload = valid.split('.').nth(1).unwrap();
    let hs256 = {
        // The classic confusion: HS256, keyed with the provider's public key.
        let jwks: Value = reqwest::get(format!("{}/jwks", idp.issuer))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let public = jwks["keys"][0].to_string();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some("key-1".into());
        jsonwebtoken::encode(
            &header,
            &good,
            &jsonwebtoken::EncodingKey::from_secret(public.as_bytes()),
        )
        .unwrap()
    };
    let bad_signature = {
        let (head, signature) = valid.rsplit_once('.').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
        bytes[10] ^= 0x01;
        format!("{head}.{}", URL_SAFE_NO_PAD.encode(bytes))
    };

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong issuer",
            other_issuer.mint(
                &{
                    let mut c = good.clone();
                    c["iss"] = json!(other_issuer.issuer);
                    c
                },
                "key-1",
            ),
            "unknown_issuer",
        ),
        (
            "wrong audience",
            with(&|c| c["aud"] = json!("someone-else")),
            "invalid_audience",
        ),
        (
            "two audiences, no azp",
            with(&|c| c["aud"] = json!(["cooper-test", "someone-else"])),
            "invalid_audience",
        ),
        (
            "expired",
            with(&|c| {
                c["iat"] = json!(now.unix_timestamp() - 7200);
                c["exp"] = json!(now.unix_timestamp() - 3600)
            }),
            "token_expired",
        ),
        (
            "not yet valid",
            with(&|c| c["nbf"] = json!(now.unix_timestamp() + 3600)),
            "token_not_yet_valid",
        ),
        (
            "issued in the future",
            with(&|c| c["iat"] = json!(now.unix_timestamp() + 3600)),
            "token_not_yet_valid",
        ),
        (
            "alg none",
            format!("{none_header}.{payload}."),
            "invalid_algorithm",
        ),
        ("HS256 with the public key", hs256, "invalid_algorithm"),
        (
            "unknown kid",
            idp.mint(&good, "never-published"),
            "unknown_key",
        ),
        (
            "tampered payload",
            tamper_payload(&valid, |c| c["email"] = json!("admin@example.com")),
            "invalid_signature",
        ),
        ("tampered signature", bad_signature, "invalid_signature"),
        (
            "disallowed email domain",
            with(&|c| {
                c["email"] = json!("eve@evil.example");
                c["sub"] = json!("eve")
            }),
            "email_domain_not_allowed",
        ),
        (
            "unverified email",
            with(&|c| c["email_verified"] = json!(false)),
            "email_not_verified",
        ),
        (
            "no exp",
            with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            "missing_claim",
        ),
        ("not a JWT", "a.b".to_owned(), "invalid_token"),
    ];
    let mut failures = Vec::new();
    for (name, token, code) in cases {
        let answer = env.credentials(&token, json!({"target": "a-ro"})).await;
        if answer.status != 401 || answer.error_code() != code {
            failures.push(format!("{name}: {} {}", answer.status, answer.text));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_are_fetched_once_and_again_on_rotation_but_not_for_every_bogus_kid() {
    let idp = FakeIdp::start().await;
    let config = idp.config(json!({}));
    let env = TestEnv::start_with(|s| s.oidc_providers = vec![config]).await;
    granted_to_sso_group(&env).await;
    let now = env.clock.now();

    for _ in 0..20 {
        let token = idp.mint(&idp.claims("alice@example.com", now), "key-1");
        assert_eq!(env.get("/v1/whoami", &token).await.status, 200);
    }
    assert_eq!(idp.fetches(), 1, "one fetch for twenty requests");

    // A flood of made-up kids: refused, and the provider is not asked again and again.
    for n in 0..10 {
        let token = idp.mint(&idp.claims("alice@example.com", now), &format!("bogus-{n}"));
        let answer = env.get("/v1/whoami", &token).await;
        assert_eq!(answer.error_code(), "unknown_key");
    }
    assert_eq!(idp.fetches(), 1, "no fetch within the refresh interval");

    // The provider rotates its key: the new kid makes cooper fetch the keys again.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    idp.add_key("key-2");
    let rotated = idp.mint(&idp.claims("alice@example.com", now), "key-2");
    let answer = env.get("/v1/whoami", &rotated).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(idp.fetches(), 2);
    // And the old key still verifies from the cache.
    let old = idp.mint(&idp.claims("alice@example.com", now), "key-1");
    assert_eq!(env.get("/v1/whoami", &old).await.status, 200);
    assert_eq!(idp.fetches(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_scope_can_come_from_the_providers_groups() {
    let idp = FakeIdp::start().await;
    let config = idp.config(json!({}));
    let env = TestEnv::start_with(|s| {
        s.oidc_providers = vec![config];
        s.admin_groups =
            cooper_core::admin::scope::AdminGroups::parse("sso-admins=111111111111").unwrap();
    })
    .await;
    granted_to_sso_group(&env).await;
    env.account("222222222222").await;
    let now = env.clock.now();
    let mut claims = idp.claims("root@example.com", now);
    claims["groups"] = json!(["sso-admins"]);
    let admin = idp.mint(&claims, "key-1");
    let plain = idp.mint(&idp.claims("pat@example.com", now), "key-1");

    let me = env.get("/v1/whoami", &admin).await;
    assert_eq!(
        me.body["admin"],
        json!({"scope": "accounts", "accounts": ["111111111111"]})
    );
    let own = env
        .admin(
            reqwest::Method::GET,
            "/v1/admin/accounts/111111111111",
            &admin,
            None,
            &[],
        )
        .await;
    assert_eq!(own.status, 200, "{}", own.text);
    let other = env
        .admin(
            reqwest::Method::GET,
            "/v1/admin/accounts/222222222222",
            &admin,
            None,
            &[],
        )
        .await;
    assert_eq!(other.status, 403);
    let not_admin = env
        .admin(
            reqwest::Method::GET,
            "/v1/admin/accounts",
            &plain,
            None,
            &[],
        )
        .await;
    assert_eq!(not_admin.status, 403);
}
