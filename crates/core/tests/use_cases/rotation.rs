//! Rotating the broker's key: one active key, the one stored, after any number of runs; a run
//! that dies at any step, run again, ends in the same good state; nothing depends on a key
//! before it is proven and recorded.

use std::sync::Arc;

use cooper_core::audit::AuditEvent;
use cooper_core::memory::{KeyStep, MemoryBrokerKeys, MemoryIam, MemoryWorld};
use cooper_core::model::{FederationKeys, TargetKind};
use cooper_core::names::TargetName;
use cooper_core::ports::{FederationBinding, KeyVault};
use cooper_core::rotation::targets::{TargetKeyRotation, TargetKeysReport, TargetOutcome};
use cooper_core::rotation::{KeyRotation, RotationError};
use time::Duration;

use crate::given::*;

fn rotation(w: &MemoryWorld, keys: &Arc<MemoryBrokerKeys>) -> KeyRotation {
    KeyRotation {
        keys: keys.clone(),
        ledger: w.store.clone(),
        clock: w.clock.clone(),
        resource: "broker user cooper-broker".into(),
        account: None,
        event: AuditEvent::BrokerKeyRotated,
        min_age: Duration::days(30),
    }
}

async fn run(
    w: &MemoryWorld,
    keys: &Arc<MemoryBrokerKeys>,
    force: bool,
) -> Result<(), RotationError> {
    rotation(w, keys)
        .run(force, "rotate-keys", "schedule", &w.meta())
        .await
        .map(|_| ())
}

/// The good state: exactly one active key, the stored one; at most one other, inactive.
fn good(keys: &MemoryBrokerKeys) {
    let all = keys.keys();
    let active: Vec<_> = all.iter().filter(|k| k.active).collect();
    assert_eq!(active.len(), 1, "{all:?}");
    assert_eq!(Some(active[0].id.clone()), keys.stored_id(), "{all:?}");
    assert!(all.len() <= 2, "{all:?}");
}

#[tokio::test]
async fn two_rotations_leave_one_active_key_stored_and_the_old_one_inactive_then_gone() -> TestResult
{
    let w = MemoryWorld::new();
    let keys = Arc::new(MemoryBrokerKeys::new(w.clock.clone(), Duration::days(31)));
    let first = keys.stored_id().unwrap();
    run(&w, &keys, false).await?;
    good(&keys);
    let second = keys.stored_id().unwrap();
    assert_ne!(first, second);
    assert!(
        keys.keys().iter().any(|k| k.id == first && !k.active),
        "kept, inactive, as a way back"
    );
    let rotated = records(&w, AuditEvent::BrokerKeyRotated);
    assert_eq!(rotated.len(), 1);
    assert_eq!(
        rotated[0].before,
        Some(serde_json::json!({"access_key_id": first}))
    );
    assert_eq!(
        rotated[0].after,
        Some(serde_json::json!({"access_key_id": second}))
    );

    // Again at once: the key in use is new, nothing changes.
    let before = keys.keys();
    run(&w, &keys, false).await?;
    assert_eq!(keys.keys(), before);

    w.clock.advance(Duration::days(31));
    run(&w, &keys, false).await?;
    good(&keys);
    let ids: Vec<String> = keys.keys().into_iter().map(|k| k.id).collect();
    assert!(!ids.contains(&first), "the first key is gone: {ids:?}");
    assert!(
        ids.contains(&second),
        "the second is kept, inactive: {ids:?}"
    );
    assert_eq!(records(&w, AuditEvent::BrokerKeyRotated).len(), 2);
    Ok(())
}

#[tokio::test]
async fn a_run_that_dies_at_any_step_then_runs_again_ends_in_the_good_state() -> TestResult {
    for step in [
        KeyStep::Create,
        KeyStep::Works,
        KeyStep::Store,
        KeyStep::Deactivate,
        KeyStep::Delete,
    ] {
        let w = MemoryWorld::new();
        let keys = Arc::new(MemoryBrokerKeys::new(w.clock.clone(), Duration::days(31)));
        // A first rotation, so that a key deactivated before is there to delete.
        run(&w, &keys, true).await?;
        keys.fail_at(Some(step));
        let died = run(&w, &keys, true).await;
        assert!(died.is_err(), "{step:?}: the run died");
        run(&w, &keys, true).await?;
        good(&keys);
        // And again: still good.
        run(&w, &keys, true).await?;
        good(&keys);
    }
    Ok(())
}

#[tokio::test]
async fn a_new_key_that_does_not_work_is_deleted_and_nothing_else_changes() -> TestResult {
    let w = MemoryWorld::new();
    let keys = Arc::new(MemoryBrokerKeys::new(w.clock.clone(), Duration::days(31)));
    let before = keys.keys();
    keys.refuse_new(true);
    let err = run(&w, &keys, false).await.unwrap_err();
    assert!(matches!(err, RotationError::NewKeyRefused(_)), "{err}");
    assert_eq!(keys.keys(), before);
    assert!(records(&w, AuditEvent::BrokerKeyRotated).is_empty());
    Ok(())
}

#[tokio::test]
async fn nothing_is_stored_without_its_audit_record() -> TestResult {
    let w = MemoryWorld::new();
    let keys = Arc::new(MemoryBrokerKeys::new(w.clock.clone(), Duration::days(31)));
    let first = keys.stored_id();
    w.store.fail_commits(true)?;
    let err = run(&w, &keys, false).await.unwrap_err();
    assert!(matches!(err, RotationError::AuditUnavailable(_)), "{err}");
    assert_eq!(keys.stored_id(), first, "the functions' key is unchanged");
    w.store.fail_commits(false)?;
    // The next run deletes the key that was made but never stored, and rotates.
    run(&w, &keys, false).await?;
    good(&keys);
    assert_eq!(keys.keys().len(), 2);
    Ok(())
}

// ---- Federated-user targets' keys ----

const FED: &str = "cooper-fed-prod";

fn target_rotation(w: &MemoryWorld, iam: &Arc<MemoryIam>) -> TargetKeyRotation {
    TargetKeyRotation {
        admin: w.store.clone(),
        vault: w.vault.clone(),
        iam: Arc::new(iam.clone()),
        ledger: w.store.clone(),
        clock: w.clock.clone(),
        min_age: Duration::days(30),
    }
}

async fn run_targets(
    w: &MemoryWorld,
    iam: &Arc<MemoryIam>,
    force: bool,
) -> Result<Vec<TargetKeysReport>, Box<dyn std::error::Error>> {
    Ok(target_rotation(w, iam)
        .run(force, "rotate-keys", "schedule", &w.meta())
        .await?)
}

/// The key `target` carries now, opened as the issuer opens it.
async fn carried(
    w: &MemoryWorld,
    target: &str,
) -> Result<FederationKeys, Box<dyn std::error::Error>> {
    let state = w.state()?;
    let t = &state.targets[&TargetName::parse(target)?].value;
    let TargetKind::FederatedUser { sealed_keys, .. } = &t.kind else {
        return Err("not a federated-user target".into());
    };
    Ok(w.vault
        .open_federation_keys(sealed_keys, &FederationBinding::of(t))
        .await?)
}

/// One active key of `user`, the one every target in `targets` carries.
async fn good_targets(
    w: &MemoryWorld,
    iam: &MemoryIam,
    targets: &[&str],
) -> Result<String, Box<dyn std::error::Error>> {
    let keys = iam.keys_of(FED);
    let active: Vec<_> = keys.iter().filter(|k| k.active).collect();
    assert_eq!(active.len(), 1, "{keys:?}");
    for t in targets {
        assert_eq!(carried(w, t).await?.access_key_id, active[0].id, "{t}");
    }
    Ok(active[0].id.clone())
}

#[tokio::test]
async fn a_federation_users_key_is_rotated_and_sealed_onto_every_target_that_carried_it()
-> TestResult {
    let w = MemoryWorld::new();
    let iam = MemoryIam::new(w.clock.clone());
    let keys = iam.add_key(FED, Duration::days(31));
    w.account(A)?;
    w.federated_target_with("fed-read", A, 1, &keys)?;
    w.federated_target_with("fed-write", A, 5, &keys)?;
    w.role_target("a-role", A, 1)?;

    let reports = run_targets(&w, &iam, false).await?;
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].user.as_deref(), Some(FED));
    assert_eq!(
        reports[0].targets,
        vec![
            TargetName::parse("fed-read")?,
            TargetName::parse("fed-write")?
        ]
    );
    let TargetOutcome::Done(done) = &reports[0].outcome else {
        panic!("{reports:?}");
    };
    let new = good_targets(&w, &iam, &["fed-read", "fed-write"]).await?;
    assert_eq!(
        done.rotated,
        Some((keys.access_key_id.clone(), new.clone()))
    );
    assert!(
        iam.keys_of(FED)
            .iter()
            .any(|k| k.id == keys.access_key_id && !k.active),
        "the old key is kept, inactive"
    );
    let rotated = records(&w, AuditEvent::TargetKeysRotated);
    assert_eq!(rotated.len(), 1);
    assert_eq!(rotated[0].account.as_ref().map(|a| a.as_str()), Some(A));
    assert_eq!(
        rotated[0].after,
        Some(serde_json::json!({"access_key_id": new}))
    );

    // Again at once: young enough, nothing changes.
    let before = w.state()?;
    run_targets(&w, &iam, false).await?;
    assert_eq!(w.state()?.targets, before.targets);
    Ok(())
}

#[tokio::test]
async fn an_account_that_does_not_let_its_user_manage_its_keys_is_left_alone() -> TestResult {
    let w = MemoryWorld::new();
    let iam = MemoryIam::new(w.clock.clone());
    let keys = iam.add_key(FED, Duration::days(400));
    w.account(A)?;
    w.federated_target_with("fed-read", A, 1, &keys)?;
    iam.forbid(FED);
    let before = w.state()?;
    let reports = run_targets(&w, &iam, true).await?;
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].outcome, TargetOutcome::NotAllowed);
    assert!(!reports[0].failed());
    nothing_changed(&w, &before);
    assert!(w.audit()?.is_empty());
    assert_eq!(iam.keys_of(FED).len(), 1);
    Ok(())
}

#[tokio::test]
async fn targets_carrying_different_keys_of_one_user_are_refused_not_broken() -> TestResult {
    let w = MemoryWorld::new();
    let iam = MemoryIam::new(w.clock.clone());
    let one = iam.add_key(FED, Duration::days(60));
    let two = iam.add_key(FED, Duration::days(40));
    w.account(A)?;
    w.federated_target_with("fed-read", A, 1, &one)?;
    w.federated_target_with("fed-write", A, 5, &two)?;
    let before = w.state()?;
    let reports = run_targets(&w, &iam, true).await?;
    assert_eq!(reports.len(), 2, "{reports:?}");
    assert!(reports.iter().all(TargetKeysReport::failed), "{reports:?}");
    nothing_changed(&w, &before);
    assert!(iam.keys_of(FED).iter().all(|k| k.active), "both still work");
    Ok(())
}

#[tokio::test]
async fn a_target_changed_meanwhile_keeps_its_key_and_the_new_key_is_deleted() -> TestResult {
    let w = MemoryWorld::new();
    let iam = MemoryIam::new(w.clock.clone());
    let keys = iam.add_key(FED, Duration::days(31));
    w.account(A)?;
    w.federated_target_with("fed-read", A, 1, &keys)?;
    let name = TargetName::parse("fed-read")?;
    w.store.before_next_commit(move |s| {
        if let Some(t) = s.targets.get_mut(&name) {
            t.version += 1;
        }
    })?;
    let reports = run_targets(&w, &iam, false).await?;
    assert!(reports[0].failed(), "{reports:?}");
    assert!(
        format!("{:?}", reports[0].outcome).contains("changed while its key was rotated"),
        "{reports:?}"
    );
    assert_eq!(
        carried(&w, "fed-read").await?.access_key_id,
        keys.access_key_id
    );
    let left = iam.keys_of(FED);
    assert_eq!(left.len(), 1, "the new key is gone: {left:?}");
    assert!(left[0].active);
    assert!(records(&w, AuditEvent::TargetKeysRotated).is_empty());
    // The next run rotates.
    run_targets(&w, &iam, false).await?;
    good_targets(&w, &iam, &["fed-read"]).await?;
    Ok(())
}

#[tokio::test]
async fn a_target_rotation_that_dies_at_any_step_then_runs_again_ends_in_the_good_state()
-> TestResult {
    for step in [
        KeyStep::List,
        KeyStep::Create,
        KeyStep::Works,
        KeyStep::Deactivate,
        KeyStep::Delete,
    ] {
        let w = MemoryWorld::new();
        let iam = MemoryIam::new(w.clock.clone());
        let keys = iam.add_key(FED, Duration::days(31));
        w.account(A)?;
        w.federated_target_with("fed-read", A, 1, &keys)?;
        w.federated_target_with("fed-write", A, 5, &keys)?;
        run_targets(&w, &iam, true).await?;
        iam.fail_at(Some(step));
        let died = run_targets(&w, &iam, true).await?;
        assert!(
            died.iter().any(TargetKeysReport::failed),
            "{step:?}: {died:?}"
        );
        for _ in 0..2 {
            let again = run_targets(&w, &iam, true).await?;
            assert!(
                !again.iter().any(TargetKeysReport::failed),
                "{step:?}: {again:?}"
            );
            good_targets(&w, &iam, &["fed-read", "fed-write"]).await?;
            assert!(iam.keys_of(FED).len() <= 2);
        }
    }
    Ok(())
}

/// A ledger whose next commit is written but answered with a failure (a timeout after the
/// write): the run cannot tell it from a write that did not happen.
struct WrittenButLost {
    inner: Arc<cooper_core::memory::MemoryStore>,
    lose_next: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl cooper_core::ledger::Ledger for WrittenButLost {
    async fn commit(
        &self,
        changes: &[cooper_core::ledger::Change],
        record: &cooper_core::audit::AuditRecord,
    ) -> Result<(), cooper_core::ledger::ChangeError> {
        self.inner.commit(changes, record).await?;
        if self
            .lose_next
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(cooper_core::ports::UpstreamError::new(
                cooper_core::ports::Service::DynamoDb,
                cooper_core::ports::UpstreamKind::Unavailable,
                "timed out (after the write)",
            )
            .into());
        }
        Ok(())
    }

    async fn take_mark(
        &self,
        key: &str,
        now: time::OffsetDateTime,
    ) -> Result<Option<String>, cooper_core::ports::UpstreamError> {
        self.inner.take_mark(key, now).await
    }
}

#[tokio::test]
async fn a_rotation_written_but_answered_as_failed_never_leaves_the_targets_a_deleted_key()
-> TestResult {
    let w = MemoryWorld::new();
    let iam = MemoryIam::new(w.clock.clone());
    let keys = iam.add_key(FED, Duration::days(31));
    w.account(A)?;
    w.federated_target_with("fed-read", A, 1, &keys)?;
    let mut rotation = target_rotation(&w, &iam);
    rotation.ledger = Arc::new(WrittenButLost {
        inner: w.store.clone(),
        lose_next: true.into(),
    });
    let died = rotation
        .run(false, "rotate-keys", "schedule", &w.meta())
        .await?;
    assert!(died[0].failed(), "{died:?}");
    // The target carries the new key: it must still be there, and active.
    let carried = carried(&w, "fed-read").await?;
    assert_ne!(carried.access_key_id, keys.access_key_id);
    assert!(
        iam.keys_of(FED)
            .iter()
            .any(|k| k.id == carried.access_key_id && k.active),
        "{:?}",
        iam.keys_of(FED)
    );
    // The next run finishes it: the old key deactivated, the carried one the only active.
    run_targets(&w, &iam, false).await?;
    assert_eq!(
        good_targets(&w, &iam, &["fed-read"]).await?,
        carried.access_key_id
    );
    Ok(())
}
