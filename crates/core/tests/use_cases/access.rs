//! The access decision: deny by default, who is admitted, and which grants cover which targets.

use cooper_core::access::{AuthMethod, Denial, Identity};
use cooper_core::audit::AuditEvent;
use cooper_core::catalog::AccessError;
use cooper_core::issue::IssueError;
use cooper_core::memory::MemoryWorld;
use cooper_core::model::{Grant, GrantScope};
use cooper_core::names::Level;
use time::Duration;

use crate::given::*;

/// Account A: `a-read` (10), `a-power` (50), `a-admin` (100); account B: `b-read` (10).
/// alice, bob, carol are users; ops is a group.
fn cascade_world() -> MemoryWorld {
    let w = MemoryWorld::new();
    w.account(A).unwrap();
    w.account(B).unwrap();
    w.role_target("a-read", A, 10).unwrap();
    w.role_target("a-power", A, 50).unwrap();
    w.role_target("a-admin", A, 100).unwrap();
    w.role_target("b-read", B, 10).unwrap();
    for name in ["alice", "bob", "carol"] {
        w.user(name).unwrap();
    }
    w.group("ops").unwrap();
    w
}

async fn decide(w: &MemoryWorld, who: &str, target_name: &str) -> Result<(), Denial> {
    decide_with(&w.catalog(), w, who, target_name).await
}

#[tokio::test]
async fn without_a_grant_there_is_nothing() -> TestResult {
    let w = cascade_world();
    assert_eq!(decide(&w, "alice", "a-read").await, Err(Denial::NotGranted));

    let err = w
        .issuer()
        .issue(w.identity("alice")?, &ask("a-read"), &w.meta())
        .await
        .unwrap_err();
    assert!(
        matches!(err, IssueError::Denied(Denial::NotGranted)),
        "{err}"
    );
    assert!(w.broker.calls().is_empty(), "STS is not asked");
    let denied = last_record(&w);
    assert_eq!(denied.event, AuditEvent::CredentialsDenied);
    assert_eq!(denied.reason.as_deref(), Some("not_granted"));
    assert_eq!(denied.target, Some(target("a-read")));
    Ok(())
}

#[tokio::test]
async fn disabled_expired_and_unknown_users_are_refused_whatever_they_are_granted() -> TestResult {
    let w = cascade_world();
    let mut disabled = w.user("dora")?;
    disabled.enabled = false;
    w.put_user(disabled)?;
    let mut expired = w.user("eddy")?;
    expired.expires_at = Some(w.now());
    w.put_user(expired)?;
    for name in ["dora", "eddy", "ghost"] {
        w.grant_account(as_user(name), A, 1000)?;
    }

    assert_eq!(
        decide(&w, "dora", "a-read").await,
        Err(Denial::UserDisabled)
    );
    assert_eq!(decide(&w, "eddy", "a-read").await, Err(Denial::UserExpired));
    assert_eq!(
        decide(&w, "ghost", "a-read").await,
        Err(Denial::UnknownUser)
    );

    // An expiry still ahead admits the user until it passes.
    let mut later = w.user("fern")?;
    later.expires_at = Some(w.now() + Duration::minutes(5));
    w.put_user(later)?;
    w.grant_account(as_user("fern"), A, 10)?;
    assert_eq!(decide(&w, "fern", "a-read").await, Ok(()));
    w.clock.advance(Duration::minutes(5));
    assert_eq!(decide(&w, "fern", "a-read").await, Err(Denial::UserExpired));

    let err = w
        .issuer()
        .issue(w.identity("dora")?, &ask("a-read"), &w.meta())
        .await
        .unwrap_err();
    assert_eq!(
        last_record(&w).reason.as_deref(),
        Some("user_disabled"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn an_identity_providers_user_unknown_here_has_only_their_asserted_groups() -> TestResult {
    let w = cascade_world();
    let catalog = w.catalog();
    let err = catalog
        .authorize(oidc("newcomer", &[]), &target("a-read"))
        .await
        .unwrap_err();
    assert!(matches!(err, AccessError::Denied(Denial::NotGranted)));

    w.grant_account(as_group("ops"), A, 10)?;
    catalog
        .authorize(oidc("newcomer", &["ops"]), &target("a-read"))
        .await?;

    // A local user name with an API token but no record is unknown, not a newcomer.
    let scripted = Identity::new(
        user("newcomer"),
        AuthMethod::ApiToken(cooper_core::token::TokenId::parse("0123456789abcdef")?),
    );
    let err = catalog
        .authorize(scripted, &target("a-read"))
        .await
        .unwrap_err();
    assert!(matches!(err, AccessError::Denied(Denial::UnknownUser)));
    Ok(())
}

#[tokio::test]
async fn a_level_50_account_grant_covers_levels_10_and_50_of_that_account_only() -> TestResult {
    let w = cascade_world();
    w.grant_account(as_user("alice"), A, 50)?;
    assert_eq!(decide(&w, "alice", "a-read").await, Ok(()));
    assert_eq!(decide(&w, "alice", "a-power").await, Ok(()));
    assert_eq!(
        decide(&w, "alice", "a-admin").await,
        Err(Denial::NotGranted)
    );
    assert_eq!(decide(&w, "alice", "b-read").await, Err(Denial::NotGranted));

    let (_, reachable) = w.catalog().reachable(w.identity("alice")?).await?;
    let names: Vec<&str> = reachable.iter().map(|r| r.target.name.as_str()).collect();
    assert_eq!(names, ["a-power", "a-read"]);
    Ok(())
}

#[tokio::test]
async fn the_grant_that_gave_access_is_the_reason() -> TestResult {
    let w = cascade_world();
    w.grant_account(as_user("alice"), A, 50)?;
    w.grant_target(as_user("alice"), "a-read")?;
    let (_, _, grant) = w
        .catalog()
        .authorize(w.identity("alice")?, &target("a-read"))
        .await?;
    assert!(
        matches!(grant.scope, GrantScope::Target(_)),
        "a target grant says more precisely why than the cascade"
    );
    Ok(())
}

#[tokio::test]
async fn group_grants_count_for_members_only() -> TestResult {
    let w = cascade_world();
    w.grant_account(as_group("ops"), A, 50)?;
    w.member("alice", "ops")?;
    assert_eq!(decide(&w, "alice", "a-power").await, Ok(()));
    assert_eq!(decide(&w, "bob", "a-power").await, Err(Denial::NotGranted));
    assert_eq!(
        decide(&w, "alice", "a-admin").await,
        Err(Denial::NotGranted)
    );

    // A group grant of a target covers its target for members.
    w.group("dba")?;
    w.grant_target(as_group("dba"), "b-read")?;
    assert_eq!(decide(&w, "alice", "b-read").await, Err(Denial::NotGranted));
    w.member("alice", "dba")?;
    assert_eq!(decide(&w, "alice", "b-read").await, Ok(()));

    let (_, reachable) = w.catalog().reachable(w.identity("bob")?).await?;
    assert!(reachable.is_empty());
    // What alice may become, through her groups, and the accounts it lies in.
    let catalog = w.catalog();
    let (_, reachable) = catalog.reachable(w.identity("alice")?).await?;
    let names: Vec<&str> = reachable.iter().map(|r| r.target.name.as_str()).collect();
    assert_eq!(names, ["a-power", "a-read", "b-read"]);
    let accounts = catalog.accounts_of(&reachable).await?;
    let mut ids: Vec<&str> = accounts.keys().map(|id| id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, [A, B]);
    assert!(accounts.iter().all(|(id, account)| *id == account.id));
    Ok(())
}

#[tokio::test]
async fn expired_grants_cover_nothing() -> TestResult {
    let w = cascade_world();
    let now = w.now();
    w.put_grant(Grant {
        principal: as_user("alice"),
        scope: GrantScope::Account {
            account: cooper_core::names::AccountId::parse(A)?,
            max_level: Level::new(100)?,
        },
        expires_at: Some(now),
        via: None,
    })?;
    w.put_grant(Grant {
        principal: as_user("bob"),
        scope: GrantScope::Target(target("a-read")),
        expires_at: Some(now + Duration::hours(1)),
        via: None,
    })?;
    assert_eq!(decide(&w, "alice", "a-read").await, Err(Denial::NotGranted));
    assert_eq!(decide(&w, "bob", "a-read").await, Ok(()));
    let (_, reachable) = w.catalog().reachable(w.identity("alice")?).await?;
    assert!(reachable.is_empty());

    w.clock.advance(Duration::hours(1));
    assert_eq!(decide(&w, "bob", "a-read").await, Err(Denial::NotGranted));
    let (_, reachable) = w.catalog().reachable(w.identity("bob")?).await?;
    assert!(reachable.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_target_grant_covers_its_target_whatever_its_level() -> TestResult {
    let w = cascade_world();
    w.grant_target(as_user("carol"), "a-admin")?;
    assert_eq!(decide(&w, "carol", "a-admin").await, Ok(()));
    assert_eq!(decide(&w, "carol", "a-read").await, Err(Denial::NotGranted));
    assert_eq!(
        decide(&w, "carol", "a-power").await,
        Err(Denial::NotGranted)
    );
    Ok(())
}

#[tokio::test]
async fn unknown_and_ungranted_targets_answer_alike() -> TestResult {
    let w = cascade_world();
    w.grant_account(as_user("alice"), A, 10)?;
    let unknown = decide(&w, "alice", "no-such-target").await;
    let ungranted = decide(&w, "alice", "a-admin").await;
    assert_eq!(unknown, Err(Denial::NotGranted));
    assert_eq!(unknown, ungranted);

    let issuer = w.issuer();
    let mut reasons = Vec::new();
    for name in ["no-such-target", "a-admin"] {
        let err = issuer
            .issue(w.identity("alice")?, &ask(name), &w.meta())
            .await
            .unwrap_err();
        reasons.push((err.to_string(), last_record(&w).reason));
    }
    assert_eq!(
        reasons[0], reasons[1],
        "the answers and the records say the same"
    );
    Ok(())
}

#[tokio::test]
async fn a_revoked_grant_stops_working_at_once() -> TestResult {
    let w = cascade_world();
    let grant = w.grant_account(as_user("alice"), A, 10)?;
    assert_eq!(decide(&w, "alice", "a-read").await, Ok(()));
    w.store.seed(|s| s.grants.remove(&grant.key()))?;
    assert_eq!(decide(&w, "alice", "a-read").await, Err(Denial::NotGranted));
    Ok(())
}

/// A function reads the groups' grants ahead of the decision, guided by what earlier decisions
/// saw (the caller's groups, the target's account). Whatever those hints say now, the decision
/// is made on what the directory says in this request.
async fn decide_with(
    catalog: &cooper_core::catalog::Catalog,
    w: &MemoryWorld,
    who: &str,
    target_name: &str,
) -> Result<(), Denial> {
    match catalog
        .authorize(w.identity(who).unwrap(), &target(target_name))
        .await
    {
        Ok(_) => Ok(()),
        Err(AccessError::Denied(d)) => Err(d),
        Err(other) => panic!("not a decision: {other}"),
    }
}

#[tokio::test]
async fn a_group_left_since_the_last_decision_no_longer_counts() -> TestResult {
    let w = cascade_world();
    w.member("alice", "ops")?;
    w.grant_account(as_group("ops"), A, 10)?;
    let catalog = w.catalog();
    assert_eq!(decide_with(&catalog, &w, "alice", "a-read").await, Ok(()));

    w.store
        .seed(|s| s.memberships.remove(&(user("alice"), group("ops"))))?;
    assert_eq!(
        decide_with(&catalog, &w, "alice", "a-read").await,
        Err(Denial::NotGranted)
    );
    Ok(())
}

#[tokio::test]
async fn a_group_joined_since_the_last_decision_counts_at_once() -> TestResult {
    let w = cascade_world();
    w.group("auditors")?;
    w.member("alice", "ops")?;
    w.grant_target(as_group("auditors"), "a-power")?;
    let catalog = w.catalog();
    assert_eq!(
        decide_with(&catalog, &w, "alice", "a-power").await,
        Err(Denial::NotGranted)
    );

    w.member("alice", "auditors")?;
    assert_eq!(decide_with(&catalog, &w, "alice", "a-power").await, Ok(()));
    Ok(())
}

#[tokio::test]
async fn a_target_moved_to_another_account_is_judged_by_its_new_account() -> TestResult {
    let w = cascade_world();
    w.member("alice", "ops")?;
    w.grant_account(as_group("ops"), A, 10)?;
    let catalog = w.catalog();
    assert_eq!(decide_with(&catalog, &w, "alice", "a-read").await, Ok(()));

    // Deleted and made again under the same name, in account B, where ops has no grant: the
    // grant read ahead on account A must not let alice in.
    w.role_target("a-read", B, 10)?;
    assert_eq!(
        decide_with(&catalog, &w, "alice", "a-read").await,
        Err(Denial::NotGranted)
    );
    // And back in A: what was read ahead (ops's grants on B) is about the wrong account, so
    // A's are read before deciding.
    w.role_target("a-read", A, 10)?;
    assert_eq!(decide_with(&catalog, &w, "alice", "a-read").await, Ok(()));
    Ok(())
}

#[tokio::test]
async fn a_decision_reads_the_groups_grants_beside_the_profile_once_it_knows_them() -> TestResult {
    let w = cascade_world();
    w.member("alice", "ops")?;
    w.grant_account(as_group("ops"), A, 10)?;
    w.grant_target(as_user("bob"), "a-read")?;
    let catalog = w.catalog();
    let rounds_on = |catalog: std::sync::Arc<cooper_core::catalog::Catalog>,
                     identity: Identity,
                     on: &'static str| {
        let (w, who) = (&w, identity.user.to_string());
        async move {
            let (decision, depth) = w
                .store
                .depth_of(catalog.authorize(identity, &target(on)))
                .await
                .unwrap();
            assert!(decision.is_ok(), "{who} on {on}: {:?}", decision.err());
            depth
        }
    };
    let rounds = |who: &'static str, on: &'static str| {
        rounds_on(catalog.clone(), w.identity(who).unwrap(), on)
    };
    // The first decision learns alice's groups: their grants wait for her profile. From then
    // on they are read beside it.
    assert_eq!(rounds("alice", "a-read").await, 2);
    assert_eq!(rounds("alice", "a-read").await, 1);
    // What is learnt of one caller stays when another comes.
    assert_eq!(rounds("bob", "a-read").await, 1);
    assert_eq!(rounds("alice", "a-read").await, 1);
    // A target this process has not seen yet: its account is not known, so every grant of
    // alice's groups is read beside it instead (still one round).
    w.grant_target(as_group("ops"), "a-power")?;
    assert_eq!(rounds("alice", "a-power").await, 1);
    // So does a caller whose credential hints the group (an API token's record), in a fresh
    // process; a hint is no authority: once alice has left the group, it grants nothing.
    let mut hinted = w.identity("alice")?;
    hinted.hinted_groups = vec![cooper_core::names::GroupName::parse("ops")?];
    assert_eq!(rounds_on(w.catalog(), hinted.clone(), "a-read").await, 1);
    w.store.seed(|s| {
        s.memberships.clear();
    })?;
    assert!(matches!(
        w.catalog().authorize(hinted, &target("a-read")).await,
        Err(AccessError::Denied(Denial::NotGranted))
    ));
    w.member("alice", "ops")?;
    // A caller whose identity provider asserts the group needs nothing learnt at all: a fresh
    // process decides in one round.
    w.grant_account(as_group("idp-ops"), A, 10)?;
    let mut carol = w.identity("carol")?;
    carol.asserted_groups = vec![cooper_core::names::GroupName::parse("idp-ops")?];
    assert_eq!(rounds_on(w.catalog(), carol.clone(), "a-read").await, 1);
    // Past the bound of groups read one by one, an unknown target's grants wait for it.
    carol.asserted_groups = (0..9)
        .map(|i| cooper_core::names::GroupName::parse(&format!("idp-{i}")))
        .chain([cooper_core::names::GroupName::parse("idp-ops")])
        .collect::<Result<_, _>>()?;
    assert_eq!(rounds_on(w.catalog(), carol, "a-read").await, 2);

    // A caller in no group makes no read of groups' grants, known target or not.
    let reads = |catalog: std::sync::Arc<cooper_core::catalog::Catalog>| {
        let w = &w;
        async move {
            let before = w.store.reads();
            catalog
                .authorize(w.identity("bob").unwrap(), &target("a-read"))
                .await
                .unwrap();
            w.store.reads() - before
        }
    };
    assert_eq!(reads(catalog.clone()).await, reads(w.catalog()).await);
    Ok(())
}
