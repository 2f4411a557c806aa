//! Taking back what was handed out: signing out, an admin ending a person's cooper sessions, and
//! the deny that ends the AWS sessions cooper issued them (on exactly the holders the trail
//! shows, within the admin's scope, every step audited, a failed write reported and redone).

use cooper_core::access::{AuthMethod, Identity};
use cooper_core::admin::RevokeOn;
use cooper_core::audit::AuditEvent;
use cooper_core::memory::MemoryWorld;
use cooper_core::revocation::policy::POLICY_NAME;
use cooper_core::revocation::{SessionId, SessionRef};
use cooper_core::signout::{Applied, SignoutError};
use cooper_core::token::TokenId;
use serde_json::Value;
use time::Duration;

use crate::admin::{admin_world, config, ctx, refused};
use crate::given::*;

fn session_of(w: &MemoryWorld, name: &str, n: u8) -> Identity {
    let mut identity = w.identity(name).unwrap();
    identity.session = Some(SessionRef {
        id: SessionId::parse(&format!("{n:032x}")).unwrap(),
        issued_at: w.now(),
        expires_at: w.now() + Duration::hours(1),
    });
    identity
}

async fn ended(w: &MemoryWorld, identity: &Identity) -> bool {
    use cooper_core::ports::Directory;
    let session = identity.session.as_ref().unwrap();
    w.store
        .session_revocations(&identity.user)
        .await
        .unwrap()
        .is_some_and(|(r, _)| r.ends(session))
}

#[tokio::test]
async fn signing_out_ends_that_session_only_and_is_audited() -> TestResult {
    let w = admin_world();
    let (laptop, phone) = (session_of(&w, "alice", 1), session_of(&w, "alice", 2));
    w.signout().sign_out(&laptop, &w.meta()).await?;
    assert!(ended(&w, &laptop).await);
    assert!(!ended(&w, &phone).await, "the other session goes on");
    let record = last_record(&w);
    assert_eq!(record.event, AuditEvent::SessionEnded);
    assert_eq!(record.actor, "alice");
    assert_eq!(
        record.resource.as_deref(),
        Some(format!("session:{:032x}", 1).as_str())
    );
    // Signing out twice is fine; signing the other one out keeps the first ended.
    w.signout().sign_out(&laptop, &w.meta()).await?;
    w.signout().sign_out(&phone, &w.meta()).await?;
    assert!(ended(&w, &laptop).await && ended(&w, &phone).await);
    Ok(())
}

#[tokio::test]
async fn an_ended_session_is_refused_by_the_decision_itself_and_sts_is_never_asked() -> TestResult {
    let w = admin_world();
    let (laptop, phone) = (session_of(&w, "alice", 1), session_of(&w, "alice", 2));
    w.issuer()
        .issue(laptop.clone(), &ask("a-ro"), &w.meta())
        .await?;
    w.signout().sign_out(&laptop, &w.meta()).await?;
    let calls = w.broker.calls().len();
    let refused = w
        .issuer()
        .issue(laptop, &ask("a-ro"), &w.meta())
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            cooper_core::issue::IssueError::Denied(cooper_core::access::Denial::SessionRevoked)
        ),
        "{refused:?}"
    );
    assert_eq!(w.broker.calls().len(), calls, "STS was not asked");
    // The other session, and a token (no session), go on.
    w.issuer().issue(phone, &ask("a-ro"), &w.meta()).await?;
    w.issuer()
        .issue(w.identity("alice")?, &ask("a-ro"), &w.meta())
        .await?;
    Ok(())
}

#[tokio::test]
async fn an_api_token_is_not_a_session_to_sign_out() -> TestResult {
    let w = admin_world();
    let identity = Identity::new(
        user("alice"),
        AuthMethod::ApiToken(TokenId::parse("0123456789abcdef").unwrap()),
    );
    let before = w.state()?;
    let err = w
        .signout()
        .sign_out(&identity, &w.meta())
        .await
        .unwrap_err();
    assert!(matches!(err, SignoutError::NotASession), "{err}");
    nothing_written(&w, &before);
    Ok(())
}

#[tokio::test]
async fn only_universal_admins_end_someones_cooper_sessions() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    let alice = session_of(&w, "alice", 1);

    let amy = ctx(&w, &admin, "amy", None).await?;
    let before = w.state()?;
    let result = admin.revoke_user_sessions(&amy, &user("alice")).await;
    refused(&w, &before, result, "universal_admin_required");
    assert!(!ended(&w, &alice).await);

    let root = ctx(&w, &admin, "root", None).await?;
    admin.revoke_user_sessions(&root, &user("alice")).await?;
    assert!(ended(&w, &alice).await);
    let record = last_record(&w);
    assert_eq!(record.event, AuditEvent::AdminChange);
    assert_eq!(record.action.as_deref(), Some("revoke_sessions"));
    assert_eq!(record.resource.as_deref(), Some("user:alice"));
    // A session signed in after the revoke (a later second) works.
    w.clock.advance(Duration::seconds(1));
    assert!(!ended(&w, &session_of(&w, "alice", 3)).await);
    Ok(())
}

fn statements(doc: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(doc).unwrap();
    v["Statement"].as_array().unwrap().clone()
}

const A_RO: &str = "arn:aws:iam::111111111111:role/a-ro";
const A_TOP: &str = "arn:aws:iam::111111111111:role/a-top";
const B_RO: &str = "arn:aws:iam::222222222222:role/b-ro";

#[tokio::test]
async fn a_revocation_denies_the_persons_older_sessions_on_exactly_the_roles_they_were_issued()
-> TestResult {
    let w = admin_world();
    w.user("bob")?;
    w.grant_target(as_user("bob"), "a-ro")?;
    let issuer = w.issuer();
    issuer
        .issue(w.identity("alice")?, &ask("a-ro"), &w.meta())
        .await?;
    issuer
        .issue(w.identity("alice")?, &ask("b-ro"), &w.meta())
        .await?;
    issuer
        .issue(w.identity("bob")?, &ask("a-ro"), &w.meta())
        .await?;
    w.clock.advance(Duration::minutes(5));
    let admin = w.admin(config());
    let report = admin
        .revoke_aws_sessions(
            &ctx(&w, &admin, "root", None).await?,
            &user("alice"),
            &RevokeOn::Everywhere,
        )
        .await?;
    assert!(report.complete());
    let holders: Vec<&str> = report.holders.iter().map(|h| h.holder.as_str()).collect();
    assert_eq!(holders, [A_RO, B_RO], "exactly alice's roles");
    assert_eq!(w.policies.holders(), [A_RO, B_RO]);
    let doc = w.policies.document(A_RO).unwrap();
    let s = statements(&doc);
    assert_eq!(s.len(), 1);
    assert_eq!(
        s[0]["Condition"]["StringEquals"]["aws:SourceIdentity"],
        "alice"
    );
    assert_eq!(
        s[0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"],
        "2026-03-02T09:05:00Z"
    );
    let record = records(&w, AuditEvent::AdminChange).pop().unwrap();
    assert_eq!(record.action.as_deref(), Some("revoke_aws_sessions"));
    assert_eq!(record.resource.as_deref(), Some("user:alice"));
    assert_eq!(record.after.as_ref().unwrap()["holders"][0], A_RO);

    // bob too, on the role he shares with alice: one policy, both statements.
    let report = admin
        .revoke_aws_sessions(
            &ctx(&w, &admin, "root", None).await?,
            &user("bob"),
            &RevokeOn::Everywhere,
        )
        .await?;
    assert_eq!(report.holders.len(), 1);
    let doc = w.policies.document(A_RO).unwrap();
    let mut people: Vec<String> = statements(&doc)
        .iter()
        .map(|s| s["Condition"]["StringEquals"]["aws:SourceIdentity"].to_string())
        .collect();
    people.sort();
    assert_eq!(people, ["\"alice\"", "\"bob\""]);
    assert!(
        !doc.contains(POLICY_NAME),
        "the name is the policy's, not its content"
    );
    Ok(())
}

#[tokio::test]
async fn an_account_admin_revokes_only_in_their_accounts() -> TestResult {
    let w = admin_world();
    let issuer = w.issuer();
    for t in ["a-ro", "b-ro"] {
        issuer
            .issue(w.identity("alice")?, &ask(t), &w.meta())
            .await?;
    }
    let admin = w.admin(config());
    let amy = ctx(&w, &admin, "amy", None).await?;
    let before = w.state()?;
    let result = admin
        .revoke_aws_sessions(
            &amy,
            &user("alice"),
            &RevokeOn::Account(cooper_core::names::AccountId::parse(B)?),
        )
        .await;
    refused(&w, &before, result, "out_of_scope");
    let amy = ctx(&w, &admin, "amy", None).await?;
    let report = admin
        .revoke_aws_sessions(&amy, &user("alice"), &RevokeOn::Everywhere)
        .await?;
    let holders: Vec<&str> = report.holders.iter().map(|h| h.holder.as_str()).collect();
    assert_eq!(holders, [A_RO], "account B is not amy's");
    assert!(w.policies.document(B_RO).is_none());
    Ok(())
}

#[tokio::test]
async fn a_failed_write_is_reported_audited_and_finished_by_the_next_revocation() -> TestResult {
    let w = admin_world();
    w.grant_target(as_user("alice"), "a-top")?;
    let issuer = w.issuer();
    for t in ["a-ro", "a-top"] {
        issuer
            .issue(w.identity("alice")?, &ask(t), &w.meta())
            .await?;
    }
    let admin = w.admin(config());
    w.policies.fail_for(Some(A_TOP));
    let report = admin
        .revoke_aws_sessions(
            &ctx(&w, &admin, "root", None).await?,
            &user("alice"),
            &RevokeOn::Everywhere,
        )
        .await?;
    assert!(!report.complete());
    let failed = report.holders.iter().find(|h| h.holder == A_TOP).unwrap();
    assert!(matches!(
        failed.applied,
        Applied::Failed {
            code: "upstream",
            ..
        }
    ));
    assert!(
        w.policies.document(A_RO).is_some(),
        "the others are written"
    );
    assert!(w.policies.document(A_TOP).is_none());
    let incomplete = records(&w, AuditEvent::RevocationIncomplete);
    assert_eq!(incomplete.len(), 1);
    assert!(incomplete[0].reason.as_deref().unwrap().contains(A_TOP));

    w.policies.fail_for(None);
    let report = admin
        .revoke_aws_sessions(
            &ctx(&w, &admin, "root", None).await?,
            &user("alice"),
            &RevokeOn::Everywhere,
        )
        .await?;
    assert!(report.complete());
    assert!(w.policies.document(A_TOP).is_some());
    Ok(())
}

#[tokio::test]
async fn a_target_revocation_touches_that_targets_role_only_and_old_issuances_are_over()
-> TestResult {
    let w = admin_world();
    let issuer = w.issuer();
    issuer
        .issue(w.identity("alice")?, &ask("b-ro"), &w.meta())
        .await?;
    // Issued more than 36 hours ago: every session of it has expired; nothing to deny.
    w.clock.advance(Duration::hours(37));
    issuer
        .issue(w.identity("alice")?, &ask("a-ro"), &w.meta())
        .await?;
    let admin = w.admin(config());
    let report = admin
        .revoke_aws_sessions(
            &ctx(&w, &admin, "root", None).await?,
            &user("alice"),
            &RevokeOn::Everywhere,
        )
        .await?;
    let holders: Vec<&str> = report.holders.iter().map(|h| h.holder.as_str()).collect();
    assert_eq!(holders, [A_RO]);
    let report = admin
        .revoke_aws_sessions(
            &ctx(&w, &admin, "root", None).await?,
            &user("alice"),
            &RevokeOn::Target(target("a-top")),
        )
        .await?;
    assert!(report.holders.is_empty(), "never issued a-top");
    Ok(())
}

#[tokio::test]
async fn a_trail_too_long_to_read_is_refused_not_half_revoked() -> TestResult {
    use cooper_core::ledger::Ledger;
    let w = admin_world();
    let record = {
        w.issuer()
            .issue(w.identity("alice")?, &ask("a-ro"), &w.meta())
            .await?;
        last_record(&w)
    };
    // More issuances in 36 hours than the revocation reads (25 pages of 200).
    for n in 0..5_000 {
        let mut r = record.clone();
        r.id = format!("bulk-{n}");
        w.store.commit(&[], &r).await?;
    }
    let admin = w.admin(config());
    let before = w.state()?;
    let err = admin
        .revoke_aws_sessions(
            &ctx(&w, &admin, "root", None).await?,
            &user("alice"),
            &RevokeOn::Everywhere,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "trail_too_long");
    nothing_written(&w, &before);
    assert_eq!(w.policies.writes(), 0);
    Ok(())
}
