//! Administration: the scope matrix (universal admins, account admins, everyone else) on every
//! kind of operation; no admin wider than its maker; every refusal recorded, nothing changed.

use std::fmt::Debug;

use cooper_core::admin::scope::{AdminGroups, AdminScope};
use cooper_core::admin::store::{AuditQuery, PageRequest};
use cooper_core::admin::{
    Admin, AdminCall, AdminConfig, AdminContext, AdminError, KindSpec, Sensitive, TargetSpec,
};
use cooper_core::audit::{AuditEvent, AuditRecord};
use cooper_core::memory::{MemoryWorld, State};
use cooper_core::model::{Account, AdminGrant, Grant, GrantKey, GrantOn, GrantScope, Group, User};
use cooper_core::names::{AccountId, AccountName, Level, Partition, RoleArn};
use cooper_core::totp::TotpCode;

use crate::given::*;

/// Accounts A and B, each with a `-ro` (10) and a `-top` (100) target. root is a universal admin
/// (an admin grant), amy an admin of A (an admin grant), pat an admin of A through the
/// configured group `payments-admins`; nobody and alice are no admins. root and amy have
/// authenticators. alice may become A's and B's `-ro` targets.
pub fn admin_world() -> MemoryWorld {
    let w = MemoryWorld::new();
    for account in [A, B] {
        w.account(account).unwrap();
    }
    w.role_target("a-ro", A, 10).unwrap();
    w.role_target("a-top", A, 100).unwrap();
    w.role_target("b-ro", B, 10).unwrap();
    w.role_target("b-top", B, 100).unwrap();
    for name in ["root", "amy", "pat", "nobody", "alice"] {
        w.user(name).unwrap();
    }
    for name in ["root", "amy"] {
        w.enroll_totp(name).unwrap();
    }
    w.group("payments-admins").unwrap();
    w.member("pat", "payments-admins").unwrap();
    w.admin_grant(as_user("root"), None).unwrap();
    w.admin_grant(as_user("amy"), Some(A)).unwrap();
    w.grant_target(as_user("alice"), "a-ro").unwrap();
    w.grant_target(as_user("alice"), "b-ro").unwrap();
    w
}

pub fn config() -> AdminConfig {
    AdminConfig {
        groups: AdminGroups::parse("platform-admins, payments-admins=111111111111").unwrap(),
        sensitive: Sensitive::DEFAULT.into_iter().collect(),
        ..AdminConfig::default()
    }
}

/// One admin request by `who`, with `code` when given.
pub async fn ctx(
    w: &MemoryWorld,
    admin: &Admin,
    who: &str,
    code: Option<TotpCode>,
) -> Result<AdminContext, AdminError> {
    admin
        .context(AdminCall {
            identity: w.identity(who).unwrap(),
            totp: code,
            meta: w.meta(),
        })
        .await
}

/// `result` is a refusal with `code`: recorded, and nothing changed.
pub fn refused<T: Debug>(
    w: &MemoryWorld,
    before: &State,
    result: Result<T, AdminError>,
    code: &str,
) {
    let err = result.unwrap_err();
    assert_eq!(err.code(), code, "{err}");
    nothing_changed(w, before);
    let record = last_record(w);
    assert_eq!(record.event, AuditEvent::AdminRefused, "{record:?}");
    assert_eq!(record.reason.as_deref(), Some(code));
}

fn account_id(id: &str) -> AccountId {
    AccountId::parse(id).unwrap()
}

fn new_account(id: &str) -> Account {
    Account {
        id: account_id(id),
        name: AccountName::parse("new account").unwrap(),
        partition: Partition::Aws,
        access_requests: None,
    }
}

pub fn role_spec(name: &str, account: &str, level: u32) -> TargetSpec {
    TargetSpec {
        name: target(name),
        account: account_id(account),
        level: Level::new(level).unwrap(),
        kind: KindSpec::Role {
            role_arn: RoleArn::parse(&format!("arn:aws:iam::{account}:role/{name}")).unwrap(),
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

fn cascade(principal: &str, account: &str, level: u32) -> Grant {
    Grant {
        principal: as_user(principal),
        scope: GrantScope::Account {
            account: account_id(account),
            max_level: Level::new(level).unwrap(),
        },
        expires_at: None,
        via: None,
    }
}

#[tokio::test]
async fn a_user_without_admin_scope_is_refused_and_the_refusal_recorded() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    for who in ["nobody", "alice"] {
        let before = w.state()?;
        refused(
            &w,
            &before,
            ctx(&w, &admin, who, None).await.map(|_| ()),
            "not_an_admin",
        );
        assert_eq!(last_record(&w).actor, who);
    }
    // A disabled admin is no admin at all.
    let mut root = w.state()?.users[&user("root")].value.clone();
    root.enabled = false;
    w.put_user(root)?;
    let err = ctx(&w, &admin, "root", None).await.err().unwrap();
    assert_eq!(err.code(), "user_disabled");
    Ok(())
}

#[tokio::test]
async fn scopes_come_from_admin_grants_and_configured_groups() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    let scope = |who: &'static str| {
        let admin = &admin;
        let w = &w;
        async move { admin.scope(w.identity(who).unwrap()).await.unwrap().1 }
    };
    assert_eq!(scope("root").await, AdminScope::Universal);
    assert!(scope("amy").await.covers(&account_id(A)));
    assert!(!scope("amy").await.covers(&account_id(B)));
    assert!(scope("pat").await.covers(&account_id(A)));
    assert!(!scope("pat").await.is_universal());
    assert_eq!(scope("nobody").await, AdminScope::None);

    // A group's admin grant counts for its members.
    w.group("ops")?;
    w.member("nobody", "ops")?;
    w.admin_grant(as_group("ops"), Some(B))?;
    assert!(scope("nobody").await.covers(&account_id(B)));
    Ok(())
}

#[tokio::test]
async fn only_universal_admins_touch_accounts_users_groups_and_tokens() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    let (token, _) = w.api_token("alice")?;
    let grant_user = |name: &str| User::new(user(name));
    for who in ["amy", "pat"] {
        macro_rules! universal_only {
            ($op:expr) => {{
                let before = w.state()?;
                let c = ctx(&w, &admin, who, None).await?;
                refused(&w, &before, ($op)(c).await, "universal_admin_required");
            }};
        }
        universal_only!(|c| {
            let admin = &admin;
            async move { admin.create_account(&c, new_account("333333333333")).await }
        });
        universal_only!(|c| {
            let admin = &admin;
            async move { admin.delete_account(&c, &account_id(A), None, true).await }
        });
        universal_only!(|c| {
            let admin = &admin;
            async move { admin.create_user(&c, grant_user("zed")).await }
        });
        universal_only!(|c| {
            let admin = &admin;
            async move { admin.update_user(&c, grant_user("alice"), Some(1)).await }
        });
        universal_only!(|c| {
            let admin = &admin;
            async move { admin.delete_user(&c, &user("alice"), None, true).await }
        });
        universal_only!(|c| {
            let admin = &admin;
            async move { admin.reset_totp(&c, &user("alice")).await }
        });
        universal_only!(|c| {
            let admin = &admin;
            async move {
                admin
                    .create_group(
                        &c,
                        Group {
                            name: group("new"),
                            description: None,
                        },
                    )
                    .await
            }
        });
        universal_only!(|c| {
            let admin = &admin;
            async move {
                admin
                    .delete_group(&c, &group("payments-admins"), None, true)
                    .await
            }
        });
        universal_only!(|c| {
            let admin = &admin;
            async move {
                admin
                    .add_member(&c, &group("payments-admins"), &user("amy"))
                    .await
            }
        });
        universal_only!(|c| {
            let admin = &admin;
            async move {
                admin
                    .remove_member(&c, &group("payments-admins"), &user("pat"))
                    .await
            }
        });
        universal_only!(|c| {
            let admin = &admin;
            async move { admin.tokens(&c, &user("alice")).await }
        });
        universal_only!(|c| {
            let admin = &admin;
            async move { admin.issue_token(&c, &user("alice"), None, None).await }
        });
        universal_only!(|c| {
            let admin = &admin;
            let id = token.id().clone();
            async move { admin.revoke_token(&c, &id).await }
        });
        universal_only!(|c| {
            let admin = &admin;
            async move { admin.admin_grants(&c, None).await }
        });
    }

    // The universal admin may.
    let c = ctx(&w, &admin, "root", None).await?;
    admin.create_user(&c, grant_user("zed")).await?;
    let record = last_record(&w);
    assert_eq!(record.event, AuditEvent::AdminChange);
    assert_eq!(record.resource.as_deref(), Some("user:zed"));
    assert_eq!(record.action.as_deref(), Some("create"));
    assert_eq!(w.state()?.users[&user("zed")].version, 1);
    Ok(())
}

#[tokio::test]
async fn an_account_admin_works_within_their_accounts_only() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    for who in ["amy", "pat"] {
        let c = ctx(&w, &admin, who, None).await?;
        let listed = admin.accounts(&c, &PageRequest::first(50)).await?;
        let ids: Vec<&str> = listed.items.iter().map(|a| a.value.id.as_str()).collect();
        assert_eq!(ids, [A], "{who} sees only their account");
        admin
            .account(&ctx(&w, &admin, who, None).await?, &account_id(A))
            .await?;
        admin
            .targets(
                &ctx(&w, &admin, who, None).await?,
                &account_id(A),
                &PageRequest::first(50),
            )
            .await?;
        admin
            .target(&ctx(&w, &admin, who, None).await?, &target("a-ro"))
            .await?;
        admin
            .grants_in(
                &ctx(&w, &admin, who, None).await?,
                &account_id(A),
                &PageRequest::first(50),
            )
            .await?;
        admin
            .admin_grants(&ctx(&w, &admin, who, None).await?, Some(&account_id(A)))
            .await?;

        macro_rules! out_of_scope {
            ($op:expr) => {{
                let before = w.state()?;
                let c = ctx(&w, &admin, who, None).await?;
                refused(&w, &before, ($op)(c).await, "out_of_scope");
            }};
        }
        out_of_scope!(|c| {
            let admin = &admin;
            async move { admin.account(&c, &account_id(B)).await }
        });
        out_of_scope!(|c| {
            let admin = &admin;
            async move {
                let mut b = new_account(B);
                b.name = AccountName::parse("renamed").unwrap();
                admin.update_account(&c, b, Some(1)).await
            }
        });
        out_of_scope!(|c| {
            let admin = &admin;
            async move {
                admin
                    .targets(&c, &account_id(B), &PageRequest::first(50))
                    .await
            }
        });
        out_of_scope!(|c| {
            let admin = &admin;
            async move { admin.target(&c, &target("b-ro")).await }
        });
        out_of_scope!(|c| {
            let admin = &admin;
            async move { admin.create_target(&c, role_spec("b-new", B, 10)).await }
        });
        out_of_scope!(|c| {
            let admin = &admin;
            async move {
                admin
                    .update_target(&c, role_spec("b-ro", B, 20), Some(1))
                    .await
            }
        });
        out_of_scope!(|c| {
            let admin = &admin;
            async move { admin.delete_target(&c, &target("b-ro"), None, true).await }
        });
        out_of_scope!(|c| {
            let admin = &admin;
            async move {
                admin
                    .grants_in(&c, &account_id(B), &PageRequest::first(50))
                    .await
            }
        });
        out_of_scope!(|c| {
            let admin = &admin;
            async move { admin.create_grant(&c, cascade("alice", B, 10)).await }
        });
        out_of_scope!(|c| {
            let admin = &admin;
            async move {
                admin
                    .create_grant(
                        &c,
                        Grant {
                            principal: as_user("alice"),
                            scope: GrantScope::Target(target("b-top")),
                            expires_at: None,
                            via: None,
                        },
                    )
                    .await
            }
        });
        out_of_scope!(|c| {
            let admin = &admin;
            async move {
                admin
                    .delete_grant(
                        &c,
                        GrantKey {
                            principal: as_user("alice"),
                            on: GrantOn::Target(target("b-ro")),
                        },
                    )
                    .await
            }
        });
        out_of_scope!(|c| {
            let admin = &admin;
            async move { admin.admin_grants(&c, Some(&account_id(B))).await }
        });
        out_of_scope!(|c| {
            let admin = &admin;
            async move {
                admin
                    .audit_search(
                        &c,
                        &AuditQuery::Account(account_id(B)),
                        &PageRequest::first(50),
                        false,
                    )
                    .await
            }
        });
    }

    // Within their account, amy changes things.
    let c = ctx(&w, &admin, "amy", None).await?;
    admin.create_target(&c, role_spec("a-new", A, 20)).await?;
    let c = ctx(&w, &admin, "amy", None).await?;
    admin.create_grant(&c, cascade("alice", A, 20)).await?;
    let c = ctx(&w, &admin, "amy", None).await?;
    let mut renamed = new_account(A);
    renamed.name = AccountName::parse("payments")?;
    let updated = admin.update_account(&c, renamed, Some(1)).await?;
    assert_eq!(updated.version, 2);
    assert_eq!(
        w.state()?.accounts[&account_id(A)].value.name.as_str(),
        "payments"
    );
    Ok(())
}

#[tokio::test]
async fn a_principals_grants_are_shown_as_far_as_the_scope_reaches() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    let shown = |who: &'static str| {
        let (w, admin) = (&w, &admin);
        async move {
            let c = ctx(w, admin, who, None).await.unwrap();
            admin.grants_of(&c, &as_user("alice")).await.unwrap().len()
        }
    };
    assert_eq!(shown("root").await, 2);
    assert_eq!(shown("amy").await, 1);
    Ok(())
}

#[tokio::test]
async fn no_admin_is_made_wider_than_its_maker() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    for account in [None, Some(B)] {
        let before = w.state()?;
        let c = ctx(&w, &admin, "amy", Some(w.code("amy")?)).await?;
        let wider = AdminGrant {
            principal: as_user("alice"),
            account: account.map(account_id),
        };
        refused(
            &w,
            &before,
            admin.create_admin_grant(&c, wider).await,
            "wider_admin",
        );
    }
    let before = w.state()?;
    let c = ctx(&w, &admin, "amy", Some(w.code("amy")?)).await?;
    let root = AdminGrant {
        principal: as_user("root"),
        account: None,
    };
    refused(
        &w,
        &before,
        admin.delete_admin_grant(&c, root).await,
        "wider_admin",
    );

    // Within their own scope they may, with a fresh code.
    let c = ctx(&w, &admin, "amy", Some(w.code("amy")?)).await?;
    let same = AdminGrant {
        principal: as_user("alice"),
        account: Some(account_id(A)),
    };
    admin.create_admin_grant(&c, same.clone()).await?;
    assert!(w.state()?.admin_grants.contains(&same));
    Ok(())
}

fn seed_record(w: &MemoryWorld, actor: &str, account: Option<&str>, key: &str) {
    let mut record = AuditRecord::new(
        &w.meta(),
        w.now(),
        AuditEvent::CredentialsIssued,
        actor,
        "jwt",
    );
    record.account = account.map(account_id);
    record.access_key_id = Some(key.to_owned());
    w.store.seed(|s| s.audit.push(record)).unwrap();
    w.clock.advance(time::Duration::seconds(1));
}

#[tokio::test]
async fn the_audit_trail_is_searched_as_far_as_the_scope_reaches() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    seed_record(&w, "alice", Some(A), "ASIAKEYINACCOUNTA001");
    seed_record(&w, "alice", Some(B), "ASIAKEYINACCOUNTB001");
    seed_record(&w, "alice", None, "ASIAKEYNOACCOUNT0001");
    let search = |who: &'static str, query: AuditQuery| {
        let (w, admin) = (&w, &admin);
        async move {
            let c = ctx(w, admin, who, None).await.unwrap();
            admin
                .audit_search(&c, &query, &PageRequest::first(50), false)
                .await
                .unwrap()
                .items
                .into_iter()
                .filter_map(|r| r.access_key_id)
                .collect::<Vec<_>>()
        }
    };
    let by_actor = || AuditQuery::Actor("alice".into());
    assert_eq!(
        search("root", by_actor()).await,
        [
            "ASIAKEYINACCOUNTA001",
            "ASIAKEYINACCOUNTB001",
            "ASIAKEYNOACCOUNT0001"
        ]
    );
    assert_eq!(search("amy", by_actor()).await, ["ASIAKEYINACCOUNTA001"]);
    assert!(
        search("amy", AuditQuery::AccessKey("ASIAKEYINACCOUNTB001".into()))
            .await
            .is_empty(),
        "who holds a key of another account is not an account admin's business"
    );
    assert_eq!(
        search("amy", AuditQuery::Account(account_id(A))).await,
        ["ASIAKEYINACCOUNTA001"]
    );
    Ok(())
}

#[tokio::test]
async fn an_operator_is_universal_needs_no_code_and_is_recorded_as_the_operator() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    let c = admin.operator("arn:aws:iam::999999999999:user/ops".into(), w.meta());
    admin.delete_account(&c, &account_id(B), None, true).await?;
    let record = last_record(&w);
    assert_eq!(record.actor, "operator");
    assert_eq!(record.auth, "aws:arn:aws:iam::999999999999:user/ops");
    assert!(!w.state()?.accounts.contains_key(&account_id(B)));
    Ok(())
}

#[tokio::test]
async fn a_change_is_recorded_with_its_state_before_and_after() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    let c = ctx(&w, &admin, "root", Some(w.code("root")?)).await?;
    let target_spec = TargetSpec {
        kind: KindSpec::FederatedUser {
            sealed_keys: Some(w.vault.seal_federation_keys(
                &cooper_core::model::FederationKeys::parse("AKIAEXAMPLEEXAMPLE12|s3cr3t")?,
                &cooper_core::ports::FederationBinding {
                    account: cooper_core::names::AccountId::parse(A)?,
                    target: cooper_core::names::TargetName::parse("a-fed")?,
                },
            )?),
            session_policy: cooper_core::names::SessionPolicy::parse(r#"{"Statement":[]}"#)?,
        },
        ..role_spec("a-fed", A, 10)
    };
    admin.create_target(&c, target_spec).await?;
    let record = last_record(&w);
    assert_eq!(record.resource.as_deref(), Some("target:a-fed"));
    assert_eq!(record.account.as_ref().map(|a| a.as_str()), Some(A));
    assert_eq!(record.after.as_ref().unwrap()["sealed_keys"], "(sealed)");
    assert!(record.before.is_none());

    let c = ctx(&w, &admin, "root", None).await?;
    let mut renamed = new_account(A);
    renamed.name = AccountName::parse("payments")?;
    admin.update_account(&c, renamed, Some(1)).await?;
    let record = last_record(&w);
    assert_eq!(
        record.before.as_ref().unwrap()["name"],
        "account 111111111111"
    );
    assert_eq!(record.after.as_ref().unwrap()["name"], "payments");
    Ok(())
}

#[tokio::test]
async fn versions_guard_against_lost_updates() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    let before = w.state()?;
    let c = ctx(&w, &admin, "root", None).await?;
    let err = admin
        .update_user(&c, User::new(user("alice")), None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "precondition_required");
    let c = ctx(&w, &admin, "root", None).await?;
    let err = admin
        .update_user(&c, User::new(user("alice")), Some(7))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "version_conflict");
    nothing_changed(&w, &before);
    Ok(())
}

#[tokio::test]
async fn creating_what_exists_or_naming_what_does_not_changes_nothing() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    let before = w.state()?;
    let c = ctx(&w, &admin, "root", None).await?;
    let err = admin.create_account(&c, new_account(A)).await.unwrap_err();
    assert_eq!(err.code(), "already_exists");
    let c = ctx(&w, &admin, "root", None).await?;
    let err = admin
        .create_grant(&c, cascade("ghost", A, 10))
        .await
        .unwrap_err();
    assert!(matches!(err, AdminError::NotFound(_)), "{err}");
    // Joining an admin group is as good as an admin grant: it takes a fresh code.
    let c = ctx(&w, &admin, "root", Some(w.code("root")?)).await?;
    let err = admin
        .add_member(&c, &group("payments-admins"), &user("pat"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "already_exists");
    nothing_changed(&w, &before);
    Ok(())
}

#[tokio::test]
async fn deleting_an_account_takes_what_depends_on_it_only_when_asked() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    let c = ctx(&w, &admin, "root", Some(w.code("root")?)).await?;
    let before = w.state()?;
    let err = admin
        .delete_account(&c, &account_id(B), None, false)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "in_use");
    nothing_changed(&w, &before);

    w.clock.advance(time::Duration::seconds(30));
    let c = ctx(&w, &admin, "root", Some(w.code("root")?)).await?;
    let removed = admin.delete_account(&c, &account_id(B), None, true).await?;
    assert_eq!(removed.cascaded.len(), 3, "{:?}", removed.cascaded);
    let s = w.state()?;
    assert!(!s.accounts.contains_key(&account_id(B)));
    assert!(s.targets.values().all(|t| t.value.account != account_id(B)));
    assert!(s.grants.values().all(|g| g.account != account_id(B)));
    let changes = records(&w, AuditEvent::AdminChange);
    assert_eq!(changes.len(), 1, "one change, one record");
    // The record says what went with it.
    let after = changes[0].after.clone().expect("what was cascaded");
    let cascaded: Vec<&str> = after["cascaded"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(cascaded, removed.cascaded);
    Ok(())
}

#[tokio::test]
async fn deleting_a_user_takes_their_tokens_and_factors() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    w.enroll_totp("alice")?;
    w.api_token("alice")?;
    let c = ctx(&w, &admin, "root", None).await?;
    admin.delete_user(&c, &user("alice"), None, true).await?;
    let s = w.state()?;
    assert!(!s.users.contains_key(&user("alice")));
    assert!(s.tokens.is_empty());
    assert!(!s.factors.contains_key(&user("alice")));
    assert!(
        s.grants
            .values()
            .all(|g| g.grant.principal != as_user("alice"))
    );
    Ok(())
}

#[tokio::test]
async fn an_issued_token_is_stored_as_a_hash_and_revoked_at_once() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    let c = ctx(&w, &admin, "root", None).await?;
    let (token, record) = admin
        .issue_token(&c, &user("alice"), None, Some(30))
        .await?;
    let stored = w.state()?.tokens[token.id()].clone();
    assert_eq!(stored, record);
    let audit = serde_json::to_string(&last_record(&w))?;
    use secrecy::ExposeSecret;
    assert!(
        !audit.contains(&token.reveal().expose_secret()[24..]),
        "no secret in the record"
    );

    let c = ctx(&w, &admin, "root", None).await?;
    admin.revoke_token(&c, token.id()).await?;
    assert!(w.state()?.tokens[token.id()].revoked);
    Ok(())
}

/// A token carries its user's groups at issue as a hint for the decision's early reads, when
/// they are few enough to read one by one; past that, none.
#[tokio::test]
async fn an_issued_token_hints_its_users_few_groups() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    w.group("ops")?;
    w.member("alice", "ops")?;
    let c = ctx(&w, &admin, "root", None).await?;
    let (_, record) = admin.issue_token(&c, &user("alice"), None, None).await?;
    assert_eq!(
        record.groups,
        [cooper_core::names::GroupName::parse("ops")?]
    );
    for n in 0..cooper_core::catalog::READ_AHEAD_QUERIES {
        let name = format!("team-{n}");
        w.group(&name)?;
        w.member("alice", &name)?;
    }
    let c = ctx(&w, &admin, "root", None).await?;
    let (token, record) = admin.issue_token(&c, &user("alice"), None, None).await?;
    assert!(record.groups.is_empty(), "{:?}", record.groups);
    assert_eq!(w.state()?.tokens[token.id()], record);
    Ok(())
}

#[tokio::test]
async fn an_approver_named_twice_is_not_a_failure_of_the_audit() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    let c = ctx(&w, &admin, "root", None).await?;
    let spec = TargetSpec {
        approvers: vec![as_user("alice"), as_user("alice")],
        ..role_spec("a-twice", A, 10)
    };
    let result = admin.create_target(&c, spec).await;
    assert!(
        !matches!(result, Err(AdminError::AuditUnavailable(_))),
        "either created (the list deduplicated) or refused as invalid: {result:?}"
    );
    Ok(())
}

#[tokio::test]
async fn an_admin_may_reset_their_own_authenticator_with_a_fresh_code() -> TestResult {
    let w = admin_world();
    let mut config = config();
    config.sensitive.insert(Sensitive::ResetTotp);
    let admin = w.admin(config);
    let c = ctx(&w, &admin, "root", Some(w.code("root")?)).await?;
    admin.reset_totp(&c, &user("root")).await?;
    assert!(w.factors_of("root")?.totp.is_none());
    Ok(())
}

#[tokio::test]
async fn a_grant_of_an_unknown_target_is_not_found_for_a_universal_admin_and_out_of_scope_for_others()
-> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    let of_ghost = Grant {
        principal: as_user("alice"),
        scope: GrantScope::Target(target("ghost")),
        expires_at: None,
        via: None,
    };
    let key = GrantKey {
        principal: as_user("alice"),
        on: GrantOn::Target(target("ghost")),
    };
    // An account admin hears of a target that does not exist what they hear of one in another
    // account; a universal admin, who may see everything, is told it does not exist.
    for (who, code) in [("amy", "out_of_scope"), ("root", "not_found")] {
        let before = w.state()?;
        let c = ctx(&w, &admin, who, Some(w.code(who)?)).await?;
        let err = admin.create_grant(&c, of_ghost.clone()).await.unwrap_err();
        assert_eq!(err.code(), code, "{who} creates: {err}");
        nothing_changed(&w, &before);
        w.clock.advance(time::Duration::seconds(30));
        let c = ctx(&w, &admin, who, Some(w.code(who)?)).await?;
        let err = admin.delete_grant(&c, key.clone()).await.unwrap_err();
        assert_eq!(err.code(), code, "{who} deletes: {err}");
        nothing_changed(&w, &before);
        w.clock.advance(time::Duration::seconds(30));
    }
    Ok(())
}

#[tokio::test]
async fn an_enrollment_code_names_its_issuer_and_lasts_at_most_two_weeks() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    let longest = 14 * 24;
    let c = ctx(&w, &admin, "root", Some(w.code("root")?)).await?;
    let before = w.state()?;
    let err = admin
        .issue_enrollment_code(&c, &user("alice"), Some(longest + 1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_request", "{err}");
    nothing_changed(&w, &before);

    w.clock.advance(time::Duration::seconds(30));
    let c = ctx(&w, &admin, "root", Some(w.code("root")?)).await?;
    let (_, record) = admin
        .issue_enrollment_code(&c, &user("alice"), Some(longest))
        .await?;
    assert_eq!(record.issued_by, Some(user("root")));
    assert_eq!(record.expires_at, w.now() + time::Duration::hours(longest));
    Ok(())
}

#[tokio::test]
async fn a_grant_is_recorded_by_what_it_gives() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    let c = ctx(&w, &admin, "amy", None).await?;
    admin.create_grant(&c, cascade("alice", A, 20)).await?;
    let after = last_record(&w).after.expect("the grant as written");
    assert_eq!(after["principal"], serde_json::json!({"user": "alice"}));
    assert_eq!(after["account"], A);
    assert_eq!(after["max_level"], 20);
    Ok(())
}
