//! Rotating the broker's key: one active key, the one stored, after any number of runs; a run
//! that dies at any step, run again, ends in the same good state; nothing depends on a key
//! before it is proven and recorded.

use std::sync::Arc;

use cooper_core::audit::AuditEvent;
use cooper_core::memory::{KeyStep, MemoryBrokerKeys, MemoryWorld};
use cooper_core::rotation::{KeyRotation, RotationError};
use time::Duration;

use crate::given::*;

fn rotation(w: &MemoryWorld, keys: &Arc<MemoryBrokerKeys>) -> KeyRotation {
    KeyRotation {
        keys: keys.clone(),
        ledger: w.store.clone(),
        clock: w.clock.clone(),
        holder: "cooper-broker".into(),
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
