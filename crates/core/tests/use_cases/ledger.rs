//! The in-memory ledger keeps the DynamoDB ledger's promises: all or nothing, the first failing
//! change named, record ids never reused, the conditions of crates/aws/src/ledger.rs.

use cooper_core::audit::{AuditEvent, AuditRecord};
use cooper_core::ledger::{Change, ChangeError, Expect, Ledger, Reference};
use cooper_core::memory::MemoryWorld;
use cooper_core::model::factors::{Guard, LOCKOUT, MAX_FAILURES};
use cooper_core::model::{Group, User};
use cooper_core::ports::UpstreamKind;

use crate::given::*;

fn record(w: &MemoryWorld) -> AuditRecord {
    AuditRecord::new(&w.meta(), w.now(), AuditEvent::AdminChange, "tester", "jwt")
}

#[tokio::test]
async fn a_failing_condition_writes_nothing_and_names_its_change() -> TestResult {
    let w = MemoryWorld::new();
    w.user("alice")?;
    let before = w.state()?;
    let changes = [
        Change::PutUser(User::new(user("bob")), Expect::Absent),
        Change::PutGroup(
            Group {
                name: group("ops"),
                description: None,
            },
            Expect::Absent,
        ),
        Change::PutUser(User::new(user("alice")), Expect::Absent),
    ];
    let err = w.store.commit(&changes, &record(&w)).await.unwrap_err();
    assert!(matches!(err, ChangeError::Conflict { index: 2 }), "{err}");
    nothing_written(&w, &before);
    Ok(())
}

#[tokio::test]
async fn a_record_id_is_never_reused() -> TestResult {
    let w = MemoryWorld::new();
    let r = record(&w);
    w.store.commit(&[], &r).await?;
    let err = w.store.commit(&[], &r).await.unwrap_err();
    assert!(matches!(err, ChangeError::Conflict { index: 0 }), "{err}");

    let changes = [Change::PutUser(User::new(user("bob")), Expect::Absent)];
    let before = w.state()?;
    let err = w.store.commit(&changes, &r).await.unwrap_err();
    assert!(
        matches!(err, ChangeError::Conflict { index: 1 }),
        "index == changes.len() is the record: {err}"
    );
    nothing_written(&w, &before);
    assert_eq!(w.audit()?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn records_are_kept_in_the_order_they_were_committed() -> TestResult {
    let w = MemoryWorld::new();
    let ids: Vec<String> = (0..5).map(|_| w.meta().request_id).collect();
    for id in &ids {
        let mut r = record(&w);
        r.id = id.clone();
        w.store.commit(&[], &r).await?;
    }
    let kept: Vec<String> = w.audit()?.into_iter().map(|r| r.id).collect();
    assert_eq!(kept, ids);
    Ok(())
}

#[tokio::test]
async fn one_item_twice_in_one_commit_is_refused_as_dynamodb_refuses_it() -> TestResult {
    let w = MemoryWorld::new();
    w.user("alice")?;
    let before = w.state()?;
    let changes = [
        Change::Require(Reference::User(user("alice"))),
        Change::PutUser(User::new(user("alice")), Expect::Version(1)),
    ];
    let err = w.store.commit(&changes, &record(&w)).await.unwrap_err();
    assert!(
        matches!(&err, ChangeError::Upstream(e) if e.kind == UpstreamKind::Refused),
        "{err}"
    );
    nothing_written(&w, &before);
    Ok(())
}

#[tokio::test]
async fn versions_are_checked_and_counted() -> TestResult {
    let w = MemoryWorld::new();
    w.user("alice")?;
    let disabled = User {
        enabled: false,
        ..User::new(user("alice"))
    };
    w.store
        .commit(
            &[Change::PutUser(disabled.clone(), Expect::Version(1))],
            &record(&w),
        )
        .await?;
    assert_eq!(w.state()?.users[&user("alice")].version, 2);
    let err = w
        .store
        .commit(
            &[Change::PutUser(disabled, Expect::Version(1))],
            &record(&w),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ChangeError::Conflict { index: 0 }),
        "stale: {err}"
    );

    let err = w
        .store
        .commit(
            &[Change::PutUser(User::new(user("alice")), Expect::Present)],
            &record(&w),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ChangeError::Upstream(_)),
        "a put must name its version: {err}"
    );
    let err = w
        .store
        .commit(
            &[Change::DeleteUser(user("alice"), Expect::Version(1))],
            &record(&w),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ChangeError::Conflict { index: 0 }));
    w.store
        .commit(
            &[Change::DeleteUser(user("alice"), Expect::Present)],
            &record(&w),
        )
        .await?;
    assert!(w.state()?.users.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_claim_needs_an_enrollment_and_a_later_step() -> TestResult {
    let w = MemoryWorld::new();
    let claim = |step| Change::ClaimStep {
        user: user("alice"),
        step,
    };
    let err = w.store.commit(&[claim(1)], &record(&w)).await.unwrap_err();
    assert!(
        matches!(err, ChangeError::Conflict { index: 0 }),
        "no enrollment"
    );

    w.enroll_totp("alice")?;
    let last = w.factors_of("alice")?.totp.unwrap().last_step;
    let err = w
        .store
        .commit(&[claim(last)], &record(&w))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ChangeError::Conflict { index: 0 }),
        "same step"
    );
    w.store.commit(&[claim(last + 1)], &record(&w)).await?;
    assert_eq!(w.factors_of("alice")?.totp.unwrap().last_step, last + 1);
    Ok(())
}

#[tokio::test]
async fn unlocked_holds_by_the_rule_of_the_guard() -> TestResult {
    let w = MemoryWorld::new();
    let now = w.now();
    let unlocked = |clear_failures| Change::Unlocked {
        user: user("alice"),
        now,
        clear_failures,
    };
    // No guard item at all: not locked, and clearing makes one at zero.
    w.store.commit(&[unlocked(true)], &record(&w)).await?;
    assert_eq!(w.factors_of("alice")?.guard.unwrap().failures, 0);

    w.store.seed(|s| {
        s.factors.entry(user("alice")).or_default().guard = Some(Guard {
            failures: MAX_FAILURES,
            until: Some(now + LOCKOUT),
        });
    })?;
    let err = w
        .store
        .commit(&[unlocked(false)], &record(&w))
        .await
        .unwrap_err();
    assert!(matches!(err, ChangeError::Conflict { index: 0 }));

    w.clock.advance(LOCKOUT);
    let later = Change::Unlocked {
        user: user("alice"),
        now: w.now(),
        clear_failures: true,
    };
    w.store.commit(&[later], &record(&w)).await?;
    let guard = w.factors_of("alice")?.guard.unwrap();
    assert_eq!(guard.failures, 0);
    assert_eq!(
        guard.until,
        Some(now + LOCKOUT),
        "only the count is cleared"
    );
    Ok(())
}

#[tokio::test]
async fn too_many_changes_for_one_transaction_are_refused_before_anything() -> TestResult {
    let w = MemoryWorld::new();
    let names: Vec<String> = (0..100).map(|i| format!("user{i:03}")).collect();
    for n in &names {
        w.user(n)?;
    }
    let requires: Vec<Change> = names
        .iter()
        .map(|n| Change::Require(Reference::User(user(n))))
        .collect();
    let err = w.store.commit(&requires, &record(&w)).await.unwrap_err();
    assert!(matches!(err, ChangeError::TooLarge), "{err}");
    w.store.commit(&requires[..99], &record(&w)).await?;
    Ok(())
}

#[tokio::test]
async fn told_to_fail_it_fails_then_recovers() -> TestResult {
    let w = MemoryWorld::new();
    w.store.fail_next_commits(2)?;
    for _ in 0..2 {
        let err = w.store.commit(&[], &record(&w)).await.unwrap_err();
        assert!(matches!(err, ChangeError::Upstream(_)));
    }
    w.store.commit(&[], &record(&w)).await?;
    assert_eq!(w.audit()?.len(), 1);

    w.store.fail_commits(true)?;
    assert!(w.store.commit(&[], &record(&w)).await.is_err());
    w.store.fail_commits(false)?;
    w.store.commit(&[], &record(&w)).await?;
    Ok(())
}
