//! The ways around cooper's own rules that a read of the code found (docs/security.md), each
//! closed and held here: lockout and claim as one condition, strangers unable to lock anyone
//! out or to learn who exists, the fresh-code rule whatever the order of steps, factors that a
//! bearer token alone cannot take over, sealed keys bound to their account and target.

use cooper_aws::aws_sdk_dynamodb::types::AttributeValue;
use cooper_core::clock::Clock;
use cooper_core::model::Principal;
use serde_json::json;
use time::Duration;

use crate::harness::{ACCOUNT_A, Authenticator, TestEnv, pyotp_code};

/// A high-security target alice may become, alice's API token and enrolled authenticator.
async fn guarded(env: &TestEnv) -> (String, Authenticator) {
    env.account(ACCOUNT_A).await;
    let mut target = env.role_target("a-sensitive", ACCOUNT_A, 10, None).await;
    target.high_security = true;
    env.directory.put_target(&target).await.unwrap();
    let alice = env.user("alice").await;
    env.grant_target(Principal::User(alice.clone()), "a-sensitive")
        .await;
    let token = env.api_token(&alice).await;
    let authenticator = env.enroll(&token).await;
    (token, authenticator)
}

/// A six-digit code that is not the right one now (nor a step either side).
fn wrong_code(env: &TestEnv, authenticator: &Authenticator) -> String {
    let now = env.clock.now();
    let taken: Vec<String> = [-30, 0, 30]
        .iter()
        .map(|s| pyotp_code(&authenticator.uri, now + Duration::seconds(*s)))
        .collect();
    (0..)
        .map(|n: u32| format!("{:06}", (n * 7919) % 1_000_000))
        .find(|c| !taken.contains(c))
        .unwrap()
}

async fn failures_of(env: &TestEnv, user: &str) -> u32 {
    let item = env
        .dynamodb
        .get_item()
        .table_name(&env.settings.directory_table)
        .key("PK", AttributeValue::S(format!("AUTH#{user}")))
        .key("SK", AttributeValue::S("GUARD".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_default();
    item.get("failures")
        .and_then(|v| v.as_n().ok())
        .map_or(0, |n| n.parse().unwrap())
}

/// Twenty wrong codes at once, with moto serving DynamoDB requests concurrently: each one is
/// counted (the count is an atomic add, not a read and a write), none gets through, and then the
/// user is locked out, the right code included.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_wrong_codes_each_count_and_then_nothing_gets_through() {
    let env = TestEnv::start_concurrent().await;
    let (token, authenticator) = guarded(&env).await;
    let ask =
        |code: String| env.credentials(&token, json!({"target": "a-sensitive", "totp": code}));

    let wrong = wrong_code(&env, &authenticator);
    let answers = futures_util::future::join_all((0..20).map(|_| ask(wrong.clone()))).await;
    for a in &answers {
        assert!(
            matches!(
                (a.status.as_u16(), a.error_code()),
                (403, "totp_invalid") | (429, "locked_out")
            ),
            "{} {}",
            a.status,
            a.text
        );
    }
    assert_eq!(failures_of(&env, "alice").await, 20, "every guess counted");

    let right = ask(env.fresh_code(&authenticator)).await;
    assert_eq!(
        (right.status.as_u16(), right.error_code()),
        (429, "locked_out"),
        "{}",
        right.text
    );
}

/// The lock and the claim are one decision: a right code read before the lock and written
/// after it is refused (the claim's condition is the lock rule), and its credentials are never
/// handed out.
#[tokio::test(flavor = "multi_thread")]
async fn a_lock_set_while_a_right_code_is_under_way_refuses_it() {
    let env = TestEnv::start().await;
    let (token, authenticator) = guarded(&env).await;
    let ask =
        |code: String| env.credentials(&token, json!({"target": "a-sensitive", "totp": code}));

    // The right code's claim is held on its way to DynamoDB...
    let hold = env.faults.hold("last_step");
    let right = env.fresh_code(&authenticator);
    let wrong = wrong_code(&env, &authenticator);
    let (answer, ()) = tokio::join!(ask(right), async {
        hold.until_holding(1).await;
        // ...while five wrong codes lock the user out.
        for _ in 0..5 {
            ask(wrong.clone()).await;
        }
        hold.release();
    });
    assert_eq!(
        (answer.status.as_u16(), answer.error_code()),
        (429, "locked_out"),
        "{}",
        answer.text
    );
    assert!(answer.body.get("secret_access_key").is_none());
}

async fn set_password(env: &TestEnv, authenticator: &Authenticator) {
    let session = env.jwt(&cooper_core::names::UserName::parse("alice").unwrap());
    let set = env
        .call(
            reqwest::Method::PUT,
            "/v1/password",
            Some(&session),
            Some(
                &json!({"password": "correct horse battery staple", "totp": env.fresh_code(authenticator)})
                    .to_string(),
            ),
            Some("application/json"),
        )
        .await;
    assert_eq!(set.status, 204, "{}", set.text);
}

/// A stranger's wrong passwords cost the user nothing: no failure is counted against them, so
/// they are never locked out of their TOTP-gated work, and the audit trail gets a bounded number
/// of records (not one, and one notice, per guess).
#[tokio::test(flavor = "multi_thread")]
async fn strangers_cannot_lock_a_user_out_and_their_guesses_cost_the_trail_little() {
    let env = TestEnv::start().await;
    let (token, authenticator) = guarded(&env).await;
    set_password(&env, &authenticator).await;
    let sign_in = |password: &str, code: String| {
        env.post(
            "/v1/sessions",
            None,
            json!({"user": "alice", "password": password, "totp": code}),
        )
    };
    for _ in 0..12 {
        let refused = sign_in("a guess", "123456".into()).await;
        assert_eq!(
            (refused.status.as_u16(), refused.error_code()),
            (401, "invalid_credentials")
        );
    }
    assert_eq!(failures_of(&env, "alice").await, 0);
    let work = env
        .credentials(
            &token,
            json!({"target": "a-sensitive", "totp": env.fresh_code(&authenticator)}),
        )
        .await;
    assert_eq!(work.status, 200, "{}", work.text);

    let refusals = env
        .audit_items()
        .await
        .into_iter()
        .filter(|i| i["event"].as_s().unwrap() == "session.refused")
        .count();
    assert!(
        (1..=2).contains(&refusals),
        "twelve guesses left {refusals} records"
    );
}

/// A refusal does not say whether the user exists, is enrolled or is locked: an unknown user, a
/// wrong password and a wrong code get the same answer, after the same floor of time; only the
/// right password learns of a lock.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_sign_in_tells_a_stranger_nothing() {
    let env = TestEnv::start().await;
    let (_, authenticator) = guarded(&env).await;
    set_password(&env, &authenticator).await;
    let server = &env;
    let sign_in = |user: &str, password: &str, code: String| {
        let env = server;
        let body = json!({"user": user, "password": password, "totp": code});
        async move {
            let started = std::time::Instant::now();
            let answer = env.post("/v1/sessions", None, body).await;
            (answer, started.elapsed())
        }
    };
    let right_password = "correct horse battery staple";
    let mut elapsed: Vec<(&str, std::time::Duration)> = Vec::new();
    for _ in 0..3 {
        let wrong = wrong_code(&env, &authenticator);
        for (kind, user, password, code) in [
            ("unknown user", "nobody-here", right_password, wrong.clone()),
            ("wrong password", "alice", "not the password", wrong.clone()),
            ("wrong code", "alice", right_password, wrong.clone()),
        ] {
            let (answer, took) = sign_in(user, password, code).await;
            assert_eq!(
                (answer.status.as_u16(), answer.error_code()),
                (401, "invalid_credentials"),
                "{kind}: {}",
                answer.text
            );
            assert_eq!(
                answer.body["error"]["message"],
                "the user name, password or code is wrong"
            );
            elapsed.push((kind, took));
        }
    }
    let floor = cooper_core::sessions::REFUSAL_FLOOR;
    for (kind, took) in &elapsed {
        assert!(*took >= floor, "{kind} answered in {took:?}");
    }
    let median = |kind: &str| {
        let mut t: Vec<_> = elapsed
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, d)| *d)
            .collect();
        t.sort();
        t[t.len() / 2]
    };
    let medians = [
        median("unknown user"),
        median("wrong password"),
        median("wrong code"),
    ];
    let spread = *medians.iter().max().unwrap() - *medians.iter().min().unwrap();
    assert!(
        spread < std::time::Duration::from_millis(250),
        "{medians:?}"
    );

    // Locked out (by wrong codes with the right password): a wrong password still hears only
    // "wrong", the right password hears of the lock.
    for _ in 0..3 {
        sign_in("alice", right_password, wrong_code(&env, &authenticator)).await;
    }
    let (guess, _) = sign_in("alice", "not the password", "123456".into()).await;
    assert_eq!(guess.error_code(), "invalid_credentials");
    let (owner, _) = sign_in("alice", right_password, env.fresh_code(&authenticator)).await;
    assert_eq!(
        (owner.status.as_u16(), owner.error_code()),
        (429, "locked_out")
    );
    env.clock.advance(Duration::minutes(16));
}

/// API tokens are for scripts, and an identity provider's token is for signing in: neither
/// alone enrolls an authenticator, sets a password or approves. Those take a person signed in.
#[tokio::test(flavor = "multi_thread")]
async fn a_script_token_cannot_enroll_set_a_password_or_approve() {
    let idp = crate::harness::FakeIdp::start().await;
    let config = idp.config(json!({}));
    let env = TestEnv::start_with(|s| s.oidc_providers = vec![config]).await;
    env.account(ACCOUNT_A).await;
    let mut target = env.role_target("a-breakglass", ACCOUNT_A, 10, None).await;
    let bob = env.user("bob").await;
    target.approvers = vec![Principal::User(bob.clone())];
    env.directory.put_target(&target).await.unwrap();
    let alice = env.user("alice@example.com").await;
    env.grant_target(Principal::User(alice.clone()), "a-breakglass")
        .await;
    let token = env.api_token(&alice).await;
    let refused = |a: &crate::harness::Answer| (a.status.as_u16(), a.error_code().to_owned());
    let session_required = (403, "session_required".to_owned());

    let by_token = env
        .post("/v1/totp/enrollment", Some(&token), json!({}))
        .await;
    assert_eq!(refused(&by_token), session_required, "{}", by_token.text);
    let id_token = idp.mint(&idp.claims("alice@example.com", env.clock.now()), "key-1");
    let by_id_token = env
        .post("/v1/totp/enrollment", Some(&id_token), json!({}))
        .await;
    assert_eq!(
        refused(&by_id_token),
        session_required,
        "{}",
        by_id_token.text
    );

    let authenticator = env.enroll_user(&alice, None).await;
    let password = env
        .call(
            reqwest::Method::PUT,
            "/v1/password",
            Some(&token),
            Some(
                &json!({"password": "correct horse battery staple", "totp": env.fresh_code(&authenticator)})
                    .to_string(),
            ),
            Some("application/json"),
        )
        .await;
    assert_eq!(refused(&password), session_required, "{}", password.text);
    let again = env
        .post(
            "/v1/totp/enrollment",
            Some(&token),
            json!({"totp": env.fresh_code(&authenticator)}),
        )
        .await;
    assert_eq!(refused(&again), session_required, "{}", again.text);

    let bob_code = env.enroll_user(&bob, None).await;
    let opened = env
        .post(
            "/v1/approvals",
            Some(&env.jwt(&alice)),
            json!({"target": "a-breakglass", "reason": "deploy"}),
        )
        .await;
    assert_eq!(opened.status, 201, "{}", opened.text);
    let id = opened.body["id"].as_str().unwrap();
    let path = format!("/v1/approvals/{id}/approve");
    let bob_token = env.api_token(&bob).await;
    let by_script = env
        .post(
            &path,
            Some(&bob_token),
            json!({"totp": env.fresh_code(&bob_code)}),
        )
        .await;
    assert_eq!(refused(&by_script), session_required, "{}", by_script.text);
    let by_bob = env
        .post(
            &path,
            Some(&env.jwt(&bob)),
            json!({"totp": env.fresh_code(&bob_code)}),
        )
        .await;
    assert_eq!(by_bob.status, 200, "{}", by_bob.text);
}

/// A first authenticator takes a one-time code an admin issues (with a fresh code of their
/// own). The code enrolls and sets a first password, once; as a bearer it opens nothing else.
#[tokio::test(flavor = "multi_thread")]
async fn an_enrollment_code_enrolls_once_and_opens_nothing_else() {
    let env = TestEnv::start().await;
    let (admin, admin_token) = env.universal_admin("una").await;
    let admin_code = env.enroll_user(&admin, None).await;
    let carol = env.user("carol").await;
    let issue = |totp: Option<String>| {
        let headers: Vec<(&str, String)> = totp.into_iter().map(|t| ("x-cooper-totp", t)).collect();
        let env = &env;
        let admin_token = &admin_token;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            env.admin(
                reqwest::Method::POST,
                "/v1/admin/users/carol/enrollment-code",
                admin_token,
                Some(json!({})),
                &headers,
            )
            .await
        }
    };
    let without = issue(None).await;
    assert_eq!(
        (without.status.as_u16(), without.error_code()),
        (422, "totp_required")
    );
    let issued = issue(Some(env.fresh_code(&admin_code))).await;
    assert_eq!(issued.status, 201, "{}", issued.text);
    assert_eq!(issued.headers["cache-control"], "no-store");
    let code = issued.body["code"].as_str().unwrap().to_owned();
    assert!(code.starts_with("cooper_enroll_"));

    for (method, path) in [
        (reqwest::Method::GET, "/v1/whoami"),
        (reqwest::Method::GET, "/v1/targets"),
    ] {
        let answer = env.call(method, path, Some(&code), None, None).await;
        assert_eq!(
            (answer.status.as_u16(), answer.error_code()),
            (401, "enrollment_code_only"),
            "{path}"
        );
    }
    let credentials = env.credentials(&code, json!({"target": "anything"})).await;
    assert_eq!(credentials.error_code(), "enrollment_code_only");

    let started = env
        .post("/v1/totp/enrollment", Some(&code), json!({}))
        .await;
    assert_eq!(started.status, 200, "{}", started.text);
    let uri = started.body["otpauth_uri"].as_str().unwrap().to_owned();
    let confirmed = env
        .post(
            "/v1/totp/enrollment/confirm",
            Some(&code),
            json!({"totp": pyotp_code(&uri, env.clock.now()), "password": "correct horse battery staple"}),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    let used = env
        .post("/v1/totp/enrollment", Some(&code), json!({}))
        .await;
    assert_eq!(
        (used.status.as_u16(), used.error_code()),
        (401, "token_revoked")
    );

    // The password set with it signs carol in, with her new authenticator.
    let authenticator = Authenticator {
        uri,
        secret: started.body["secret"].as_str().unwrap().to_owned(),
    };
    let session = env
        .post(
            "/v1/sessions",
            None,
            json!({"user": "carol", "password": "correct horse battery staple", "totp": env.fresh_code(&authenticator)}),
        )
        .await;
    assert_eq!(session.status, 200, "{}", session.text);

    // A code enrolls a first authenticator only.
    let second = issue(Some(env.fresh_code(&admin_code))).await;
    assert_eq!(
        (second.status.as_u16(), second.error_code()),
        (409, "already_enrolled")
    );
    let records = env.audit_items().await;
    let issued_records = records
        .iter()
        .filter(|i| {
            i["event"].as_s().unwrap() == "admin.change"
                && i["resource"].as_s().unwrap() == "user:carol"
                && i.get("action")
                    .and_then(|a| a.as_s().ok())
                    .map(String::as_str)
                    == Some("issue_enrollment_code")
        })
        .count();
    assert_eq!(issued_records, 1);
    assert!(records.iter().any(|i| {
        i["event"].as_s().unwrap() == "totp.enrolled"
            && i["actor"].as_s().unwrap() == carol.as_str()
            && i["auth"].as_s().unwrap().starts_with("enrollment_code:")
    }));
}

/// An admin cannot be someone else's second person: an authenticator enrolled with an
/// enrollment code the requester issued does not approve the requester's requests, inline or
/// asynchronously, whoever holds it.
#[tokio::test(flavor = "multi_thread")]
async fn an_admin_cannot_become_someone_elses_second_person() {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    let mut target = env.role_target("a-breakglass", ACCOUNT_A, 10, None).await;
    let dave = env.user("dave").await;
    let erin = env.user("erin").await;
    target.approvers = vec![Principal::User(dave.clone()), Principal::User(erin.clone())];
    env.directory.put_target(&target).await.unwrap();
    let (mallory, mallory_token) = env.universal_admin("mallory").await;
    env.grant_target(Principal::User(mallory.clone()), "a-breakglass")
        .await;
    let mallory_code = env.enroll_user(&mallory, None).await;

    // Mallory issues dave's enrollment code and redeems it herself, with a password.
    let issued = env
        .admin(
            reqwest::Method::POST,
            "/v1/admin/users/dave/enrollment-code",
            &mallory_token,
            Some(json!({})),
            &[("x-cooper-totp", &env.fresh_code(&mallory_code))],
        )
        .await;
    assert_eq!(issued.status, 201, "{}", issued.text);
    let code = issued.body["code"].as_str().unwrap();
    let started = env.post("/v1/totp/enrollment", Some(code), json!({})).await;
    let daves = Authenticator {
        uri: started.body["otpauth_uri"].as_str().unwrap().to_owned(),
        secret: started.body["secret"].as_str().unwrap().to_owned(),
    };
    let confirmed = env
        .post(
            "/v1/totp/enrollment/confirm",
            Some(code),
            json!({"totp": pyotp_code(&daves.uri, env.clock.now()), "password": "mallory holds this one"}),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    let as_dave = env
        .post(
            "/v1/sessions",
            None,
            json!({"user": "dave", "password": "mallory holds this one", "totp": env.fresh_code(&daves)}),
        )
        .await;
    assert_eq!(as_dave.status, 200, "{}", as_dave.text);
    let dave_session = as_dave.body["token"].as_str().unwrap().to_owned();

    let mallory_session = env.jwt(&mallory);
    let inline = env
        .credentials(
            &mallory_session,
            json!({"target": "a-breakglass", "approver": "dave", "approver_totp": env.fresh_code(&daves)}),
        )
        .await;
    assert_eq!(
        (inline.status.as_u16(), inline.error_code()),
        (403, "approver_bootstrapped_by_requester"),
        "{}",
        inline.text
    );
    let opened = env
        .post(
            "/v1/approvals",
            Some(&mallory_session),
            json!({"target": "a-breakglass", "reason": "nothing to see"}),
        )
        .await;
    let path = format!(
        "/v1/approvals/{}/approve",
        opened.body["id"].as_str().unwrap()
    );
    let approved_by_dave = env
        .post(
            &path,
            Some(&dave_session),
            json!({"totp": env.fresh_code(&daves)}),
        )
        .await;
    assert_eq!(
        (
            approved_by_dave.status.as_u16(),
            approved_by_dave.error_code()
        ),
        (403, "approver_bootstrapped_by_requester")
    );

    // Someone whose authenticator mallory did not bootstrap still can.
    let erins = env.enroll_user(&erin, None).await;
    let approved_by_erin = env
        .post(
            &path,
            Some(&env.jwt(&erin)),
            json!({"totp": env.fresh_code(&erins)}),
        )
        .await;
    assert_eq!(approved_by_erin.status, 200, "{}", approved_by_erin.text);
}

/// The admin API's body of a target as it stands (what an update that changes one field sends).
async fn target_body(env: &TestEnv, token: &str, name: &str) -> serde_json::Value {
    let current = env
        .admin(
            reqwest::Method::GET,
            &format!("/v1/admin/targets/{name}"),
            token,
            None,
            &[],
        )
        .await;
    assert_eq!(current.status, 200, "{}", current.text);
    let mut body = current.body.clone();
    let fields = body.as_object_mut().unwrap();
    for derived in ["version", "federation_keys", "partition"] {
        fields.remove(derived);
    }
    body
}

/// Anything that widens what someone can reach, or weakens a target's protection, needs the
/// same fresh code as granting the top level directly, whatever the order of the steps: the
/// check is on the state a change leaves, not on the step alone.
#[tokio::test(flavor = "multi_thread")]
async fn the_fresh_code_rule_holds_whatever_the_order_of_steps() {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    env.role_target("a-ro", ACCOUNT_A, 10, None).await;
    let mut top = env.role_target("a-top", ACCOUNT_A, 100, None).await;
    top.high_security = true;
    top.approvers = vec![Principal::User(env.user("erin").await)];
    env.directory.put_target(&top).await.unwrap();
    let gina = env.user("gina").await;
    let (_, token) = env.universal_admin("una").await;
    let admin_code = env.enroll(&token).await;
    let change =
        |method: reqwest::Method, path: String, body: serde_json::Value, code: Option<String>| {
            let env = &env;
            let token = &token;
            async move {
                let mut headers: Vec<(&str, String)> =
                    code.into_iter().map(|c| ("x-cooper-totp", c)).collect();
                if method == reqwest::Method::PUT && path.starts_with("/v1/admin/targets/") {
                    // An update names the version it read.
                    let current = env
                        .admin(reqwest::Method::GET, &path, token, None, &[])
                        .await;
                    headers.push(("if-match", current.body["version"].to_string()));
                }
                let headers: Vec<(&str, &str)> =
                    headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                env.admin(method, &path, token, Some(body), &headers).await
            }
        };
    let needs_code = |answer: &crate::harness::Answer, what: &str| {
        assert_eq!(
            (answer.status.as_u16(), answer.error_code()),
            (422, "totp_required"),
            "{what}: {}",
            answer.text
        );
    };

    // A grant just below the top level needs no code...
    let grant = change(
        reqwest::Method::POST,
        "/v1/admin/grants".into(),
        json!({"principal": {"user": "gina"}, "account_id": ACCOUNT_A, "max_level": 99}),
        None,
    )
    .await;
    assert_eq!(grant.status, 201, "{}", grant.text);
    // ...but lowering the top target under it would give gina the top without one.
    let mut lowered = target_body(&env, &token, "a-top").await;
    lowered["level"] = json!(99);
    let path = "/v1/admin/targets/a-top".to_owned();
    let answer = change(reqwest::Method::PUT, path.clone(), lowered.clone(), None).await;
    needs_code(&answer, "lowering the top target under a grant");

    // Weakening the top target's protection needs one too, each way.
    let mut weaker = target_body(&env, &token, "a-top").await;
    weaker["high_security"] = json!(false);
    needs_code(
        &change(reqwest::Method::PUT, path.clone(), weaker, None).await,
        "turning high_security off",
    );
    let mut weaker = target_body(&env, &token, "a-top").await;
    weaker["approvers"] = json!([]);
    needs_code(
        &change(reqwest::Method::PUT, path.clone(), weaker, None).await,
        "removing the approvers",
    );
    let mut weaker = target_body(&env, &token, "a-top").await;
    weaker["approvers"] = json!([{"user": "gina"}]);
    needs_code(
        &change(reqwest::Method::PUT, path.clone(), weaker, None).await,
        "replacing the approvers",
    );
    let mut weaker = target_body(&env, &token, "a-ro").await;
    weaker["role_arn"] = json!(format!("arn:aws:iam::{ACCOUNT_A}:role/a-top-role"));
    needs_code(
        &change(
            reqwest::Method::PUT,
            "/v1/admin/targets/a-ro".into(),
            weaker,
            None,
        )
        .await,
        "pointing a target at another role",
    );

    // A new target that gina's grant reaches at the account's top (it is the top once
    // a-top is lowered, or it ties it) is as good as a top grant.
    let new_top = json!({"name": "a-new", "account_id": ACCOUNT_A, "level": 99, "kind": "role",
                         "role_arn": format!("arn:aws:iam::{ACCOUNT_A}:role/a-new")});
    let with_code = change(
        reqwest::Method::PUT,
        path.clone(),
        lowered,
        Some(env.fresh_code(&admin_code)),
    )
    .await;
    assert_eq!(with_code.status, 200, "{}", with_code.text);
    needs_code(
        &change(
            reqwest::Method::POST,
            "/v1/admin/targets".into(),
            new_top.clone(),
            None,
        )
        .await,
        "a new target at the top, under an existing grant",
    );
    // Below the top, a new target needs nothing.
    let below = change(
        reqwest::Method::POST,
        "/v1/admin/targets".into(),
        json!({"name": "a-low", "account_id": ACCOUNT_A, "level": 20, "kind": "role",
               "role_arn": format!("arn:aws:iam::{ACCOUNT_A}:role/a-low")}),
        None,
    )
    .await;
    assert_eq!(below.status, 201, "{}", below.text);

    // A group holding a top grant (given with a code) passes it to every member added: adding
    // one is as good as granting them the top.
    let group = env.group("break-glass", &[]).await;
    let top_grant = change(
        reqwest::Method::POST,
        "/v1/admin/grants".into(),
        json!({"principal": {"group": group.as_str()}, "target": "a-top"}),
        Some(env.fresh_code(&admin_code)),
    )
    .await;
    assert_eq!(top_grant.status, 201, "{}", top_grant.text);
    let member = change(
        reqwest::Method::PUT,
        format!("/v1/admin/groups/{group}/members/{gina}"),
        json!({}),
        None,
    )
    .await;
    needs_code(&member, "adding a member to a group with a top grant");
}

/// Two changes decided side by side cannot together do what neither could alone: a grant just
/// below the top, decided while the top target is being lowered to its level, is refused when
/// it lands after (its decision read a top that no longer holds), and asked again it needs the
/// code a top grant needs.
#[tokio::test(flavor = "multi_thread")]
async fn changes_decided_side_by_side_cannot_combine_into_a_top_grant() {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    env.role_target("a-top", ACCOUNT_A, 100, None).await;
    env.user("gina").await;
    let (_, token) = env.universal_admin("una").await;
    let grant = || {
        env.admin(
            reqwest::Method::POST,
            "/v1/admin/grants",
            &token,
            Some(json!({"principal": {"user": "gina"}, "account_id": ACCOUNT_A, "max_level": 99})),
            &[],
        )
    };
    let mut lowered = target_body(&env, &token, "a-top").await;
    lowered["level"] = json!(99);

    let hold = env.faults.hold(&format!("GRANT#ACCOUNT#{ACCOUNT_A}\""));
    let (granted, ()) = tokio::join!(grant(), async {
        hold.until_holding(1).await;
        let lowered = env
            .admin(
                reqwest::Method::PUT,
                "/v1/admin/targets/a-top",
                &token,
                Some(lowered),
                &[("if-match", "1")],
            )
            .await;
        assert_eq!(lowered.status, 200, "{}", lowered.text);
        hold.release();
    });
    assert_eq!(
        (granted.status.as_u16(), granted.error_code()),
        (409, "reach_changed"),
        "{}",
        granted.text
    );
    let again = grant().await;
    assert_eq!(
        (again.status.as_u16(), again.error_code()),
        (422, "totp_required")
    );
}

/// Sealed federation keys open only for the account and target they were sealed for (their
/// KMS encryption context names both), and the keys of another account are refused even when
/// sealed for this one (the federated user STS returns names the account the keys are of).
#[tokio::test(flavor = "multi_thread")]
async fn sealed_federation_keys_belong_to_one_account_and_target() {
    let env = TestEnv::start().await;
    let a = env.account(ACCOUNT_A).await;
    let b = env.account(crate::harness::ACCOUNT_B).await;
    let alice = env.user("alice").await;
    for account in [ACCOUNT_A, crate::harness::ACCOUNT_B] {
        env.grant_account(Principal::User(alice.clone()), account, 10)
            .await;
    }
    let token = env.api_token(&alice).await;
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"*"}]}"#;
    let a_fed = env.federated_target("a-fed", &a, 10, policy).await;
    let issued = env.credentials(&token, json!({"target": "a-fed"})).await;
    assert_eq!(issued.status, 200, "{}", issued.text);

    // An admin of account B puts A's blob on a target of theirs: it does not open there.
    let cooper_core::model::TargetKind::FederatedUser { sealed_keys, .. } = &a_fed.kind else {
        unreachable!()
    };
    let moved = cooper_core::model::Target::federated_user(
        cooper_core::names::TargetName::parse("b-fed").unwrap(),
        &b,
        cooper_core::names::Level::new(10).unwrap(),
        sealed_keys.clone(),
        cooper_core::names::SessionPolicy::parse(policy).unwrap(),
        None,
    )
    .unwrap();
    env.directory.put_target(&moved).await.unwrap();
    let refused = env.credentials(&token, json!({"target": "b-fed"})).await;
    assert_eq!(refused.status, 502, "{}", refused.text);
    assert!(refused.body.get("secret_access_key").is_none());

    // Account A's own keys, sealed (properly) for a target of account B: STS says whose they
    // are, and nothing is handed out.
    let iam = cooper_aws::provisioning::iam_in_account(&env.sdk, &a.id, "e2e-admin")
        .await
        .unwrap();
    let keys = cooper_aws::provisioning::create_iam_user_keys(&iam, "a-keys")
        .await
        .unwrap();
    let b_name = cooper_core::names::TargetName::parse("b-fed2").unwrap();
    let sealed = env
        .vault
        .seal_federation_keys(
            &env.kms_key,
            &cooper_core::model::FederationKeys {
                access_key_id: keys.access_key_id,
                secret_access_key: keys.secret_access_key,
            },
            &cooper_core::ports::FederationBinding {
                account: b.id.clone(),
                target: b_name.clone(),
            },
        )
        .await
        .unwrap();
    let foreign = cooper_core::model::Target::federated_user(
        b_name,
        &b,
        cooper_core::names::Level::new(10).unwrap(),
        sealed,
        cooper_core::names::SessionPolicy::parse(policy).unwrap(),
        None,
    )
    .unwrap();
    env.directory.put_target(&foreign).await.unwrap();
    let refused = env.credentials(&token, json!({"target": "b-fed2"})).await;
    assert_eq!(
        (refused.status.as_u16(), refused.error_code()),
        (502, "federation_keys_wrong_account"),
        "{}",
        refused.text
    );
    let denied = env
        .audit_items()
        .await
        .into_iter()
        .find(|i| {
            i["event"].as_s().unwrap() == "credentials.denied"
                && i.get("target")
                    .and_then(|t| t.as_s().ok())
                    .map(String::as_str)
                    == Some("b-fed2")
        })
        .expect("the refusal is audited");
    assert_eq!(
        denied["reason"].as_s().unwrap(),
        "federation_keys_wrong_account"
    );
    assert!(
        denied.contains_key("access_key_id"),
        "who holds the minted key: nobody"
    );
}

/// A role in GovCloud or China is assumed at that partition's STS, signed by cooper's own
/// identity there, or not at all: a role of a partition cooper has no identity in is refused
/// when it is configured, and never sent to another partition's STS.
#[tokio::test(flavor = "multi_thread")]
async fn roles_of_other_partitions_go_to_their_own_sts_or_nowhere() {
    use cooper_core::names::Partition;
    let gov = "222222222222";
    let store_gov = || {
        let account = cooper_core::model::Account {
            id: cooper_core::names::AccountId::parse(gov).unwrap(),
            name: cooper_core::names::AccountName::parse("gov").unwrap(),
            partition: Partition::AwsUsGov,
            access_requests: None,
        };
        let target = cooper_core::model::Target::role(
            cooper_core::names::TargetName::parse("gov-ro").unwrap(),
            account.id.clone(),
            cooper_core::names::Level::new(10).unwrap(),
            cooper_core::names::RoleArn::parse(&format!("arn:aws-us-gov:iam::{gov}:role/ro"))
                .unwrap(),
            None,
            None,
        )
        .unwrap();
        (account, target)
    };

    // No identity in GovCloud: its roles are refused as they are configured...
    let env = TestEnv::start_with(|s| s.admin_totp_operations = Default::default()).await;
    let (_, admin) = env.universal_admin("una").await;
    let created = env
        .admin(
            reqwest::Method::POST,
            "/v1/admin/accounts",
            &admin,
            Some(json!({"id": gov, "name": "gov", "partition": "aws-us-gov"})),
            &[],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let refused = env
        .admin(
            reqwest::Method::POST,
            "/v1/admin/targets",
            &admin,
            Some(
                json!({"name": "gov-ro", "account_id": gov, "level": 10, "kind": "role",
                        "role_arn": format!("arn:aws-us-gov:iam::{gov}:role/ro")}),
            ),
            &[],
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(
        refused.text.contains("no broker identity"),
        "{}",
        refused.text
    );
    // ...and one stored anyway is never sent to the commercial STS.
    let (_, target) = store_gov();
    env.directory.put_target(&target).await.unwrap();
    let alice = env.user("alice").await;
    env.grant_target(Principal::User(alice.clone()), "gov-ro")
        .await;
    let token = env.api_token(&alice).await;
    let (answer, calls) = env
        .moto
        .record(env.credentials(&token, json!({"target": "gov-ro"})))
        .await;
    assert_eq!(
        (answer.status.as_u16(), answer.error_code()),
        (502, "upstream_refused")
    );
    assert!(
        crate::harness::calls_to(&calls, "sts").is_empty(),
        "STS was asked"
    );

    // With an identity in GovCloud: its STS, in its region, signed by its keys.
    let env =
        TestEnv::start_with(|s| s.broker_partitions = [Partition::AwsUsGov].into_iter().collect())
            .await;
    let (account, target) = store_gov();
    env.directory.put_account(&account).await.unwrap();
    env.directory.put_target(&target).await.unwrap();
    env.account(ACCOUNT_A).await;
    env.role_target("a-ro", ACCOUNT_A, 10, None).await;
    let alice = env.user("alice").await;
    env.grant_target(Principal::User(alice.clone()), "gov-ro")
        .await;
    env.grant_target(Principal::User(alice.clone()), "a-ro")
        .await;
    let token = env.api_token(&alice).await;
    let (answers, calls) = env
        .moto
        .record(async {
            (
                env.credentials(&token, json!({"target": "gov-ro"})).await,
                env.credentials(&token, json!({"target": "a-ro"})).await,
            )
        })
        .await;
    assert_eq!(answers.0.status, 200, "{}", answers.0.text);
    assert_eq!(answers.1.status, 200, "{}", answers.1.text);
    let assumed: Vec<(String, String)> = crate::harness::calls_to(&calls, "sts")
        .iter()
        .map(|c| {
            let parts: Vec<&str> = c.credential.split('/').collect();
            (
                c.form("RoleArn").unwrap(),
                format!("{} {}", parts[0], parts[2]),
            )
        })
        .collect();
    let scope = |arn: &str| {
        assumed
            .iter()
            .find(|(a, _)| a.contains(arn))
            .map(|(_, s)| s.clone())
            .unwrap()
    };
    let (gov_scope, home_scope) = (scope("aws-us-gov"), scope(":role/a-ro-role"));
    assert!(gov_scope.ends_with(" us-gov-west-1"), "{gov_scope}");
    assert!(home_scope.ends_with(" us-east-1"), "{home_scope}");
    assert_ne!(
        gov_scope.split(' ').next(),
        home_scope.split(' ').next(),
        "each partition is signed by its own broker"
    );
}
