//! Who reaches an account's top: granting the top level takes a fresh code, and so does every
//! other change that ends with someone reaching a target at the top they did not reach before
//! (a target made or lowered where a cascade reaches it, a member added to a group holding a
//! top grant). Account A holds `a-ro` (10) and `a-top` (100); amy administers A, root all.

use cooper_core::memory::MemoryWorld;
use cooper_core::model::{Grant, GrantScope};
use cooper_core::names::{AccountId, Level};
use time::OffsetDateTime;

use crate::admin::{admin_world, config, ctx, refused, role_spec};
use crate::given::*;

/// A cascade of `who` over account A up to `level`, ending at `until` (never: `None`).
fn cascade(w: &MemoryWorld, who: &str, level: u32, until: Option<OffsetDateTime>) -> TestResult {
    w.put_grant(Grant {
        principal: as_user(who),
        scope: GrantScope::Account {
            account: AccountId::parse(A)?,
            max_level: Level::new(level)?,
        },
        expires_at: until,
        via: None,
    })?;
    Ok(())
}

#[tokio::test]
async fn a_new_target_at_the_top_a_cascade_reaches_needs_a_code_and_one_below_does_not()
-> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    cascade(&w, "alice", 100, None)?;
    let before = w.state()?;
    let c = ctx(&w, &admin, "amy", None).await?;
    let made = admin.create_target(&c, role_spec("a-new", A, 100)).await;
    refused(&w, &before, made, "totp_required");

    let c = ctx(&w, &admin, "amy", None).await?;
    admin.create_target(&c, role_spec("a-mid", A, 50)).await?;
    let c = ctx(&w, &admin, "amy", Some(w.code("amy")?)).await?;
    admin.create_target(&c, role_spec("a-new", A, 100)).await?;
    Ok(())
}

#[tokio::test]
async fn a_new_top_above_every_live_cascade_needs_no_code() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    cascade(&w, "alice", 100, None)?;
    // nobody's cascade over everything ends this very instant: it reaches nothing now.
    cascade(&w, "nobody", 1000, Some(w.now()))?;
    let c = ctx(&w, &admin, "amy", None).await?;
    admin.create_target(&c, role_spec("a-150", A, 150)).await?;
    Ok(())
}

#[tokio::test]
async fn lowering_a_target_to_where_a_cascade_first_reaches_it_at_the_top_needs_a_code()
-> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    w.role_target("a-x", A, 150)?;
    cascade(&w, "alice", 120, None)?;
    // 150 -> 120: alice's cascade reaches it now, and it stays the account's top.
    let before = w.state()?;
    let c = ctx(&w, &admin, "amy", None).await?;
    let lowered = admin
        .update_target(&c, role_spec("a-x", A, 120), Some(1))
        .await;
    refused(&w, &before, lowered, "totp_required");
    // Raising it gives no one anything new.
    let c = ctx(&w, &admin, "amy", None).await?;
    admin
        .update_target(&c, role_spec("a-x", A, 160), Some(1))
        .await?;
    Ok(())
}

#[tokio::test]
async fn lowering_a_target_a_cascade_already_reached_needs_no_code() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    w.role_target("a-x", A, 150)?;
    // alice reached a-x at 150 already (her cascade goes exactly that far).
    cascade(&w, "alice", 150, None)?;
    let c = ctx(&w, &admin, "amy", None).await?;
    admin
        .update_target(&c, role_spec("a-x", A, 120), Some(1))
        .await?;
    Ok(())
}

#[tokio::test]
async fn lowering_a_target_below_another_at_the_top_needs_no_code() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    w.role_target("a-x", A, 150)?;
    cascade(&w, "alice", 90, None)?;
    // 150 -> 80: alice reaches it now, but a-top (100) is the top, out of her reach.
    let c = ctx(&w, &admin, "amy", None).await?;
    admin
        .update_target(&c, role_spec("a-x", A, 80), Some(1))
        .await?;
    Ok(())
}

#[tokio::test]
async fn joining_a_group_whose_grant_reaches_the_top_needs_a_code() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    let grant = |group: &str, scope: GrantScope, until: Option<OffsetDateTime>| Grant {
        principal: as_group(group),
        scope,
        expires_at: until,
        via: None,
    };
    let over_a = |level: u32| GrantScope::Account {
        account: AccountId::parse(A).unwrap(),
        max_level: Level::new(level).unwrap(),
    };
    let now = w.now();
    for (group, scope, until, at_top) in [
        ("tops", over_a(100), None, true),
        ("highs", over_a(1000), None, true),
        ("lows", over_a(99), None, false),
        ("ended", over_a(100), Some(now), false),
        (
            "ending",
            over_a(100),
            Some(now + time::Duration::hours(1)),
            true,
        ),
        (
            "top-target",
            GrantScope::Target(target("a-top")),
            None,
            true,
        ),
        (
            "low-target",
            GrantScope::Target(target("a-ro")),
            None,
            false,
        ),
    ] {
        let g = w.group(group)?;
        w.put_grant(grant(group, scope, until))?;
        let before = w.state()?;
        let c = ctx(&w, &admin, "root", None).await?;
        let added = admin.add_member(&c, &g.name, &user("alice")).await;
        if at_top {
            refused(&w, &before, added, "totp_required");
        } else {
            added.map_err(|e| format!("{group}: {e}"))?;
        }
    }
    Ok(())
}
