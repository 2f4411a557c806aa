//! Step-up: sensitive admin operations need a fresh code from the admin, whose claim is
//! committed with the change (spent with it, and only with it).

use cooper_core::admin::{AdminError, KindSpec, Sensitive, TargetSpec};
use cooper_core::factors::FactorError;
use cooper_core::memory::MemoryWorld;
use cooper_core::model::{AdminGrant, FederationKeys, Grant, GrantScope};
use cooper_core::names::{AccountId, Level, RoleArn, SessionPolicy};
use cooper_core::totp::step_of;

use crate::admin::{admin_world, config, ctx, refused};
use crate::given::*;

fn top_grant(principal: &str) -> Grant {
    Grant {
        principal: as_user(principal),
        scope: GrantScope::Account {
            account: AccountId::parse(A).unwrap(),
            max_level: Level::new(100).unwrap(),
        },
        expires_at: None,
        via: None,
    }
}

fn federated_spec(w: &MemoryWorld, name: &str) -> TargetSpec {
    TargetSpec {
        name: target(name),
        account: AccountId::parse(A).unwrap(),
        level: Level::new(10).unwrap(),
        kind: KindSpec::FederatedUser {
            sealed_keys: Some(
                w.vault
                    .seal_federation_keys(
                        &FederationKeys::parse("AKIAEXAMPLEEXAMPLE12|s3cr3t").unwrap(),
                        &cooper_core::ports::FederationBinding {
                            account: AccountId::parse(A).unwrap(),
                            target: target(name),
                        },
                    )
                    .unwrap(),
            ),
            session_policy: SessionPolicy::parse(r#"{"Statement":[]}"#).unwrap(),
        },
        max_duration_seconds: None,
        high_security: false,
        description: None,
        approvers: Vec::new(),
        access_requests: None,
        session_tags: Default::default(),
    }
}

fn last_step(w: &MemoryWorld, who: &str) -> u64 {
    w.factors_of(who).unwrap().totp.unwrap().last_step
}

#[tokio::test]
async fn each_default_sensitive_operation_needs_a_fresh_code() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    let before = w.state()?;
    let c = ctx(&w, &admin, "amy", None).await?;
    refused(
        &w,
        &before,
        admin.create_grant(&c, top_grant("alice")).await,
        "totp_required",
    );

    let c = ctx(&w, &admin, "amy", None).await?;
    let same = AdminGrant {
        principal: as_user("alice"),
        account: Some(AccountId::parse(A)?),
    };
    refused(
        &w,
        &before,
        admin.create_admin_grant(&c, same.clone()).await,
        "totp_required",
    );

    let c = ctx(&w, &admin, "amy", None).await?;
    refused(
        &w,
        &before,
        admin.create_target(&c, federated_spec(&w, "a-fed")).await,
        "totp_required",
    );

    let c = ctx(&w, &admin, "root", None).await?;
    refused(
        &w,
        &before,
        admin
            .delete_account(&c, &AccountId::parse(B)?, None, true)
            .await,
        "totp_required",
    );
    assert!(
        matches!(
            admin
                .create_admin_grant(&ctx(&w, &admin, "amy", None).await?, same)
                .await,
            Err(AdminError::TotpRequired("admin_scope"))
        ),
        "the error names the operation"
    );
    Ok(())
}

#[tokio::test]
async fn a_grant_below_the_accounts_top_level_needs_no_code() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    let mut below = top_grant("alice");
    below.scope = GrantScope::Account {
        account: AccountId::parse(A)?,
        max_level: Level::new(99)?,
    };
    admin
        .create_grant(&ctx(&w, &admin, "amy", None).await?, below)
        .await?;

    // A grant of a target below the top is below it too.
    let of_low = Grant {
        principal: as_user("nobody"),
        scope: GrantScope::Target(target("a-ro")),
        expires_at: None,
        via: None,
    };
    admin
        .create_grant(&ctx(&w, &admin, "amy", None).await?, of_low)
        .await?;

    // A grant of the top target is a top-level grant; in an account without targets any is.
    let before = w.state()?;
    let of_top = Grant {
        principal: as_user("alice"),
        scope: GrantScope::Target(target("a-top")),
        expires_at: None,
        via: None,
    };
    let c = ctx(&w, &admin, "amy", None).await?;
    refused(
        &w,
        &before,
        admin.create_grant(&c, of_top).await,
        "totp_required",
    );
    w.account("333333333333")?;
    let mut empty = top_grant("alice");
    empty.scope = GrantScope::Account {
        account: AccountId::parse("333333333333")?,
        max_level: Level::new(0)?,
    };
    let c = ctx(&w, &admin, "root", None).await?;
    let before = w.state()?;
    refused(
        &w,
        &before,
        admin.create_grant(&c, empty).await,
        "totp_required",
    );
    Ok(())
}

#[tokio::test]
async fn operations_made_sensitive_by_configuration_need_a_code_too() -> TestResult {
    let w = admin_world();
    let mut config = config();
    config.sensitive.extend([
        Sensitive::DeleteUser,
        Sensitive::ResetTotp,
        Sensitive::IssueToken,
    ]);
    let admin = w.admin(config);
    let before = w.state()?;
    let c = ctx(&w, &admin, "root", None).await?;
    refused(
        &w,
        &before,
        admin.delete_user(&c, &user("alice"), None, true).await,
        "totp_required",
    );
    let c = ctx(&w, &admin, "root", None).await?;
    refused(
        &w,
        &before,
        admin.reset_totp(&c, &user("amy")).await,
        "totp_required",
    );
    let c = ctx(&w, &admin, "root", None).await?;
    refused(
        &w,
        &before,
        admin.issue_token(&c, &user("alice"), None, None).await,
        "totp_required",
    );

    let c = ctx(&w, &admin, "root", Some(w.code("root")?)).await?;
    admin.reset_totp(&c, &user("amy")).await?;
    assert!(w.factors_of("amy")?.totp.is_none());
    Ok(())
}

#[tokio::test]
async fn the_code_is_spent_with_the_change_and_good_for_nothing_after() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    let code = w.code("amy")?;
    let c = ctx(&w, &admin, "amy", Some(code.clone())).await?;
    admin.create_grant(&c, top_grant("alice")).await?;
    assert_eq!(last_step(&w, "amy"), step_of(w.now()));

    let before = w.state()?;
    let c = ctx(&w, &admin, "amy", Some(code)).await?;
    let result = admin.create_grant(&c, top_grant("nobody")).await;
    assert!(
        matches!(result, Err(AdminError::Factor(FactorError::Replayed))),
        "{result:?}"
    );
    refused(&w, &before, result, "totp_replayed");
    Ok(())
}

#[tokio::test]
async fn a_wrong_code_is_refused_recorded_and_counted() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    let before = w.state()?;
    let c = ctx(&w, &admin, "amy", Some(w.wrong_code("amy")?)).await?;
    let result = admin.create_grant(&c, top_grant("alice")).await;
    assert_eq!(w.factors_of("amy")?.guard.unwrap().failures, 1);
    // The failure count is the one change a wrong code makes.
    w.store.seed(|s| {
        if let Some(f) = s.factors.get_mut(&user("amy")) {
            f.guard = None;
        }
    })?;
    refused(&w, &before, result, "totp_invalid");
    Ok(())
}

#[tokio::test]
async fn when_the_change_is_not_written_the_code_is_not_spent() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    let code = w.code("amy")?;
    let unspent = last_step(&w, "amy");

    // The ledger fails.
    w.store.fail_next_commits(1)?;
    let c = ctx(&w, &admin, "amy", Some(code.clone())).await?;
    let err = admin
        .create_grant(&c, top_grant("alice"))
        .await
        .unwrap_err();
    assert!(matches!(err, AdminError::AuditUnavailable(_)), "{err}");
    assert_eq!(last_step(&w, "amy"), unspent);

    // The change conflicts (the grant exists already).
    w.grant_account(as_user("nobody"), A, 100)?;
    let c = ctx(&w, &admin, "amy", Some(code.clone())).await?;
    let err = admin
        .create_grant(&c, top_grant("nobody"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "already_exists");
    assert_eq!(last_step(&w, "amy"), unspent);

    // The same code then does what it was for.
    let c = ctx(&w, &admin, "amy", Some(code)).await?;
    admin.create_grant(&c, top_grant("alice")).await?;
    assert_eq!(last_step(&w, "amy"), step_of(w.now()));
    Ok(())
}

#[tokio::test]
async fn an_update_that_sets_new_federation_keys_needs_a_code() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    let c = ctx(&w, &admin, "amy", Some(w.code("amy")?)).await?;
    admin.create_target(&c, federated_spec(&w, "a-fed")).await?;

    // Keys left out are kept, and need no code.
    let mut keep = federated_spec(&w, "a-fed");
    keep.kind = KindSpec::FederatedUser {
        sealed_keys: None,
        session_policy: SessionPolicy::parse(r#"{"Statement":[]}"#)?,
    };
    admin
        .update_target(&ctx(&w, &admin, "amy", None).await?, keep, Some(1))
        .await?;

    let before = w.state()?;
    let c = ctx(&w, &admin, "amy", None).await?;
    refused(
        &w,
        &before,
        admin
            .update_target(&c, federated_spec(&w, "a-fed"), Some(2))
            .await,
        "totp_required",
    );
    Ok(())
}

#[tokio::test]
async fn weakening_a_targets_protection_needs_the_code_that_granting_it_would() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    let mut prod = w.state()?.targets[&target("a-top")].value.clone();
    prod.high_security = true;
    prod.approvers = vec![as_user("root")];
    w.put_target(prod)?;
    // alice may become A's targets up to level 50 (a grant that needed no code).
    w.grant_account(as_user("alice"), A, 50)?;
    let before = w.state()?;
    let weakened = TargetSpec {
        name: target("a-top"),
        account: AccountId::parse(A)?,
        level: Level::new(50)?,
        kind: KindSpec::Role {
            role_arn: RoleArn::parse("arn:aws:iam::111111111111:role/a-top")?,
            external_id: None,
        },
        max_duration_seconds: None,
        high_security: false,
        description: None,
        approvers: Vec::new(),
        access_requests: None,
        session_tags: Default::default(),
    };
    let c = ctx(&w, &admin, "amy", None).await?;
    refused(
        &w,
        &before,
        admin.update_target(&c, weakened, Some(1)).await,
        "totp_required",
    );
    Ok(())
}

#[tokio::test]
async fn joining_a_group_that_administers_needs_the_code_an_admin_grant_would() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    let ops = w.group("ops")?;
    w.admin_grant(as_group("ops"), None)?;
    let before = w.state()?;
    let c = ctx(&w, &admin, "root", None).await?;
    refused(
        &w,
        &before,
        admin.add_member(&c, &ops.name, &user("alice")).await,
        "totp_required",
    );
    Ok(())
}

#[tokio::test]
async fn a_code_used_by_another_request_meanwhile_is_told_as_a_replay() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    let c = ctx(&w, &admin, "amy", Some(w.code("amy")?)).await?;
    // Between the check of amy's code and the write, another request of hers spends it.
    let step = step_of(w.now());
    w.store.before_next_commit(move |s| {
        if let Some(t) = s
            .factors
            .get_mut(&user("amy"))
            .and_then(|f| f.totp.as_mut())
        {
            t.last_step = step;
        }
    })?;
    let err = admin
        .create_grant(&c, top_grant("alice"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "totp_replayed", "{err}");
    assert!(
        !w.state()?
            .grants
            .values()
            .any(|g| g.grant == top_grant("alice")),
        "nothing granted"
    );
    Ok(())
}
