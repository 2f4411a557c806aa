//! Second-person approval, inline and asynchronous: the happy paths, and every way to cheat.

use cooper_core::model::Principal;
use cooper_core::names::GroupName;
use serde_json::json;
use time::Duration;

use crate::harness::{ACCOUNT_A, Authenticator, TestEnv};

struct Cast {
    env: TestEnv,
    alice: String,
    alice_code: Authenticator,
    carol: String,
    carol_code: Authenticator,
    bob: String,
    bob_code: Authenticator,
}

/// `a-breakglass` needs approval by the group `approvers` (carol, and alice herself); alice and
/// bob are granted it; bob is not an approver.
async fn cast() -> Cast {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    let mut target = env.role_target("a-breakglass", ACCOUNT_A, 100, None).await;
    target.approvers = vec![Principal::Group(GroupName::parse("approvers").unwrap())];
    env.directory.put_target(&target).await.unwrap();
    let alice = env.user("alice").await;
    let bob = env.user("bob").await;
    let carol = env.user("carol").await;
    env.group("approvers", &[&carol, &alice]).await;
    env.grant_target(Principal::User(alice.clone()), "a-breakglass")
        .await;
    env.grant_target(Principal::User(bob.clone()), "a-breakglass")
        .await;
    // People approve in signed-in sessions (a script's API token cannot approve).
    let (alice, bob, carol) = (env.jwt(&alice), env.jwt(&bob), env.jwt(&carol));
    let alice_code = env.enroll(&alice).await;
    let bob_code = env.enroll(&bob).await;
    let carol_code = env.enroll(&carol).await;
    Cast {
        env,
        alice,
        alice_code,
        carol,
        carol_code,
        bob,
        bob_code,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn inline_approval_and_the_ways_it_is_refused() {
    let c = cast().await;
    let env = &c.env;
    let ask = |body: serde_json::Value| env.credentials(&c.alice, body);

    let without = ask(json!({"target": "a-breakglass"})).await;
    assert_eq!(
        (without.status.as_u16(), without.error_code()),
        (422, "approval_required")
    );

    let own = ask(json!({"target": "a-breakglass", "approver": "alice", "approver_totp": env.fresh_code(&c.alice_code)})).await;
    assert_eq!(
        (own.status.as_u16(), own.error_code()),
        (403, "self_approval")
    );

    let not_listed = ask(json!({"target": "a-breakglass", "approver": "bob", "approver_totp": env.fresh_code(&c.bob_code)})).await;
    assert_eq!(
        (not_listed.status.as_u16(), not_listed.error_code()),
        (403, "not_an_approver")
    );

    let wrong =
        ask(json!({"target": "a-breakglass", "approver": "carol", "approver_totp": "000000"}))
            .await;
    assert_eq!(
        (wrong.status.as_u16(), wrong.error_code()),
        (403, "approver_totp_invalid")
    );

    let code = env.fresh_code(&c.carol_code);
    let approved =
        ask(json!({"target": "a-breakglass", "approver": "carol", "approver_totp": code})).await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    assert_eq!(approved.body["approved_by"], "carol");

    let replayed =
        ask(json!({"target": "a-breakglass", "approver": "carol", "approver_totp": code})).await;
    assert_eq!(
        (replayed.status.as_u16(), replayed.error_code()),
        (409, "approver_totp_replayed")
    );

    let half = ask(json!({"target": "a-breakglass", "approver": "carol"})).await;
    assert_eq!(
        (half.status.as_u16(), half.error_code()),
        (400, "invalid_request")
    );

    // The issuance's audit record names the approver.
    let items = env.audit_items().await;
    let issued: Vec<_> = items
        .iter()
        .filter(|i| i["event"].as_s().unwrap() == "credentials.issued")
        .collect();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0]["approved_by"].as_s().unwrap(), "carol");
    let refused: Vec<&str> = items
        .iter()
        .filter(|i| i["event"].as_s().unwrap() == "credentials.denied")
        .map(|i| i["reason"].as_s().unwrap().as_str())
        .collect();
    for reason in [
        "approval_required",
        "self_approval",
        "not_an_approver",
        "approver_totp_invalid",
        "approver_totp_replayed",
    ] {
        assert!(
            refused.contains(&reason),
            "{reason} not audited: {refused:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approval_request_is_approved_by_another_and_used_once() {
    let c = cast().await;
    let env = &c.env;

    // bob may not even see alice's request; a user not granted the target cannot open one.
    let opened = env
        .post(
            "/v1/approvals",
            Some(&c.alice),
            json!({"target": "a-breakglass", "reason": "INC-4711: restore the queue"}),
        )
        .await;
    assert_eq!(opened.status, 201, "{}", opened.text);
    assert_eq!(opened.body["status"], "pending");
    let id = opened.body["id"].as_str().unwrap().to_owned();
    let carol_opens = env
        .post(
            "/v1/approvals",
            Some(&c.carol),
            json!({"target": "a-breakglass", "reason": "why not"}),
        )
        .await;
    assert_eq!(
        (carol_opens.status.as_u16(), carol_opens.error_code()),
        (403, "not_granted")
    );

    assert_eq!(
        env.get(&format!("/v1/approvals/{id}"), &c.alice).await.body["status"],
        "pending"
    );
    assert_eq!(
        env.get(&format!("/v1/approvals/{id}"), &c.carol)
            .await
            .status,
        200
    );
    assert_eq!(
        env.get(&format!("/v1/approvals/{id}"), &c.bob).await.status,
        404
    );
    // It waits for carol (of the `approvers` group), is alice's own, and is nothing to bob.
    let listed = |who: &str, query: &str| {
        let (who, query) = (who.to_owned(), query.to_owned());
        async move {
            let answer = env.get(&format!("/v1/approvals{query}"), &who).await;
            assert_eq!(answer.status, 200, "{}", answer.text);
            answer.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        listed(&c.carol, "?role=approver&state=pending").await,
        std::slice::from_ref(&id)
    );
    assert!(listed(&c.bob, "?role=approver").await.is_empty());
    assert_eq!(listed(&c.alice, "").await, std::slice::from_ref(&id));
    assert!(listed(&c.alice, "?state=used").await.is_empty());

    // Using it before it is approved, approving one's own request, approving without the list.
    let early = env
        .credentials(
            &c.alice,
            json!({"target": "a-breakglass", "approval_id": id}),
        )
        .await;
    assert_eq!(
        (early.status.as_u16(), early.error_code()),
        (409, "approval_pending")
    );
    let approve_path = format!("/v1/approvals/{id}/approve");
    let approve = |who: String, code: String| {
        let path = approve_path.clone();
        async move { env.post(&path, Some(&who), json!({"totp": code})).await }
    };
    let own = approve(c.alice.clone(), env.fresh_code(&c.alice_code)).await;
    assert_eq!(
        (own.status.as_u16(), own.error_code()),
        (403, "self_approval")
    );
    let outsider = approve(c.bob.clone(), env.fresh_code(&c.bob_code)).await;
    assert_eq!(
        (outsider.status.as_u16(), outsider.error_code()),
        (403, "not_an_approver")
    );

    let approved = approve(c.carol.clone(), env.fresh_code(&c.carol_code)).await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    assert_eq!(approved.body["approved_by"], "carol");
    let twice = approve(c.carol.clone(), env.fresh_code(&c.carol_code)).await;
    assert_eq!(
        (twice.status.as_u16(), twice.error_code()),
        (409, "approval_decided")
    );

    // bob cannot use alice's approval; alice can, once.
    let stolen = env
        .credentials(&c.bob, json!({"target": "a-breakglass", "approval_id": id}))
        .await;
    assert_eq!(
        (stolen.status.as_u16(), stolen.error_code()),
        (404, "approval_not_found")
    );
    let used = env
        .credentials(
            &c.alice,
            json!({"target": "a-breakglass", "approval_id": id}),
        )
        .await;
    assert_eq!(used.status, 200, "{}", used.text);
    assert_eq!(used.body["approved_by"], "carol");
    let reused = env
        .credentials(
            &c.alice,
            json!({"target": "a-breakglass", "approval_id": id}),
        )
        .await;
    assert_eq!(
        (reused.status.as_u16(), reused.error_code()),
        (409, "approval_used")
    );
    assert_eq!(
        env.get(&format!("/v1/approvals/{id}"), &c.alice).await.body["status"],
        "used"
    );

    let unknown = env
        .credentials(
            &c.alice,
            json!({"target": "a-breakglass", "approval_id": "0".repeat(32)}),
        )
        .await;
    assert_eq!(
        (unknown.status.as_u16(), unknown.error_code()),
        (404, "approval_not_found")
    );

    let events: Vec<String> = env
        .audit_items()
        .await
        .iter()
        .map(|i| i["event"].as_s().unwrap().clone())
        .collect();
    for event in [
        "approval.requested",
        "approval.approved",
        "approval.refused",
        "credentials.issued",
    ] {
        assert!(events.iter().any(|e| e == event), "{event} not audited");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_requests_can_be_neither_approved_nor_used() {
    let c = cast().await;
    let env = &c.env;
    let open = || {
        env.post(
            "/v1/approvals",
            Some(&c.alice),
            json!({"target": "a-breakglass", "reason": "late night"}),
        )
    };

    let stale = open().await.body["id"].as_str().unwrap().to_owned();
    env.clock.advance(Duration::minutes(61));
    let approve = env
        .post(
            &format!("/v1/approvals/{stale}/approve"),
            Some(&c.carol),
            json!({"totp": env.fresh_code(&c.carol_code)}),
        )
        .await;
    assert_eq!(
        (approve.status.as_u16(), approve.error_code()),
        (409, "approval_expired")
    );

    // Approved in time, used too late.
    let late = open().await.body["id"].as_str().unwrap().to_owned();
    let approved = env
        .post(
            &format!("/v1/approvals/{late}/approve"),
            Some(&c.carol),
            json!({"totp": env.fresh_code(&c.carol_code)}),
        )
        .await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    env.clock.advance(Duration::minutes(61));
    let used = env
        .credentials(
            &c.alice,
            json!({"target": "a-breakglass", "approval_id": late}),
        )
        .await;
    assert_eq!(
        (used.status.as_u16(), used.error_code()),
        (409, "approval_expired")
    );
    assert_eq!(
        env.get(&format!("/v1/approvals/{late}"), &c.alice)
            .await
            .body["status"],
        "expired"
    );

    let bad_reason = env
        .post(
            "/v1/approvals",
            Some(&c.alice),
            json!({"target": "a-breakglass", "reason": " "}),
        )
        .await;
    assert_eq!(
        (bad_reason.status.as_u16(), bad_reason.error_code()),
        (400, "invalid_reason")
    );
}
