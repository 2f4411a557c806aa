//! The admin API: the scope matrix, sensitive operations with fresh codes, versions under
//! concurrency, audited changes and the key lookup, cascades, pagination, bad input.

use std::collections::BTreeSet;

use cooper_core::model::{FederationKeys, Principal};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::harness::{ACCOUNT_A, ACCOUNT_B, Answer, TestEnv};

const ACCOUNT_C: &str = "333333333333";

fn version_of(answer: &Answer) -> String {
    answer.headers["etag"].to_str().unwrap().to_owned()
}

/// Accounts A and B with targets `<x>-ro` (10), `<x>-top` (100) and `<x>-del-<actor>` (5).
async fn two_accounts(env: &TestEnv) {
    for (account, x) in [(ACCOUNT_A, "a"), (ACCOUNT_B, "b")] {
        env.account(account).await;
        env.role_target(&format!("{x}-ro"), account, 10, None).await;
        env.role_target(&format!("{x}-top"), account, 100, None)
            .await;
        for actor in ["p", "aa", "u"] {
            env.role_target(&format!("{x}-del-{actor}"), account, 5, None)
                .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_scope_matrix_allows_exactly_what_each_admin_may_do() {
    // Sensitive operations are covered by their own test: here, scope alone decides.
    let env = TestEnv::start_with(|s| s.admin_totp_operations = BTreeSet::new()).await;
    two_accounts(&env).await;
    let (_, universal) = env.universal_admin("una").await;
    let (_, account_a) = env.admin_of("abe", Some(ACCOUNT_A)).await;
    let plain_user = env.user("pat").await;
    let plain = env.api_token(&plain_user).await;
    for actor in ["p", "aa", "u"] {
        env.user(&format!("gina-{actor}")).await;
    }
    let actors = [
        ("p", plain.as_str()),
        ("aa", account_a.as_str()),
        ("u", universal.as_str()),
    ];

    // (what, universal-only?, request for account x / actor)
    type Request = (Method, String, Option<Value>);
    type MakeRequest = Box<dyn Fn(&str, &str, &str) -> Request>;
    let per_account: Vec<(&str, bool, MakeRequest)> = vec![
        (
            "read account",
            false,
            Box::new(|id, _, _| (Method::GET, format!("/v1/admin/accounts/{id}"), None)),
        ),
        (
            "list targets",
            false,
            Box::new(|id, _, _| (Method::GET, format!("/v1/admin/targets?account={id}"), None)),
        ),
        (
            "read target",
            false,
            Box::new(|_, x, _| (Method::GET, format!("/v1/admin/targets/{x}-ro"), None)),
        ),
        (
            "create target",
            false,
            Box::new(|id, x, a| {
                (
                    Method::POST,
                    "/v1/admin/targets".into(),
                    Some(
                        json!({"name": format!("{x}-new-{a}"), "account_id": id, "level": 5, "kind": "role",
                                "role_arn": format!("arn:aws:iam::{id}:role/new-{a}")}),
                    ),
                )
            }),
        ),
        (
            "grant",
            false,
            Box::new(|id, _, a| {
                (
                    Method::POST,
                    "/v1/admin/grants".into(),
                    Some(
                        json!({"principal": {"user": format!("gina-{a}")}, "account_id": id, "max_level": 10}),
                    ),
                )
            }),
        ),
        (
            "list grants",
            false,
            Box::new(|id, _, _| (Method::GET, format!("/v1/admin/grants?account={id}"), None)),
        ),
        (
            "revoke grant",
            false,
            Box::new(|id, _, a| {
                (
                    Method::DELETE,
                    format!("/v1/admin/grants?user=gina-{a}&account={id}"),
                    None,
                )
            }),
        ),
        (
            "delete target",
            false,
            Box::new(|_, x, a| {
                (
                    Method::DELETE,
                    format!("/v1/admin/targets/{x}-del-{a}"),
                    None,
                )
            }),
        ),
        (
            "read audit",
            false,
            Box::new(|id, _, _| (Method::GET, format!("/v1/admin/audit?account={id}"), None)),
        ),
        (
            "make an account admin",
            false,
            Box::new(|id, _, a| {
                (
                    Method::POST,
                    "/v1/admin/admins".into(),
                    Some(json!({"principal": {"user": format!("gina-{a}")}, "account_id": id})),
                )
            }),
        ),
    ];

    let mut failures = Vec::new();
    for (account, x) in [(ACCOUNT_A, "a"), (ACCOUNT_B, "b")] {
        for (what, universal_only, request) in &per_account {
            for (actor, token) in actors {
                let (method, path, body) = request(account, x, actor);
                let answer = env.admin(method, &path, token, body, &[]).await;
                let allowed = match actor {
                    "u" => true,
                    "aa" => account == ACCOUNT_A && !universal_only,
                    _ => false,
                };
                let ok = if allowed {
                    answer.status.is_success()
                } else {
                    answer.status == 403
                };
                if !ok {
                    failures.push(format!(
                        "{actor} {what} in {account}: {} {}",
                        answer.status, answer.text
                    ));
                } else if !allowed {
                    let code = answer.error_code();
                    let expected = if actor == "p" {
                        "not_an_admin"
                    } else if *what == "make an account admin" {
                        "wider_admin"
                    } else {
                        "out_of_scope"
                    };
                    if code != expected {
                        failures.push(format!(
                            "{actor} {what} in {account}: code {code}, expected {expected}"
                        ));
                    }
                }
            }
        }

        // Updates: each actor sends the version it just read (through the universal admin).
        for (actor, token) in actors {
            let current = env
                .admin(
                    Method::GET,
                    &format!("/v1/admin/accounts/{account}"),
                    &universal,
                    None,
                    &[],
                )
                .await;
            let answer = env
                .admin(
                    Method::PUT,
                    &format!("/v1/admin/accounts/{account}"),
                    token,
                    Some(json!({"name": format!("renamed by {actor}")})),
                    &[("if-match", &version_of(&current))],
                )
                .await;
            let allowed = actor == "u" || (actor == "aa" && account == ACCOUNT_A);
            if allowed != answer.status.is_success() || (!allowed && answer.status != 403) {
                failures.push(format!(
                    "{actor} update account {account}: {} {}",
                    answer.status, answer.text
                ));
            }
            let current = env
                .admin(
                    Method::GET,
                    &format!("/v1/admin/targets/{x}-ro"),
                    &universal,
                    None,
                    &[],
                )
                .await;
            let mut body = current.body.clone();
            body.as_object_mut().unwrap().remove("version");
            body["description"] = json!(format!("edited by {actor}"));
            let answer = env
                .admin(
                    Method::PUT,
                    &format!("/v1/admin/targets/{x}-ro"),
                    token,
                    Some(body),
                    &[("if-match", &version_of(&current))],
                )
                .await;
            if allowed != answer.status.is_success() || (!allowed && answer.status != 403) {
                failures.push(format!(
                    "{actor} update target {x}-ro: {} {}",
                    answer.status, answer.text
                ));
            }
        }
    }

    // Universal-only operations, whatever the account.
    env.account(ACCOUNT_C).await;
    for (actor, token) in actors {
        let checks: Vec<(&str, Answer)> = vec![
            (
                "create account",
                env.admin(
                    Method::POST,
                    "/v1/admin/accounts",
                    token,
                    Some(json!({"id": format!("44444444444{}", actor.len()), "name": actor})),
                    &[],
                )
                .await,
            ),
            (
                "create user",
                env.admin(
                    Method::POST,
                    "/v1/admin/users",
                    token,
                    Some(json!({"name": format!("new-{actor}")})),
                    &[],
                )
                .await,
            ),
            (
                "create group",
                env.admin(
                    Method::POST,
                    "/v1/admin/groups",
                    token,
                    Some(json!({"name": format!("group-{actor}")})),
                    &[],
                )
                .await,
            ),
            (
                "make a universal admin",
                env.admin(
                    Method::POST,
                    "/v1/admin/admins",
                    token,
                    Some(json!({"principal": {"user": format!("gina-{actor}")}})),
                    &[],
                )
                .await,
            ),
            (
                "list users",
                env.admin(Method::GET, "/v1/admin/users", token, None, &[])
                    .await,
            ),
        ];
        for (what, answer) in checks {
            let allowed = actor == "u" || (actor == "aa" && what == "list users");
            if allowed != answer.status.is_success() || (!allowed && answer.status != 403) {
                failures.push(format!("{actor} {what}: {} {}", answer.status, answer.text));
            }
        }
    }
    for (actor, token) in actors {
        let answer = env
            .admin(
                Method::DELETE,
                &format!("/v1/admin/accounts/{ACCOUNT_C}"),
                token,
                None,
                &[],
            )
            .await;
        let allowed = actor == "u";
        if allowed != answer.status.is_success() || (!allowed && answer.status != 403) {
            failures.push(format!(
                "{actor} delete account: {} {}",
                answer.status, answer.text
            ));
        }
    }

    // An account admin lists only their accounts.
    let listed = env
        .admin(Method::GET, "/v1/admin/accounts", &account_a, None, &[])
        .await;
    let ids: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["account"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [ACCOUNT_A]);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sensitive_operations_need_a_fresh_code() {
    let env = TestEnv::start().await;
    let account = env.account(ACCOUNT_A).await;
    env.account(ACCOUNT_C).await;
    env.role_target("a-ro", ACCOUNT_A, 10, None).await;
    env.role_target("a-top", ACCOUNT_A, 100, None).await;
    env.user("gina").await;
    let (_, token) = env.universal_admin("una").await;
    let authenticator = env.enroll(&token).await;
    let sealed = env
        .vault
        .seal_federation_keys(
            &env.kms_key,
            &FederationKeys::parse("AKIAIOSFODNN7EXAMPLE|wJalrXUtnFEMI/K7MDENG").unwrap(),
            &cooper_core::ports::FederationBinding {
                account: account.id.clone(),
                target: cooper_core::names::TargetName::parse("a-fed").unwrap(),
            },
        )
        .await
        .unwrap();

    let operations: Vec<(&str, Method, String, Option<Value>)> = vec![
        (
            "grant the top level",
            Method::POST,
            "/v1/admin/grants".into(),
            Some(json!({"principal": {"user": "gina"}, "account_id": ACCOUNT_A, "max_level": 100})),
        ),
        (
            "grant the top target",
            Method::POST,
            "/v1/admin/grants".into(),
            Some(json!({"principal": {"user": "gina"}, "target": "a-top"})),
        ),
        (
            "make an admin",
            Method::POST,
            "/v1/admin/admins".into(),
            Some(json!({"principal": {"user": "gina"}, "account_id": ACCOUNT_A})),
        ),
        (
            "set federation keys",
            Method::POST,
            "/v1/admin/targets".into(),
            Some(
                json!({"name": "a-fed", "account_id": ACCOUNT_A, "level": 10, "kind": "federated_user", "sealed_keys": sealed.as_str(),
                        "session_policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}]}}),
            ),
        ),
        (
            "delete an account",
            Method::DELETE,
            format!("/v1/admin/accounts/{ACCOUNT_C}"),
            None,
        ),
    ];
    for (what, method, path, body) in operations {
        let without = env
            .admin(method.clone(), &path, &token, body.clone(), &[])
            .await;
        assert_eq!(
            without.status, 422,
            "{what} without a code: {}",
            without.text
        );
        assert_eq!(without.error_code(), "totp_required");
        let wrong = env
            .admin(
                method.clone(),
                &path,
                &token,
                body.clone(),
                &[("x-cooper-totp", "000000")],
            )
            .await;
        assert_eq!(
            wrong.status, 403,
            "{what} with a wrong code: {}",
            wrong.text
        );
        assert_eq!(wrong.error_code(), "totp_invalid");
        let code = env.fresh_code(&authenticator);
        let with = env
            .admin(method, &path, &token, body, &[("x-cooper-totp", &code)])
            .await;
        assert!(
            with.status.is_success(),
            "{what} with a fresh code: {}",
            with.text
        );
    }

    // Below the top level, no code is needed.
    let low = env
        .admin(
            Method::POST,
            "/v1/admin/grants",
            &token,
            Some(json!({"principal": {"user": "gina"}, "target": "a-ro"})),
            &[],
        )
        .await;
    assert_eq!(low.status, 201, "{}", low.text);

    // The refusals are audited.
    let refused = env
        .audit_items()
        .await
        .iter()
        .filter(|i| i["event"].as_s().unwrap() == "admin.refused")
        .map(|i| i["reason"].as_s().unwrap().clone())
        .collect::<Vec<_>>();
    assert_eq!(refused.iter().filter(|r| *r == "totp_required").count(), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_updates_with_one_version_let_exactly_one_win() {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    env.role_target("a-ro", ACCOUNT_A, 10, None).await;
    let (_, token) = env.universal_admin("una").await;

    let current = env
        .admin(Method::GET, "/v1/admin/targets/a-ro", &token, None, &[])
        .await;
    let version = version_of(&current);
    assert_eq!(version, "\"1\"");
    let edit = |description: &str| {
        let mut body = current.body.clone();
        body.as_object_mut().unwrap().remove("version");
        body["description"] = json!(description);
        body
    };

    let missing = env
        .admin(
            Method::PUT,
            "/v1/admin/targets/a-ro",
            &token,
            Some(edit("no version")),
            &[],
        )
        .await;
    assert_eq!(missing.status, 428);
    assert_eq!(missing.error_code(), "precondition_required");

    let if_match = [("if-match", version.as_str())];
    let (first, second) = tokio::join!(
        env.admin(
            Method::PUT,
            "/v1/admin/targets/a-ro",
            &token,
            Some(edit("first")),
            &if_match
        ),
        env.admin(
            Method::PUT,
            "/v1/admin/targets/a-ro",
            &token,
            Some(edit("second")),
            &if_match
        ),
    );
    let mut statuses = [first.status.as_u16(), second.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{} / {}", first.text, second.text);
    let loser = if first.status == 409 { &first } else { &second };
    assert_eq!(loser.error_code(), "version_conflict");
    let winner = if first.status == 200 { &first } else { &second };
    assert_eq!(version_of(winner), "\"2\"");

    let now = env
        .admin(Method::GET, "/v1/admin/targets/a-ro", &token, None, &[])
        .await;
    assert_eq!(now.body["description"], winner.body["description"]);
    let stale = env
        .admin(
            Method::PUT,
            "/v1/admin/targets/a-ro",
            &token,
            Some(edit("stale")),
            &[("if-match", &version)],
        )
        .await;
    assert_eq!(stale.status, 409);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_change_is_audited_and_the_key_lookup_finds_its_holder() {
    let env = TestEnv::start_with(|s| s.admin_totp_operations = BTreeSet::new()).await;
    env.account(ACCOUNT_A).await;
    env.account(ACCOUNT_B).await;
    let (_, admin) = env.universal_admin("una").await;
    let (_, admin_a) = env.admin_of("abe", Some(ACCOUNT_A)).await;
    let (_, admin_b) = env.admin_of("bea", Some(ACCOUNT_B)).await;

    let created = env
        .admin(
            Method::POST,
            "/v1/admin/targets",
            &admin,
            Some(
                json!({"name": "a-ro", "account_id": ACCOUNT_A, "level": 10, "kind": "role",
               "role_arn": "arn:aws:iam::111111111111:role/ro", "external_id": "ext-1"}),
            ),
            &[],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let mut body = created.body.clone();
    body.as_object_mut().unwrap().remove("version");
    body["level"] = json!(20);
    let updated = env
        .admin(
            Method::PUT,
            "/v1/admin/targets/a-ro",
            &admin,
            Some(body),
            &[("if-match", "1")],
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    let user = env
        .admin(
            Method::POST,
            "/v1/admin/users",
            &admin,
            Some(json!({"name": "alice"})),
            &[],
        )
        .await;
    assert_eq!(user.status, 201, "{}", user.text);
    let grant = env
        .admin(
            Method::POST,
            "/v1/admin/grants",
            &admin,
            Some(json!({"principal": {"user": "alice"}, "account_id": ACCOUNT_A, "max_level": 50})),
            &[],
        )
        .await;
    assert_eq!(grant.status, 201, "{}", grant.text);
    let issued = env
        .admin(
            Method::POST,
            "/v1/admin/users/alice/tokens",
            &admin,
            Some(json!({"label": "laptop"})),
            &[],
        )
        .await;
    assert_eq!(issued.status, 201, "{}", issued.text);
    let alice_token = issued.body["token"].as_str().unwrap().to_owned();

    // Changes carry who, what, before and after.
    let changes: Vec<_> = env
        .audit_items()
        .await
        .into_iter()
        .filter(|i| i["event"].as_s().unwrap() == "admin.change")
        .collect();
    let find = |resource: &str, action: &str| {
        changes
            .iter()
            .find(|i| {
                i["resource"].as_s().unwrap() == resource && i["action"].as_s().unwrap() == action
            })
            .unwrap_or_else(|| panic!("no audit record of {action} {resource}"))
    };
    let update = find("target:a-ro", "update");
    assert_eq!(update["actor"].as_s().unwrap(), "una");
    assert_eq!(
        update["before"].as_m().unwrap()["level"].as_n().unwrap(),
        "10"
    );
    assert_eq!(
        update["after"].as_m().unwrap()["level"].as_n().unwrap(),
        "20"
    );
    assert_eq!(update["account"].as_s().unwrap(), ACCOUNT_A);
    assert!(find("target:a-ro", "create").get("before").is_none());
    find("user:alice", "create");
    find("user:alice", "issue_token");
    assert_eq!(changes.len(), 5);
    assert!(
        !format!("{changes:?}").contains(&alice_token[20..]),
        "no token in the audit trail"
    );

    // Who holds this key?
    let credentials = env
        .credentials(&alice_token, json!({"target": "a-ro"}))
        .await;
    assert_eq!(credentials.status, 200, "{}", credentials.text);
    let key = credentials.body["access_key_id"].as_str().unwrap();
    let holder = env
        .admin(
            Method::GET,
            &format!("/v1/admin/audit?access_key_id={key}"),
            &admin,
            None,
            &[],
        )
        .await;
    assert_eq!(holder.status, 200, "{}", holder.text);
    let items = holder.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["actor"], "alice");
    assert_eq!(items[0]["target"], "a-ro");
    assert_eq!(items[0]["event"], "credentials.issued");
    // Account A's admin sees it; account B's admin does not.
    let seen_by_a = env
        .admin(
            Method::GET,
            &format!("/v1/admin/audit?access_key_id={key}"),
            &admin_a,
            None,
            &[],
        )
        .await;
    assert_eq!(seen_by_a.body["items"].as_array().unwrap().len(), 1);
    let seen_by_b = env
        .admin(
            Method::GET,
            &format!("/v1/admin/audit?access_key_id={key}"),
            &admin_b,
            None,
            &[],
        )
        .await;
    assert_eq!(seen_by_b.body["items"].as_array().unwrap().len(), 0);
    let in_b = env
        .admin(
            Method::GET,
            &format!("/v1/admin/audit?account={ACCOUNT_A}"),
            &admin_b,
            None,
            &[],
        )
        .await;
    assert_eq!(in_b.status, 403);

    // By user and by account, in time order (oldest first by default, newest first on request).
    let by_user = env
        .admin(Method::GET, "/v1/admin/audit?user=una", &admin, None, &[])
        .await;
    let resources: Vec<&str> = by_user.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["resource"].as_str())
        .collect();
    assert_eq!(resources.first(), Some(&"target:a-ro"));
    let newest = env
        .admin(
            Method::GET,
            "/v1/admin/audit?user=una&order=desc&limit=1",
            &admin,
            None,
            &[],
        )
        .await;
    assert_eq!(newest.body["items"][0]["action"], "issue_token");
    assert!(newest.body["cursor"].is_string());
    let by_account = env
        .admin(
            Method::GET,
            &format!("/v1/admin/audit?account={ACCOUNT_A}"),
            &admin,
            None,
            &[],
        )
        .await;
    assert!(by_account.body["items"].as_array().unwrap().len() >= 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_what_grants_point_to_is_refused_or_cascades() {
    let env = TestEnv::start_with(|s| s.admin_totp_operations = BTreeSet::new()).await;
    env.account(ACCOUNT_A).await;
    env.role_target("a-ro", ACCOUNT_A, 10, None).await;
    let alice = env.user("alice").await;
    let ops = env.group("ops", &[&alice]).await;
    env.grant_target(Principal::User(alice.clone()), "a-ro")
        .await;
    env.grant_target(Principal::Group(ops.clone()), "a-ro")
        .await;
    let alice_token = env.api_token(&alice).await;
    let (_, admin) = env.universal_admin("una").await;

    let refused = env
        .admin(Method::DELETE, "/v1/admin/targets/a-ro", &admin, None, &[])
        .await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert_eq!(refused.error_code(), "in_use");
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("grant user alice -> target a-ro")
    );
    assert_eq!(
        env.credentials(&alice_token, json!({"target": "a-ro"}))
            .await
            .status,
        200,
        "nothing was removed"
    );

    let cascaded = env
        .admin(
            Method::DELETE,
            "/v1/admin/targets/a-ro?cascade=true",
            &admin,
            None,
            &[],
        )
        .await;
    assert_eq!(cascaded.status, 200, "{}", cascaded.text);
    assert_eq!(cascaded.body["cascaded"].as_array().unwrap().len(), 2);
    let grants = env
        .admin(
            Method::GET,
            &format!("/v1/admin/grants?account={ACCOUNT_A}"),
            &admin,
            None,
            &[],
        )
        .await;
    assert_eq!(grants.body["items"], json!([]));

    // A user with memberships: refused, then removed with everything they own.
    let refused = env
        .admin(Method::DELETE, "/v1/admin/users/alice", &admin, None, &[])
        .await;
    assert_eq!(refused.status, 409);
    let removed = env
        .admin(
            Method::DELETE,
            "/v1/admin/users/alice?cascade=true",
            &admin,
            None,
            &[],
        )
        .await;
    assert_eq!(removed.status, 200, "{}", removed.text);
    assert_eq!(
        env.get("/v1/whoami", &alice_token).await.status,
        401,
        "their tokens went with them"
    );
    let group = env
        .admin(Method::GET, "/v1/admin/groups/ops", &admin, None, &[])
        .await;
    assert_eq!(group.body["members"], json!([]));

    // An account with targets is refused unless cascaded.
    env.role_target("a-other", ACCOUNT_A, 10, None).await;
    let refused = env
        .admin(
            Method::DELETE,
            &format!("/v1/admin/accounts/{ACCOUNT_A}"),
            &admin,
            None,
            &[],
        )
        .await;
    assert_eq!(refused.status, 409);
    let removed = env
        .admin(
            Method::DELETE,
            &format!("/v1/admin/accounts/{ACCOUNT_A}?cascade=true"),
            &admin,
            None,
            &[],
        )
        .await;
    assert_eq!(removed.status, 200, "{}", removed.text);
    assert_eq!(
        env.admin(Method::GET, "/v1/admin/targets/a-other", &admin, None, &[])
            .await
            .status,
        404
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_paginate_with_cursors() {
    let env = TestEnv::start().await;
    let (_, admin) = env.universal_admin("una").await;
    for n in 0..7 {
        env.account(&format!("10000000000{n}")).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/admin/accounts?limit=3&cursor={c}"),
            None => "/v1/admin/accounts?limit=3".to_owned(),
        };
        let page = env.admin(Method::GET, &path, &admin, None, &[]).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let items = page.body["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(
            items
                .iter()
                .map(|i| i["account"]["id"].as_str().unwrap().to_owned()),
        );
        pages += 1;
        match page.body["cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert!(pages >= 3);
    let unique: BTreeSet<_> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (7, 7));

    // A cursor from another list, or a made-up one, is refused.
    let users = env
        .admin(Method::GET, "/v1/admin/users?limit=1", &admin, None, &[])
        .await;
    env.user("zed").await;
    let users = if users.body["cursor"].is_string() {
        users
    } else {
        env.admin(Method::GET, "/v1/admin/users?limit=1", &admin, None, &[])
            .await
    };
    let foreign = users.body["cursor"].as_str().unwrap();
    let answer = env
        .admin(
            Method::GET,
            &format!("/v1/admin/accounts?cursor={foreign}"),
            &admin,
            None,
            &[],
        )
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    let answer = env
        .admin(
            Method::GET,
            "/v1/admin/accounts?cursor=garbage",
            &admin,
            None,
            &[],
        )
        .await;
    assert_eq!(answer.status, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_on_every_endpoint_is_a_clear_4xx() {
    let env = TestEnv::start_with(|s| s.admin_totp_operations = BTreeSet::new()).await;
    env.account(ACCOUNT_A).await;
    env.role_target("a-ro", ACCOUNT_A, 10, None).await;
    env.user("gina").await;
    let (_, admin) = env.universal_admin("una").await;
    let _ = SecretString::from("");

    type Case<'a> = (
        Method,
        &'a str,
        Option<&'a str>,
        &'a [(&'a str, &'a str)],
        u16,
    );
    let cases: Vec<Case> = vec![
        (Method::POST, "/v1/admin/accounts", Some("{"), &[], 400),
        (
            Method::POST,
            "/v1/admin/accounts",
            Some(r#"{"id":"12","name":"x"}"#),
            &[],
            400,
        ),
        (
            Method::POST,
            "/v1/admin/accounts",
            Some(r#"{"id":"123456789012","name":"x","extra":1}"#),
            &[],
            400,
        ),
        (
            Method::POST,
            "/v1/admin/accounts",
            Some(r#"{"id":"123456789012","name":"x","partition":"aws-mars"}"#),
            &[],
            400,
        ),
        (
            Method::POST,
            "/v1/admin/accounts",
            Some(r#"{"id":"123456789012"}"#),
            &[],
            400,
        ),
        (
            Method::POST,
            "/v1/admin/accounts",
            Some(r#"{"id":"111111111111","name":"dup"}"#),
            &[],
            409,
        ),
        (Method::GET, "/v1/admin/accounts/not-an-id", None, &[], 400),
        (
            Method::GET,
            "/v1/admin/accounts/999999999999",
            None,
            &[],
            404,
        ),
        (
            Method::PUT,
            "/v1/admin/accounts/111111111111",
            Some(r#"{"name":"x"}"#),
            &[("if-match", "nonsense")],
            400,
        ),
        (
            Method::PUT,
            "/v1/admin/accounts/111111111111",
            Some(r#"{"id":"222222222222","name":"x"}"#),
            &[("if-match", "1")],
            400,
        ),
        (
            Method::PUT,
            "/v1/admin/accounts/111111111111",
            Some(r#"{"name":"x","partition":"aws-cn"}"#),
            &[("if-match", "1")],
            400,
        ),
        (Method::GET, "/v1/admin/accounts?limit=0", None, &[], 400),
        (Method::GET, "/v1/admin/accounts?limit=1000", None, &[], 400),
        (Method::GET, "/v1/admin/accounts?unknown=1", None, &[], 400),
        (Method::GET, "/v1/admin/targets", None, &[], 400),
        (
            Method::POST,
            "/v1/admin/targets",
            Some(
                r#"{"name":"t1","account_id":"111111111111","level":10,"kind":"role","role_arn":"arn:aws:iam::222222222222:role/x"}"#,
            ),
            &[],
            400,
        ),
        (
            Method::POST,
            "/v1/admin/targets",
            Some(
                r#"{"name":"t1","account_id":"111111111111","level":5000,"kind":"role","role_arn":"arn:aws:iam::111111111111:role/x"}"#,
            ),
            &[],
            400,
        ),
        (
            Method::POST,
            "/v1/admin/targets",
            Some(r#"{"name":"t1","account_id":"111111111111","level":10,"kind":"role"}"#),
            &[],
            400,
        ),
        (
            Method::POST,
            "/v1/admin/targets",
            Some(r#"{"name":"t1","account_id":"111111111111","level":10,"kind":"lambda"}"#),
            &[],
            400,
        ),
        (
            Method::POST,
            "/v1/admin/targets",
            Some(
                r#"{"name":"t1","account_id":"111111111111","level":10,"kind":"role","role_arn":"arn:aws:iam::111111111111:role/x","max_duration_seconds":99999}"#,
            ),
            &[],
            400,
        ),
        (
            Method::POST,
            "/v1/admin/targets",
            Some(
                r#"{"name":"t1","account_id":"111111111111","level":10,"kind":"federated_user","session_policy":{"Statement":[]}}"#,
            ),
            &[],
            400,
        ),
        (
            Method::POST,
            "/v1/admin/targets",
            Some(
                r#"{"name":"t1","account_id":"111111111111","level":10,"kind":"federated_user","sealed_keys":"!!","session_policy":{"Statement":[]}}"#,
            ),
            &[],
            400,
        ),
        (
            Method::POST,
            "/v1/admin/targets",
            Some(
                r#"{"name":"t1","account_id":"999999999999","level":10,"kind":"role","role_arn":"arn:aws:iam::999999999999:role/x"}"#,
            ),
            &[],
            404,
        ),
        (
            Method::POST,
            "/v1/admin/targets",
            Some(
                r#"{"name":"bad name","account_id":"111111111111","level":10,"kind":"role","role_arn":"arn:aws:iam::111111111111:role/x"}"#,
            ),
            &[],
            400,
        ),
        (
            Method::POST,
            "/v1/admin/targets",
            Some(
                r#"{"name":"t2","account_id":"111111111111","level":10,"kind":"role","role_arn":"arn:aws:iam::111111111111:role/x","approvers":[{"user":"nobody"}]}"#,
            ),
            &[],
            404,
        ),
        (Method::GET, "/v1/admin/targets/nope", None, &[], 404),
        (
            Method::POST,
            "/v1/admin/users",
            Some(r#"{"name":"a"}"#),
            &[],
            400,
        ),
        (
            Method::POST,
            "/v1/admin/users",
            Some(r#"{"name":"bob","expires_at":"tomorrow"}"#),
            &[],
            400,
        ),
        (
            Method::POST,
            "/v1/admin/users",
            Some(r#"{"name":"bob","enabled":"yes"}"#),
            &[],
            400,
        ),
        (
            Method::POST,
            "/v1/admin/users",
            Some(r#"{"name":"gina"}"#),
            &[],
            409,
        ),
        (Method::GET, "/v1/admin/users/nobody", None, &[], 404),
        (
            Method::POST,
            "/v1/admin/users/nobody/tokens",
            Some(r#"{}"#),
            &[],
            404,
        ),
        (
            Method::POST,
            "/v1/admin/users/gina/tokens",
            Some(r#"{"days":1000}"#),
            &[],
            400,
        ),
        (Method::DELETE, "/v1/admin/tokens/xyz", None, &[], 400),
        (
            Method::DELETE,
            "/v1/admin/tokens/0123456789abcdef",
            None,
            &[],
            404,
        ),
        (
            Method::POST,
            "/v1/admin/groups",
            Some(r#"{"name":"a#b"}"#),
            &[],
            400,
        ),
        (
            Method::PUT,
            "/v1/admin/groups/nope/members/gina",
            None,
            &[],
            404,
        ),
        (
            Method::DELETE,
            "/v1/admin/groups/nope/members/gina",
            None,
            &[],
            404,
        ),
        (
            Method::POST,
            "/v1/admin/grants",
            Some(r#"{"principal":{"user":"gina"}}"#),
            &[],
            400,
        ),
        (
            Method::POST,
            "/v1/admin/grants",
            Some(r#"{"principal":{"robot":"gina"},"target":"a-ro"}"#),
            &[],
            400,
        ),
        (
            Method::POST,
            "/v1/admin/grants",
            Some(
                r#"{"principal":{"user":"gina"},"target":"a-ro","account_id":"111111111111","max_level":1}"#,
            ),
            &[],
            400,
        ),
        (
            Method::POST,
            "/v1/admin/grants",
            Some(r#"{"principal":{"user":"nobody"},"target":"a-ro"}"#),
            &[],
            404,
        ),
        (
            Method::POST,
            "/v1/admin/grants",
            Some(r#"{"principal":{"user":"gina"},"target":"nope"}"#),
            &[],
            404,
        ),
        (Method::DELETE, "/v1/admin/grants?user=gina", None, &[], 400),
        (
            Method::DELETE,
            "/v1/admin/grants?user=gina&target=a-ro",
            None,
            &[],
            404,
        ),
        (Method::GET, "/v1/admin/grants", None, &[], 400),
        (
            Method::POST,
            "/v1/admin/admins",
            Some(r#"{"principal":{"user":"gina"},"account_id":"x"}"#),
            &[],
            400,
        ),
        (Method::GET, "/v1/admin/audit", None, &[], 400),
        (
            Method::GET,
            "/v1/admin/audit?access_key_id=short",
            None,
            &[],
            400,
        ),
        (
            Method::GET,
            "/v1/admin/audit?user=gina&account=111111111111",
            None,
            &[],
            400,
        ),
        (
            Method::GET,
            "/v1/admin/audit?user=gina&order=sideways",
            None,
            &[],
            400,
        ),
        (Method::PATCH, "/v1/admin/accounts", None, &[], 405),
        (
            Method::GET,
            "/v1/admin/accounts",
            None,
            &[("x-cooper-totp", "12ab")],
            400,
        ),
    ];
    let mut failures = Vec::new();
    for (method, path, body, headers, status) in cases {
        let answer = env
            .call_with(
                method.clone(),
                path,
                Some(&admin),
                body,
                body.map(|_| "application/json"),
                headers,
            )
            .await;
        if answer.status.as_u16() != status {
            failures.push(format!(
                "{method} {path} {body:?}: expected {status}, got {} {}",
                answer.status, answer.text
            ));
            continue;
        }
        answer.error_code();
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
