//! No effect without its audit record (invariant 9), for every audited use case: with the ledger
//! failing, nothing at all is written and the answer says the audit was unavailable; with it
//! working, the change and its record are there together.

use std::fmt::Debug;

use cooper_core::admin::{Admin, AdminError, KindSpec, TargetSpec};
use cooper_core::approval::ApprovalError;
use cooper_core::audit::{AuditEvent, AuditRecord};
use cooper_core::factors::FactorError;
use cooper_core::issue::IssueError;
use cooper_core::memory::{MemoryWorld, SealedFor};
use cooper_core::model::approvals::ApprovalStatus;
use cooper_core::model::{Account, AdminGrant, Grant, GrantKey, GrantOn, GrantScope, Group, User};
use cooper_core::names::{AccountId, AccountName, Level, Partition, Reason, RoleArn};
use cooper_core::password::NewPassword;
use cooper_core::sessions::SessionError;
use cooper_core::totp::{TotpSecret, step_of};
use secrecy::SecretString;

use crate::admin::{admin_world, config, ctx};
use crate::given::*;

/// Runs `op` with the ledger failing once: it must fail as `unavailable` says, writing nothing
/// at all (no change, no record). Then runs it with the ledger working: it must succeed, with
/// exactly one new record, which is returned with what `op` answered.
async fn audited<T, E: Debug>(
    w: &MemoryWorld,
    op: impl AsyncFn() -> Result<T, E>,
    unavailable: impl Fn(&E) -> bool,
) -> (T, AuditRecord) {
    let before = w.state().unwrap();
    w.store.fail_next_commits(1).unwrap();
    let err = op()
        .await
        .err()
        .expect("the ledger failed, so must the use case");
    assert!(
        unavailable(&err),
        "the answer says the audit was unavailable: {err:?}"
    );
    nothing_written(w, &before);

    let answer = match op().await {
        Ok(answer) => answer,
        Err(e) => panic!("with the ledger working it succeeds: {e:?}"),
    };
    let after = w.state().unwrap();
    assert_eq!(after.audit.len(), before.audit.len() + 1, "one record");
    (answer, after.audit[before.audit.len()].clone())
}

fn factor_unavailable(e: &FactorError) -> bool {
    matches!(e, FactorError::AuditUnavailable(_))
}

fn admin_unavailable(e: &AdminError) -> bool {
    matches!(e, AdminError::AuditUnavailable(_))
}

/// An admin change: fails closed, then is recorded as `resource` / `action`.
async fn admin_change<T>(
    w: &MemoryWorld,
    op: impl AsyncFn() -> Result<T, AdminError>,
    resource: &str,
    action: &str,
) -> T {
    let (answer, record) = audited(w, op, admin_unavailable).await;
    assert_eq!(record.event, AuditEvent::AdminChange);
    assert_eq!(record.resource.as_deref(), Some(resource));
    assert_eq!(record.action.as_deref(), Some(action));
    answer
}

fn account_id(id: &str) -> AccountId {
    AccountId::parse(id).unwrap()
}

// ---- factors and sessions ----

#[tokio::test]
async fn enrollment_start() -> TestResult {
    let w = MemoryWorld::new();
    w.user("bob")?;
    let bob = w.identity("bob")?;
    let (_, record) = audited(
        &w,
        async || w.enrollment().start(&bob, None, &w.meta()).await,
        factor_unavailable,
    )
    .await;
    assert_eq!(record.event, AuditEvent::TotpEnrollmentStarted);
    assert!(w.factors_of("bob")?.pending.is_some());
    Ok(())
}

#[tokio::test]
async fn enrollment_confirm() -> TestResult {
    let w = MemoryWorld::new();
    w.user("bob")?;
    let bob = w.identity("bob")?;
    w.enrollment().start(&bob, None, &w.meta()).await?;
    let pending = w.factors_of("bob")?.pending.unwrap();
    let secret = TotpSecret::from_bytes(
        w.vault
            .open(&SealedFor::TotpSecret(user("bob")), &pending.sealed)?,
    )?;
    let code = secret.code_at(w.now()).unwrap();
    let (_, record) = audited(
        &w,
        async || w.enrollment().confirm(&bob, &code, None, &w.meta()).await,
        factor_unavailable,
    )
    .await;
    assert_eq!(record.event, AuditEvent::TotpEnrolled);
    let factors = w.factors_of("bob")?;
    assert_eq!(factors.totp.unwrap().sealed, pending.sealed);
    assert!(factors.pending.is_none());
    Ok(())
}

#[tokio::test]
async fn password_set() -> TestResult {
    let w = MemoryWorld::new();
    w.user("alice")?;
    w.enroll_totp("alice")?;
    let alice = w.identity("alice")?;
    let password = NewPassword::parse(SecretString::from("correct horse battery"), &user("alice"))?;
    let code = w.code("alice")?;
    let (_, record) = audited(
        &w,
        async || {
            w.password_change()
                .set(&alice, &password, &code, &w.meta())
                .await
        },
        factor_unavailable,
    )
    .await;
    assert_eq!(record.event, AuditEvent::PasswordChanged);
    assert!(w.factors_of("alice")?.password.is_some());
    assert_eq!(
        w.factors_of("alice")?.totp.unwrap().last_step,
        step_of(w.now())
    );
    Ok(())
}

#[tokio::test]
async fn local_login() -> TestResult {
    let w = MemoryWorld::new();
    w.user("alice")?;
    w.enroll_totp("alice")?;
    w.password("alice", "correct horse battery")?;
    let code = w.code("alice")?;
    let (session, record) = audited(
        &w,
        async || {
            w.local_login()
                .login(
                    &user("alice"),
                    &SecretString::from("correct horse battery".to_owned()),
                    &code,
                    &w.meta(),
                )
                .await
        },
        |e| matches!(e, SessionError::Factor(FactorError::AuditUnavailable(_))),
    )
    .await;
    assert_eq!(record.event, AuditEvent::SessionCreated);
    assert_eq!(record.expiration, Some(session.expires_at));
    assert_eq!(
        w.factors_of("alice")?.totp.unwrap().last_step,
        step_of(w.now())
    );
    Ok(())
}

#[tokio::test]
async fn oidc_session_exchange() -> TestResult {
    let w = MemoryWorld::new();
    let (session, record) = audited(
        &w,
        async || {
            w.session_exchange()
                .exchange(oidc("ivy", &["ops"]), &w.meta())
                .await
        },
        |e| matches!(e, SessionError::Factor(FactorError::AuditUnavailable(_))),
    )
    .await;
    assert_eq!(record.event, AuditEvent::SessionCreated);
    assert_eq!(record.expiration, Some(session.expires_at));
    Ok(())
}

// ---- approvals and issuance ----

/// alice may become `prod`, which carol approves.
fn approval_world() -> MemoryWorld {
    let w = MemoryWorld::new();
    w.account(A).unwrap();
    let mut prod = w.role_target("prod", A, 100).unwrap();
    prod.approvers = vec![as_user("carol")];
    w.put_target(prod).unwrap();
    for name in ["alice", "carol"] {
        w.user(name).unwrap();
        w.enroll_totp(name).unwrap();
    }
    w.grant_account(as_user("alice"), A, 100).unwrap();
    w
}

fn approval_unavailable(e: &ApprovalError) -> bool {
    matches!(e, ApprovalError::AuditUnavailable(_))
}

#[tokio::test]
async fn approval_open() -> TestResult {
    let w = approval_world();
    let reason = Reason::parse("deploy")?;
    let (request, record) = audited(
        &w,
        async || {
            w.approvals()
                .open(
                    w.identity("alice").unwrap(),
                    &target("prod"),
                    &reason,
                    &w.meta(),
                )
                .await
        },
        approval_unavailable,
    )
    .await;
    assert_eq!(record.event, AuditEvent::ApprovalRequested);
    assert_eq!(record.approval_id, Some(request.id.to_string()));
    assert_eq!(w.state()?.approvals.len(), 1);
    Ok(())
}

#[tokio::test]
async fn approval_approve() -> TestResult {
    let w = approval_world();
    let request = w
        .approvals()
        .open(
            w.identity("alice")?,
            &target("prod"),
            &Reason::parse("deploy")?,
            &w.meta(),
        )
        .await?;
    let code = w.code("carol")?;
    let (_, record) = audited(
        &w,
        async || {
            w.approvals()
                .approve(&request.id, w.identity("carol").unwrap(), &code, &w.meta())
                .await
        },
        approval_unavailable,
    )
    .await;
    assert_eq!(record.event, AuditEvent::ApprovalApproved);
    assert_eq!(
        w.state()?.approvals[&request.id].status,
        ApprovalStatus::Approved
    );
    assert_eq!(
        w.factors_of("carol")?.totp.unwrap().last_step,
        step_of(w.now())
    );
    Ok(())
}

#[tokio::test]
async fn issuance() -> TestResult {
    let w = approval_world();
    w.role_target("ro", A, 10)?;
    let (issued, record) = audited(
        &w,
        async || {
            w.issuer()
                .issue(w.identity("alice").unwrap(), &ask("ro"), &w.meta())
                .await
        },
        |e| matches!(e, IssueError::AuditUnavailable(_)),
    )
    .await;
    assert_eq!(record.event, AuditEvent::CredentialsIssued);
    assert_eq!(
        record.access_key_id.as_deref(),
        Some(issued.credentials.access_key_id.as_str())
    );
    assert_eq!(
        w.broker.issued().len(),
        2,
        "the first set was never handed out"
    );
    Ok(())
}

// ---- admin changes ----

fn new_account() -> Account {
    Account {
        id: account_id("333333333333"),
        name: AccountName::parse("new").unwrap(),
        partition: Partition::Aws,
        access_requests: None,
    }
}

fn role_spec(name: &str, level: u32) -> TargetSpec {
    TargetSpec {
        name: target(name),
        account: account_id(A),
        level: Level::new(level).unwrap(),
        kind: KindSpec::Role {
            role_arn: RoleArn::parse(&format!("arn:aws:iam::{A}:role/{name}")).unwrap(),
            external_id: None,
        },
        max_duration_seconds: None,
        high_security: false,
        description: None,
        approvers: Vec::new(),
        access_requests: None,
        session_tags: Default::default(),
    }
}

fn world_and_admin() -> (MemoryWorld, Admin) {
    let w = admin_world();
    let admin = w.admin(config());
    (w, admin)
}

#[tokio::test]
async fn admin_accounts() -> TestResult {
    let (w, admin) = world_and_admin();
    admin_change(
        &w,
        async || {
            admin
                .create_account(&ctx(&w, &admin, "root", None).await?, new_account())
                .await
        },
        "account:333333333333",
        "create",
    )
    .await;
    assert!(
        w.state()?
            .accounts
            .contains_key(&account_id("333333333333"))
    );

    let renamed = Account {
        name: AccountName::parse("renamed")?,
        ..new_account()
    };
    admin_change(
        &w,
        async || {
            admin
                .update_account(
                    &ctx(&w, &admin, "root", None).await?,
                    renamed.clone(),
                    Some(1),
                )
                .await
        },
        "account:333333333333",
        "update",
    )
    .await;
    assert_eq!(w.state()?.accounts[&account_id("333333333333")].version, 2);

    let code = w.code("root")?;
    admin_change(
        &w,
        async || {
            admin
                .delete_account(
                    &ctx(&w, &admin, "root", Some(code.clone())).await?,
                    &account_id("333333333333"),
                    None,
                    false,
                )
                .await
        },
        "account:333333333333",
        "delete",
    )
    .await;
    assert!(
        !w.state()?
            .accounts
            .contains_key(&account_id("333333333333"))
    );
    Ok(())
}

#[tokio::test]
async fn admin_targets() -> TestResult {
    let (w, admin) = world_and_admin();
    admin_change(
        &w,
        async || {
            admin
                .create_target(&ctx(&w, &admin, "amy", None).await?, role_spec("a-new", 20))
                .await
        },
        "target:a-new",
        "create",
    )
    .await;
    admin_change(
        &w,
        async || {
            admin
                .update_target(
                    &ctx(&w, &admin, "amy", None).await?,
                    role_spec("a-new", 30),
                    Some(1),
                )
                .await
        },
        "target:a-new",
        "update",
    )
    .await;
    assert_eq!(
        w.state()?.targets[&target("a-new")].value.level,
        Level::new(30)?
    );
    admin_change(
        &w,
        async || {
            admin
                .delete_target(
                    &ctx(&w, &admin, "amy", None).await?,
                    &target("a-new"),
                    Some(2),
                    false,
                )
                .await
        },
        "target:a-new",
        "delete",
    )
    .await;
    assert!(!w.state()?.targets.contains_key(&target("a-new")));
    Ok(())
}

#[tokio::test]
async fn admin_users() -> TestResult {
    let (w, admin) = world_and_admin();
    admin_change(
        &w,
        async || {
            admin
                .create_user(
                    &ctx(&w, &admin, "root", None).await?,
                    User::new(user("zed")),
                )
                .await
        },
        "user:zed",
        "create",
    )
    .await;
    let disabled = User {
        enabled: false,
        ..User::new(user("zed"))
    };
    admin_change(
        &w,
        async || {
            admin
                .update_user(
                    &ctx(&w, &admin, "root", None).await?,
                    disabled.clone(),
                    Some(1),
                )
                .await
        },
        "user:zed",
        "update",
    )
    .await;
    assert!(!w.state()?.users[&user("zed")].value.enabled);

    w.enroll_totp("zed")?;
    admin_change(
        &w,
        async || {
            admin
                .reset_totp(&ctx(&w, &admin, "root", None).await?, &user("zed"))
                .await
        },
        "user:zed",
        "reset_totp",
    )
    .await;
    assert!(w.factors_of("zed")?.totp.is_none());

    admin_change(
        &w,
        async || {
            admin
                .delete_user(
                    &ctx(&w, &admin, "root", None).await?,
                    &user("zed"),
                    Some(2),
                    false,
                )
                .await
        },
        "user:zed",
        "delete",
    )
    .await;
    assert!(!w.state()?.users.contains_key(&user("zed")));
    Ok(())
}

#[tokio::test]
async fn admin_groups_and_members() -> TestResult {
    let (w, admin) = world_and_admin();
    let ops = Group {
        name: group("ops"),
        description: None,
    };
    admin_change(
        &w,
        async || {
            admin
                .create_group(&ctx(&w, &admin, "root", None).await?, ops.clone())
                .await
        },
        "group:ops",
        "create",
    )
    .await;
    let described = Group {
        description: Some(cooper_core::names::Description::parse("on call")?),
        ..ops.clone()
    };
    admin_change(
        &w,
        async || {
            admin
                .update_group(
                    &ctx(&w, &admin, "root", None).await?,
                    described.clone(),
                    Some(1),
                )
                .await
        },
        "group:ops",
        "update",
    )
    .await;
    admin_change(
        &w,
        async || {
            admin
                .add_member(
                    &ctx(&w, &admin, "root", None).await?,
                    &group("ops"),
                    &user("alice"),
                )
                .await
        },
        "group:ops",
        "add_member",
    )
    .await;
    assert!(
        w.state()?
            .memberships
            .contains(&(user("alice"), group("ops")))
    );
    admin_change(
        &w,
        async || {
            admin
                .remove_member(
                    &ctx(&w, &admin, "root", None).await?,
                    &group("ops"),
                    &user("alice"),
                )
                .await
        },
        "group:ops",
        "remove_member",
    )
    .await;
    assert!(
        !w.state()?
            .memberships
            .contains(&(user("alice"), group("ops")))
    );
    admin_change(
        &w,
        async || {
            admin
                .delete_group(
                    &ctx(&w, &admin, "root", None).await?,
                    &group("ops"),
                    Some(2),
                    false,
                )
                .await
        },
        "group:ops",
        "delete",
    )
    .await;
    assert!(!w.state()?.groups.contains_key(&group("ops")));
    Ok(())
}

#[tokio::test]
async fn admin_grants() -> TestResult {
    let (w, admin) = world_and_admin();
    let grant = Grant {
        principal: as_user("nobody"),
        scope: GrantScope::Account {
            account: account_id(A),
            max_level: Level::new(50)?,
        },
        expires_at: None,
        via: None,
    };
    admin_change(
        &w,
        async || {
            admin
                .create_grant(&ctx(&w, &admin, "amy", None).await?, grant.clone())
                .await
        },
        "grant user nobody -> account 111111111111 up to level 50",
        "create",
    )
    .await;
    assert!(w.state()?.grants.contains_key(&grant.key()));
    let key = GrantKey {
        principal: as_user("nobody"),
        on: GrantOn::Account(account_id(A)),
    };
    admin_change(
        &w,
        async || {
            admin
                .delete_grant(&ctx(&w, &admin, "amy", None).await?, key.clone())
                .await
        },
        "grant user nobody -> account 111111111111",
        "delete",
    )
    .await;
    assert!(!w.state()?.grants.contains_key(&key));
    Ok(())
}

#[tokio::test]
async fn admin_admin_grants() -> TestResult {
    let (w, admin) = world_and_admin();
    let grant = AdminGrant {
        principal: as_user("nobody"),
        account: Some(account_id(A)),
    };
    let code = w.code("amy")?;
    admin_change(
        &w,
        async || {
            admin
                .create_admin_grant(
                    &ctx(&w, &admin, "amy", Some(code.clone())).await?,
                    grant.clone(),
                )
                .await
        },
        "admin grant user nobody -> account 111111111111",
        "create",
    )
    .await;
    assert!(w.state()?.admin_grants.contains(&grant));
    w.clock.advance(time::Duration::seconds(30));
    let code = w.code("amy")?;
    admin_change(
        &w,
        async || {
            admin
                .delete_admin_grant(
                    &ctx(&w, &admin, "amy", Some(code.clone())).await?,
                    grant.clone(),
                )
                .await
        },
        "admin grant user nobody -> account 111111111111",
        "delete",
    )
    .await;
    assert!(!w.state()?.admin_grants.contains(&grant));
    Ok(())
}

#[tokio::test]
async fn admin_tokens() -> TestResult {
    let (w, admin) = world_and_admin();
    let (token, _) = admin_change(
        &w,
        async || {
            admin
                .issue_token(
                    &ctx(&w, &admin, "root", None).await?,
                    &user("alice"),
                    None,
                    None,
                )
                .await
        },
        "user:alice",
        "issue_token",
    )
    .await;
    assert!(w.state()?.tokens.contains_key(token.id()));
    let id = token.id().clone();
    admin_change(
        &w,
        async || {
            admin
                .revoke_token(&ctx(&w, &admin, "root", None).await?, &id)
                .await
        },
        &format!("token:{id}"),
        "revoke",
    )
    .await;
    assert!(w.state()?.tokens[&id].revoked);
    Ok(())
}
