//! Deny by default, and the cascade: which grants cover which targets, for whom.

use cooper_core::model::{Grant, GrantScope, Principal, User};
use cooper_core::names::{AccountId, Level, UserName};
use serde_json::json;
use time::OffsetDateTime;

use crate::harness::{ACCOUNT_A, ACCOUNT_B, TestEnv, calls_to};

/// Account A: a-readonly (10), a-poweruser (50), a-admin (100). Account B: b-readonly (10).
async fn directory() -> TestEnv {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    env.account(ACCOUNT_B).await;
    env.role_target("a-readonly", ACCOUNT_A, 10, None).await;
    env.role_target("a-poweruser", ACCOUNT_A, 50, None).await;
    env.role_target("a-admin", ACCOUNT_A, 100, None).await;
    env.role_target("b-readonly", ACCOUNT_B, 10, None).await;
    env
}

/// Asks for `target`; returns the status and error code (if any), and whether STS was called.
async fn ask(env: &TestEnv, token: &str, target: &str) -> (u16, Option<String>, usize) {
    let (answer, calls) = env
        .moto
        .record(env.credentials(token, json!({ "target": target })))
        .await;
    let code = (answer.status != 200).then(|| answer.error_code().to_owned());
    (answer.status.as_u16(), code, calls_to(&calls, "sts").len())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_grant_cascades_to_targets_at_or_below_its_level() {
    let env = directory().await;
    let alice = env.user("alice").await;
    env.grant_account(Principal::User(alice.clone()), ACCOUNT_A, 50)
        .await;
    let token = env.api_token(&alice).await;

    assert_eq!(ask(&env, &token, "a-readonly").await, (200, None, 1));
    assert_eq!(ask(&env, &token, "a-poweruser").await, (200, None, 1));
    assert_eq!(
        ask(&env, &token, "a-admin").await,
        (403, Some("not_granted".into()), 0)
    );
    assert_eq!(
        ask(&env, &token, "b-readonly").await,
        (403, Some("not_granted".into()), 0)
    );

    let listed = env.get("/v1/targets", &token).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let names: Vec<&str> = listed.body["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a-poweruser", "a-readonly"]);
    assert_eq!(
        listed.body["targets"][1]["granted_by"],
        json!(["user alice -> account 111111111111 up to level 50"])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn group_grants_apply_to_members_only() {
    let env = directory().await;
    let bob = env.user("bob").await;
    let mallory = env.user("mallory").await;
    let eng = env.group("engineering", &[&bob]).await;
    env.grant_account(Principal::Group(eng), ACCOUNT_A, 10)
        .await;
    let bob_token = env.jwt(&bob);

    assert_eq!(ask(&env, &bob_token, "a-readonly").await, (200, None, 1));
    assert_eq!(
        ask(&env, &bob_token, "a-poweruser").await,
        (403, Some("not_granted".into()), 0)
    );
    let mallory_token = env.jwt(&mallory);
    assert_eq!(
        ask(&env, &mallory_token, "a-readonly").await,
        (403, Some("not_granted".into()), 0)
    );

    let me = env.get("/v1/whoami", &bob_token).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["user"], "bob");
    assert_eq!(me.body["groups"], json!(["engineering"]));
    assert_eq!(me.body["authenticated_by"], "jwt");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_grant_covers_that_target_whatever_its_level_and_nothing_else() {
    let env = directory().await;
    let carol = env.user("carol").await;
    env.grant_target(Principal::User(carol.clone()), "a-admin")
        .await;
    let token = env.api_token(&carol).await;
    assert_eq!(ask(&env, &token, "a-admin").await, (200, None, 1));
    assert_eq!(
        ask(&env, &token, "a-readonly").await,
        (403, Some("not_granted".into()), 0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_grant_disabled_expired_and_unknown_users_get_nothing_and_sts_is_never_called() {
    let env = directory().await;
    let now = OffsetDateTime::now_utc();

    let dave = env.user("dave").await;
    let dave_token = env.api_token(&dave).await;

    let erin = UserName::parse("erin").unwrap();
    env.put_user(&User {
        enabled: false,
        ..User::new(erin.clone())
    })
    .await;
    env.grant_account(Principal::User(erin.clone()), ACCOUNT_A, 100)
        .await;

    let frank = UserName::parse("frank").unwrap();
    env.put_user(&User {
        expires_at: Some(now - time::Duration::hours(1)),
        ..User::new(frank.clone())
    })
    .await;
    env.grant_account(Principal::User(frank.clone()), ACCOUNT_A, 100)
        .await;

    let grace = env.user("grace").await;
    env.directory
        .put_grant(&Grant {
            principal: Principal::User(grace.clone()),
            scope: GrantScope::Account {
                account: AccountId::parse(ACCOUNT_A).unwrap(),
                max_level: Level::new(100).unwrap(),
            },
            expires_at: Some(now - time::Duration::minutes(1)),
            via: None,
        })
        .await
        .unwrap();

    let erin_token = env.api_token(&erin).await;
    let frank_token = env.api_token(&frank).await;
    let grace_token = env.api_token(&grace).await;
    // A valid token for a name the directory does not hold.
    let ghost_token = env.jwt(&UserName::parse("ghost").unwrap());

    assert_eq!(
        ask(&env, &dave_token, "a-readonly").await,
        (403, Some("not_granted".into()), 0)
    );
    assert_eq!(
        ask(&env, &erin_token, "a-readonly").await,
        (403, Some("user_disabled".into()), 0)
    );
    assert_eq!(
        ask(&env, &frank_token, "a-readonly").await,
        (403, Some("user_expired".into()), 0)
    );
    assert_eq!(
        ask(&env, &grace_token, "a-readonly").await,
        (403, Some("not_granted".into()), 0)
    );
    assert_eq!(
        ask(&env, &ghost_token, "a-readonly").await,
        (403, Some("unknown_user".into()), 0)
    );
    // An unknown target answers exactly like an ungranted one: names cannot be probed.
    assert_eq!(
        ask(&env, &dave_token, "no-such-target").await,
        (403, Some("not_granted".into()), 0)
    );

    // Refusals are audited, with the reason.
    let items = env.audit_items().await;
    let mut reasons: Vec<(String, String)> = items
        .iter()
        .map(|i| {
            assert_eq!(i["event"].as_s().unwrap(), "credentials.denied");
            (
                i["actor"].as_s().unwrap().clone(),
                i["reason"].as_s().unwrap().clone(),
            )
        })
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            ("dave".to_owned(), "not_granted".to_owned()),
            ("dave".to_owned(), "not_granted".to_owned()),
            ("erin".to_owned(), "user_disabled".to_owned()),
            ("frank".to_owned(), "user_expired".to_owned()),
            ("ghost".to_owned(), "unknown_user".to_owned()),
            ("grace".to_owned(), "not_granted".to_owned()),
        ]
    );

    // A disabled user cannot list targets either.
    let listed = env.get("/v1/targets", &erin_token).await;
    assert_eq!(listed.status, 403);
    assert_eq!(listed.error_code(), "user_disabled");
}
