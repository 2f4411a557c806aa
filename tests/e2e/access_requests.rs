//! Just-in-time access through the API, against moto: a request, its approval with a pyotp
//! code, credentials for the approved target until the grant's time passes (then 403, and STS
//! is not asked), approvers told through SNS, and every way to cheat refused and audited.

use std::collections::BTreeSet;

use cooper_core::clock::Clock;

use reqwest::Method;
use serde_json::{Value, json};
use time::Duration;

use crate::harness::{ACCOUNT_A, Answer, Authenticator, NoticeInbox, TestEnv, calls_to};

struct Cast {
    env: TestEnv,
    alice: String,
    bob: String,
    bob_code: Authenticator,
    carol: String,
    carol_code: Authenticator,
    dave: String,
    dave_code: Authenticator,
}

/// `a-prod` (level 100), made requestable through the admin API (with the admin's fresh code):
/// approvers are carol and the group `oncall` (dave), for up to 4 hours. Nobody holds it.
/// alice asks; bob has an authenticator but approves nothing.
async fn cast() -> Cast {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    env.role_target("a-prod", ACCOUNT_A, 100, None).await;
    let alice = env.user("alice").await;
    let bob = env.user("bob").await;
    let carol = env.user("carol").await;
    let dave = env.user("dave").await;
    env.group("oncall", &[&dave]).await;
    let (_, admin) = env.universal_admin("una").await;
    let admin_code = env.enroll(&admin).await;
    let current = env
        .admin(Method::GET, "/v1/admin/targets/a-prod", &admin, None, &[])
        .await;
    let mut body = current.body.clone();
    body.as_object_mut().unwrap().remove("version");
    body["access_requests"] = json!({
        "approvers": [{"user": "carol"}, {"group": "oncall"}],
        "max_duration_seconds": 4 * 3600,
    });
    // Making a target requestable widens who may come to hold it: it takes a fresh code.
    let without = env
        .admin(
            Method::PUT,
            "/v1/admin/targets/a-prod",
            &admin,
            Some(body.clone()),
            &[("if-match", "1")],
        )
        .await;
    assert_eq!(
        (without.status.as_u16(), without.error_code()),
        (422, "totp_required"),
        "{}",
        without.text
    );
    let code = env.fresh_code(&admin_code);
    let made = env
        .admin(
            Method::PUT,
            "/v1/admin/targets/a-prod",
            &admin,
            Some(body),
            &[("if-match", "1"), ("x-cooper-totp", &code)],
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.text);
    assert_eq!(
        made.body["access_requests"]["approvers"],
        json!([{"user": "carol"}, {"group": "oncall"}])
    );
    let (alice, bob, carol, dave) = (
        env.jwt(&alice),
        env.jwt(&bob),
        env.jwt(&carol),
        env.jwt(&dave),
    );
    let bob_code = env.enroll(&bob).await;
    let carol_code = env.enroll(&carol).await;
    let dave_code = env.enroll(&dave).await;
    Cast {
        env,
        alice,
        bob,
        bob_code,
        carol,
        carol_code,
        dave,
        dave_code,
    }
}

impl Cast {
    async fn ask(&self, who: &str, body: Value) -> Answer {
        self.env.post("/v1/access-requests", Some(who), body).await
    }

    async fn request(&self, seconds: u64) -> String {
        let asked = self
            .ask(
                &self.alice,
                json!({"target": "a-prod", "duration_seconds": seconds, "reason": "incident 4711"}),
            )
            .await;
        assert_eq!(asked.status, 201, "{}", asked.text);
        asked.body["id"].as_str().unwrap().to_owned()
    }

    async fn act(&self, id: &str, verb: &str, who: &str, body: Value) -> Answer {
        self.env
            .post(&format!("/v1/access-requests/{id}/{verb}"), Some(who), body)
            .await
    }
}

fn refusal(answer: &Answer) -> (u16, &str) {
    (answer.status.as_u16(), answer.error_code())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approved_request_gives_credentials_until_its_time_and_then_nothing() {
    let c = cast().await;
    let env = &c.env;
    let inbox = NoticeInbox::create(&env.sdk, "cooper-audit").await;
    let before = env.credentials(&c.alice, json!({"target": "a-prod"})).await;
    assert_eq!(refusal(&before), (403, "not_granted"));

    let id = c.request(2 * 3600).await;
    let pending = env
        .get(&format!("/v1/access-requests/{id}"), &c.alice)
        .await;
    assert_eq!(pending.body["status"], "pending", "{}", pending.text);
    assert_eq!(pending.body["requester"], "alice");
    // What waits for dave (through his group) and for carol (by name); not for bob.
    for (who, waiting) in [(&c.dave, 1), (&c.carol, 1), (&c.bob, 0)] {
        let list = env
            .get("/v1/access-requests?role=approver&state=pending", who)
            .await;
        assert_eq!(list.status, 200, "{}", list.text);
        assert_eq!(list.body["items"].as_array().unwrap().len(), waiting);
    }

    let approved = c
        .act(
            &id,
            "approve",
            &c.dave,
            json!({"totp": env.fresh_code(&c.dave_code)}),
        )
        .await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    assert_eq!(approved.body["status"], "approved");
    assert_eq!(approved.body["decided_by"], "dave");
    let until = time::OffsetDateTime::parse(
        approved.body["access_until"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();

    // The ordinary decision path now lets alice become a-prod, as herself, for no longer than
    // her access lasts.
    let (issued, calls) = env
        .moto
        .record(env.credentials(
            &c.alice,
            json!({"target": "a-prod", "duration_seconds": 3600}),
        ))
        .await;
    assert_eq!(issued.status, 200, "{}", issued.text);
    let assume = calls_to(&calls, "sts");
    assert_eq!(assume.len(), 1);
    assert_eq!(assume[0].form("SourceIdentity").as_deref(), Some("alice"));
    env.clock.advance(Duration::minutes(90));
    let (late, calls) = env
        .moto
        .record(env.credentials(
            &c.alice,
            json!({"target": "a-prod", "duration_seconds": 3600}),
        ))
        .await;
    assert_eq!(late.status, 200, "{}", late.text);
    let asked: i64 = calls_to(&calls, "sts")[0]
        .form("DurationSeconds")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(asked, (until - env.clock.now()).whole_seconds());

    // Once its time has passed: 403, and STS is not asked.
    env.clock.advance(Duration::minutes(30));
    let (after, calls) = env
        .moto
        .record(env.credentials(&c.alice, json!({"target": "a-prod"})))
        .await;
    assert_eq!(refusal(&after), (403, "not_granted"), "{}", after.text);
    assert!(calls_to(&calls, "sts").is_empty(), "{calls:?}");
    let ended = env
        .get(&format!("/v1/access-requests/{id}"), &c.alice)
        .await;
    assert_eq!(ended.body["status"], "ended");

    // Every step is audited, and the issuances name the request that allowed them.
    let items = env.audit_items().await;
    let events: Vec<(&str, Option<&str>)> = items
        .iter()
        .map(|i| {
            (
                i["event"].as_s().unwrap().as_str(),
                i.get("access_request_id")
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str),
            )
        })
        .collect();
    for event in ["access.requested", "access.approved"] {
        assert!(
            events.contains(&(event, Some(id.as_str()))),
            "{event}: {events:?}"
        );
    }
    assert_eq!(
        events
            .iter()
            .filter(|e| **e == ("credentials.issued", Some(id.as_str())))
            .count(),
        2
    );

    // The approvers are told: who, what, why, for how long, and how to approve.
    let records = env.stream_records().await;
    assert!(
        env.notifier(&inbox.topic_arn)
            .handle(&records)
            .await
            .is_empty()
    );
    let notices = inbox.drain().await;
    let (subject, body) = notices
        .iter()
        .find(|(s, _)| s.contains("requests access"))
        .expect("a notice of the request");
    assert_eq!(
        subject,
        "cooper: alice requests access: user alice -> target a-prod"
    );
    for fact in [
        "For             2 h",
        "Why             incident 4711",
        &format!("Access request  {id}"),
        &format!("cooper access approve {id}"),
    ] {
        assert!(body.contains(fact), "{fact}: {body}");
    }
    assert!(
        notices
            .iter()
            .any(|(s, _)| s.contains("dave approved access"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_way_to_cheat_is_refused_and_audited() {
    let c = cast().await;
    let env = &c.env;

    // Nothing requestable but what a policy allows; nothing already held.
    let env_target = env.role_target("a-other", ACCOUNT_A, 10, None).await;
    let not = c
        .ask(
            &c.alice,
            json!({"target": env_target.name.as_str(), "reason": "x"}),
        )
        .await;
    assert_eq!(refusal(&not), (403, "not_requestable"));
    let long = c
        .ask(
            &c.alice,
            json!({"target": "a-prod", "duration_seconds": 4 * 3600 + 1, "reason": "x"}),
        )
        .await;
    assert_eq!(refusal(&long), (400, "invalid_duration"));

    let first = c.request(3600).await;
    let twice = c
        .ask(&c.alice, json!({"target": "a-prod", "reason": "again"}))
        .await;
    assert_eq!(refusal(&twice), (409, "request_pending"));
    assert!(twice.text.contains(&first), "{}", twice.text);

    // alice cannot approve her own request even if she were an approver; bob is not one.
    let own = c
        .act(&first, "approve", &c.alice, json!({"totp": "123456"}))
        .await;
    assert_eq!(refusal(&own), (403, "self_approval"));
    let stranger = c
        .act(
            &first,
            "approve",
            &c.bob,
            json!({"totp": env.fresh_code(&c.bob_code)}),
        )
        .await;
    // To a stranger it does not exist, whatever its state.
    assert_eq!(refusal(&stranger), (404, "access_request_not_found"));
    // A script's token is not a person approving.
    let carol_user = cooper_core::names::UserName::parse("carol").unwrap();
    let script = env.api_token(&carol_user).await;
    let scripted = c
        .act(
            &first,
            "approve",
            &script,
            json!({"totp": env.fresh_code(&c.carol_code)}),
        )
        .await;
    assert_eq!(refusal(&scripted), (403, "session_required"));
    // bob may not even see it.
    let peek = env
        .get(&format!("/v1/access-requests/{first}"), &c.bob)
        .await;
    assert_eq!(refusal(&peek), (404, "access_request_not_found"));

    // A code is good once: carol approves the first with it, and cannot reuse it.
    let code = env.fresh_code(&c.carol_code);
    let approved = c
        .act(
            &first,
            "approve",
            &c.carol,
            json!({"totp": code, "duration_seconds": 1800}),
        )
        .await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    assert_eq!(approved.body["status"], "approved");
    // alice gives it up early: it gives nothing from then on.
    let given_up = c.act(&first, "cancel", &c.alice, json!({})).await;
    assert_eq!(given_up.status, 200, "{}", given_up.text);
    assert_eq!(given_up.body["status"], "ended");
    let gone = env.credentials(&c.alice, json!({"target": "a-prod"})).await;
    assert_eq!(refusal(&gone), (403, "not_granted"));

    let second = c.request(3600).await;
    let replayed = c
        .act(&second, "approve", &c.carol, json!({"totp": code}))
        .await;
    assert_eq!(refusal(&replayed), (409, "approver_totp_replayed"));

    // Denied, then approved: refused.
    let denied = c
        .act(
            &second,
            "deny",
            &c.dave,
            json!({"reason": "use the runbook"}),
        )
        .await;
    assert_eq!(denied.status, 200, "{}", denied.text);
    assert_eq!(denied.body["status"], "denied");
    assert_eq!(denied.body["note"], "use the runbook");
    let after_deny = c
        .act(
            &second,
            "approve",
            &c.carol,
            json!({"totp": env.fresh_code(&c.carol_code)}),
        )
        .await;
    assert_eq!(refusal(&after_deny), (409, "access_request_settled"));

    // Withdrawn, then approved: refused.
    let third = c.request(3600).await;
    let withdrawn = env
        .call(
            Method::POST,
            &format!("/v1/access-requests/{third}/cancel"),
            Some(&c.alice),
            None,
            None,
        )
        .await;
    assert_eq!(withdrawn.status, 200, "{}", withdrawn.text);
    assert_eq!(withdrawn.body["status"], "cancelled");
    let after_cancel = c
        .act(
            &third,
            "approve",
            &c.carol,
            json!({"totp": env.fresh_code(&c.carol_code)}),
        )
        .await;
    assert_eq!(refusal(&after_cancel), (409, "access_request_settled"));

    // Lapsed (nobody acted for a day), then approved: refused.
    let fourth = c.request(3600).await;
    env.clock.advance(Duration::hours(24));
    // The sessions minted above have expired with the day: sign in again.
    let carol = env.jwt(&cooper_core::names::UserName::parse("carol").unwrap());
    let lapsed = c
        .act(
            &fourth,
            "approve",
            &carol,
            json!({"totp": env.fresh_code(&c.carol_code)}),
        )
        .await;
    assert_eq!(refusal(&lapsed), (409, "access_request_expired"));

    // Each refusal has its audit record; no time-bound grant is left.
    let refused: BTreeSet<String> = env
        .audit_items()
        .await
        .iter()
        .filter(|i| i["event"].as_s().unwrap() == "access.refused")
        .map(|i| i["reason"].as_s().unwrap().clone())
        .collect();
    for code in [
        "not_requestable",
        "request_pending",
        "self_approval",
        "access_request_not_found",
        "session_required",
        "approver_totp_replayed",
        "access_request_settled",
        "access_request_expired",
    ] {
        assert!(refused.contains(code), "{code} not audited: {refused:?}");
    }
    let grants = env
        .dynamodb
        .scan()
        .table_name(&env.settings.directory_table)
        .filter_expression("begins_with(PK, :jit)")
        .expression_attribute_values(
            ":jit",
            cooper_aws::aws_sdk_dynamodb::types::AttributeValue::S("JIT#".into()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(grants.count, 0, "{:?}", grants.items);
}
