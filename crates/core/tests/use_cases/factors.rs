//! Second factors: a code is good once, failures lock out and the lock lifts, enrollment and
//! re-enrollment, passwords set with a fresh code.

use cooper_core::access::{AuthMethod, Identity};
use cooper_core::audit::AuditEvent;
use cooper_core::factors::{FactorError, PENDING_ENROLLMENT};
use cooper_core::memory::{MemoryWorld, SealedFor};
use cooper_core::model::factors::{Guard, LOCKOUT, MAX_FAILURES, PendingTotp};
use cooper_core::password::{NewPassword, PasswordHash};
use cooper_core::token::{EnrollmentCode, EnrollmentCodeRecord, TokenId};
use cooper_core::totp::{TotpCode, TotpSecret, step_of};
use futures_util::future::join;
use secrecy::{ExposeSecret, SecretString};
use time::Duration;

use crate::given::*;

/// alice: a user with an enrolled authenticator.
fn enrolled() -> MemoryWorld {
    let w = MemoryWorld::new();
    w.user("alice").unwrap();
    w.enroll_totp("alice").unwrap();
    w
}

/// Re-enrolling: a use case that spends one of alice's codes (and no argon2 hashing).
async fn spend(w: &MemoryWorld, code: &TotpCode) -> Result<(), FactorError> {
    w.enrollment()
        .start(&w.identity("alice").unwrap(), Some(code), &w.meta())
        .await
        .map(|_| ())
}

fn guard(w: &MemoryWorld) -> Guard {
    w.factors_of("alice").unwrap().guard.unwrap_or_default()
}

#[tokio::test]
async fn a_code_is_accepted_once() -> TestResult {
    let w = enrolled();
    let code = w.code("alice")?;
    spend(&w, &code).await?;
    assert_eq!(
        w.factors_of("alice")?.totp.unwrap().last_step,
        step_of(w.now())
    );
    let err = spend(&w, &code).await.unwrap_err();
    assert!(matches!(err, FactorError::Replayed), "{err}");
    assert_eq!(guard(&w), Guard::default(), "a replay is not a failure");
    assert_eq!(
        last_record(&w).reason.as_deref(),
        Some("totp_replayed"),
        "the refusal is audited"
    );

    // The next step's code is good.
    w.clock.advance(Duration::seconds(30));
    spend(&w, &w.code("alice")?).await?;
    Ok(())
}

#[tokio::test]
async fn a_code_of_an_earlier_step_is_refused_once_a_later_one_was_used() -> TestResult {
    let w = enrolled();
    let earlier = w.code_at("alice", w.now() - Duration::seconds(30))?;
    spend(&w, &w.code("alice")?).await?;
    let err = spend(&w, &earlier).await.unwrap_err();
    assert!(matches!(err, FactorError::Replayed), "{err}");
    Ok(())
}

#[tokio::test]
async fn two_requests_racing_with_one_code_get_one_success() -> TestResult {
    let w = enrolled();
    let code = w.code("alice")?;
    w.store.interleave(true)?;
    let (a, b) = join(spend(&w, &code), spend(&w, &code)).await;
    w.store.interleave(false)?;
    let (won, lost) = match (a, b) {
        (Ok(()), Err(e)) | (Err(e), Ok(())) => ((), e),
        other => panic!("exactly one may win: {other:?}"),
    };
    let () = won;
    assert!(matches!(lost, FactorError::Replayed), "{lost}");
    // Both passed the check (both read the step as unused); the loser's claim conflicted when
    // committed: two change commits and one refusal record.
    assert_eq!(w.store.commits(), 3);
    assert_eq!(records(&w, AuditEvent::TotpEnrollmentStarted).len(), 1);
    assert_eq!(records(&w, AuditEvent::TotpEnrollmentRefused).len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_code_claimed_by_another_request_meanwhile_is_a_replay() -> TestResult {
    let w = enrolled();
    let step = step_of(w.now());
    let before = w.state()?;
    w.store.before_next_commit(move |s| {
        if let Some(t) = s
            .factors
            .get_mut(&user("alice"))
            .and_then(|f| f.totp.as_mut())
        {
            t.last_step = step;
        }
    })?;
    let err = spend(&w, &w.code("alice")?).await.unwrap_err();
    assert!(matches!(err, FactorError::Replayed), "{err}");
    // Nothing of the refused request was written; only the other request's claim is there.
    let mut expected = before.without_trail();
    if let Some(t) = expected
        .factors
        .get_mut(&user("alice"))
        .and_then(|f| f.totp.as_mut())
    {
        t.last_step = step;
    }
    assert_eq!(w.state()?.without_trail(), expected);
    Ok(())
}

#[tokio::test]
async fn a_wrong_code_counts_one_failure() -> TestResult {
    let w = enrolled();
    let err = spend(&w, &w.wrong_code("alice")?).await.unwrap_err();
    assert!(matches!(err, FactorError::InvalidCode), "{err}");
    assert_eq!(
        guard(&w),
        Guard {
            failures: 1,
            until: Some(w.now() + LOCKOUT)
        }
    );
    assert_eq!(last_record(&w).reason.as_deref(), Some("totp_invalid"));
    Ok(())
}

#[tokio::test]
async fn failures_lock_out_at_the_limit_and_a_right_code_is_refused_while_locked() -> TestResult {
    let w = enrolled();
    for n in 1..MAX_FAILURES {
        let err = spend(&w, &w.wrong_code("alice")?).await.unwrap_err();
        assert!(
            matches!(err, FactorError::InvalidCode),
            "failure {n}: {err}"
        );
    }
    let err = spend(&w, &w.wrong_code("alice")?).await.unwrap_err();
    let FactorError::LockedOut {
        until,
        retry_after_seconds,
    } = err
    else {
        panic!("the failure that reaches the limit tells the lock: {err}");
    };
    assert_eq!(until, w.now() + LOCKOUT);
    assert_eq!(retry_after_seconds, LOCKOUT.whole_seconds());

    let locked = guard(&w);
    let err = spend(&w, &w.code("alice")?).await.unwrap_err();
    assert!(matches!(err, FactorError::LockedOut { .. }), "{err}");
    assert_eq!(guard(&w), locked, "a refusal while locked counts nothing");
    assert_eq!(last_record(&w).reason.as_deref(), Some("locked_out"));
    // Later in the window: the lock tells what is left of it, and a wrong code counts nothing
    // either (no guess is even checked while locked).
    w.clock.advance(Duration::minutes(5));
    for code in [w.code("alice")?, w.wrong_code("alice")?] {
        let err = spend(&w, &code).await.unwrap_err();
        assert!(
            matches!(err, FactorError::LockedOut { until: u, retry_after_seconds: left }
                if u == until && left == (LOCKOUT - Duration::minutes(5)).whole_seconds()),
            "{err}"
        );
        assert_eq!(guard(&w), locked);
    }
    Ok(())
}

#[tokio::test]
async fn the_lock_lifts_a_lockout_after_the_last_failure_and_success_clears_the_count() -> TestResult
{
    let w = enrolled();
    for _ in 0..MAX_FAILURES {
        let _ = spend(&w, &w.wrong_code("alice")?).await;
    }
    w.clock.advance(LOCKOUT - Duration::seconds(1));
    assert!(matches!(
        spend(&w, &w.code("alice")?).await,
        Err(FactorError::LockedOut { .. })
    ));
    w.clock.advance(Duration::seconds(1));
    spend(&w, &w.code("alice")?).await?;
    assert_eq!(guard(&w).failures, 0);
    Ok(())
}

#[tokio::test]
async fn failures_start_again_after_a_quiet_lockout_window() -> TestResult {
    let w = enrolled();
    for _ in 1..MAX_FAILURES {
        let _ = spend(&w, &w.wrong_code("alice")?).await;
    }
    assert_eq!(guard(&w).failures, MAX_FAILURES - 1);
    w.clock.advance(LOCKOUT);
    let err = spend(&w, &w.wrong_code("alice")?).await.unwrap_err();
    assert!(matches!(err, FactorError::InvalidCode), "not locked: {err}");
    assert_eq!(guard(&w).failures, 1, "the old failures are forgotten");
    Ok(())
}

#[tokio::test]
async fn failures_within_the_window_move_it() -> TestResult {
    let w = enrolled();
    for _ in 1..MAX_FAILURES {
        let _ = spend(&w, &w.wrong_code("alice")?).await;
        w.clock.advance(LOCKOUT - Duration::seconds(1));
    }
    let err = spend(&w, &w.wrong_code("alice")?).await.unwrap_err();
    assert!(
        matches!(err, FactorError::LockedOut { .. }),
        "each failure keeps the earlier ones for a lockout from itself: {err}"
    );
    Ok(())
}

#[tokio::test]
async fn concurrent_wrong_guesses_each_count() -> TestResult {
    let w = enrolled();
    let wrong = w.wrong_code("alice")?;
    w.store.interleave(true)?;
    let guesses = (0..8).map(|_| spend(&w, &wrong));
    let results = futures_util::future::join_all(guesses).await;
    w.store.interleave(false)?;
    assert!(results.iter().all(Result::is_err));
    assert_eq!(guard(&w).failures, 8);
    let err = spend(&w, &w.code("alice")?).await.unwrap_err();
    assert!(matches!(err, FactorError::LockedOut { .. }), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_lock_set_meanwhile_holds_against_a_right_code() -> TestResult {
    let w = enrolled();
    let now = w.now();
    let before = w.factors_of("alice")?;
    w.store.before_next_commit(move |s| {
        s.factors.entry(user("alice")).or_default().guard = Some(Guard {
            failures: MAX_FAILURES,
            until: Some(now + LOCKOUT),
        });
    })?;
    let err = spend(&w, &w.code("alice")?).await.unwrap_err();
    assert!(matches!(err, FactorError::LockedOut { .. }), "{err}");
    let after = w.factors_of("alice")?;
    assert_eq!(after.totp, before.totp, "the code was not claimed");
    assert_eq!(after.pending, None);
    Ok(())
}

#[tokio::test]
async fn enrollment_starts_sealed_for_the_user_and_is_confirmed_by_a_first_code() -> TestResult {
    let w = MemoryWorld::new();
    w.user("bob")?;
    let bob = w.identity("bob")?;
    let started = w.enrollment().start(&bob, None, &w.meta()).await?;
    assert_eq!(started.expires_at, w.now() + PENDING_ENROLLMENT);
    assert!(
        started
            .provisioning_uri
            .expose_secret()
            .starts_with("otpauth://totp/cooper:bob?")
    );
    assert_eq!(last_record(&w).event, AuditEvent::TotpEnrollmentStarted);
    let pending = w.factors_of("bob")?.pending.unwrap();
    assert!(
        w.factors_of("bob")?.totp.is_none(),
        "not active until confirmed"
    );

    // The sealed secret is the one shown, and opens for bob only.
    let bytes = w
        .vault
        .open(&SealedFor::TotpSecret(user("bob")), &pending.sealed)?;
    let shown = totp_rs::Secret::try_from_base32(started.secret_base32.expose_secret()).unwrap();
    assert_eq!(bytes, shown.as_bytes());
    assert!(
        w.vault
            .open(&SealedFor::TotpSecret(user("alice")), &pending.sealed)
            .is_err()
    );

    let secret = TotpSecret::from_bytes(bytes)?;
    let code = secret.code_at(w.now()).unwrap();
    w.enrollment().confirm(&bob, &code, None, &w.meta()).await?;
    let factors = w.factors_of("bob")?;
    let active = factors.totp.unwrap();
    assert_eq!(active.sealed, pending.sealed);
    assert_eq!(
        active.last_step,
        step_of(w.now()),
        "the first code is spent"
    );
    assert!(factors.pending.is_none());
    assert_eq!(last_record(&w).event, AuditEvent::TotpEnrolled);
    Ok(())
}

#[tokio::test]
async fn confirming_needs_a_pending_unexpired_enrollment_and_its_code() -> TestResult {
    let w = MemoryWorld::new();
    w.user("bob")?;
    let bob = w.identity("bob")?;
    let err = w
        .enrollment()
        .confirm(&bob, &TotpCode::parse("123456")?, None, &w.meta())
        .await
        .unwrap_err();
    assert!(matches!(err, FactorError::NoPendingEnrollment), "{err}");

    w.enrollment().start(&bob, None, &w.meta()).await?;
    let err = w
        .enrollment()
        .confirm(&bob, &TotpCode::parse("000000")?, None, &w.meta())
        .await
        .unwrap_err();
    assert!(matches!(err, FactorError::InvalidCode), "{err}");
    assert_eq!(w.factors_of("bob")?.guard.unwrap().failures, 1);
    assert_eq!(
        last_record(&w).event,
        AuditEvent::TotpEnrollmentRefused,
        "refusals are audited"
    );

    w.clock.advance(PENDING_ENROLLMENT);
    let pending = w.factors_of("bob")?.pending.unwrap();
    let secret = TotpSecret::from_bytes(
        w.vault
            .open(&SealedFor::TotpSecret(user("bob")), &pending.sealed)?,
    )?;
    let err = w
        .enrollment()
        .confirm(&bob, &secret.code_at(w.now()).unwrap(), None, &w.meta())
        .await
        .unwrap_err();
    assert!(
        matches!(err, FactorError::NoPendingEnrollment),
        "expired: {err}"
    );
    assert!(w.factors_of("bob")?.totp.is_none());
    Ok(())
}

#[tokio::test]
async fn an_enrollment_started_meanwhile_cancels_the_one_being_confirmed() -> TestResult {
    let w = MemoryWorld::new();
    w.user("bob")?;
    let bob = w.identity("bob")?;
    w.enrollment().start(&bob, None, &w.meta()).await?;
    let first = w.factors_of("bob")?.pending.unwrap();
    let first_secret = TotpSecret::from_bytes(
        w.vault
            .open(&SealedFor::TotpSecret(user("bob")), &first.sealed)?,
    )?;

    // A second enrollment lands between the check of the first one's code and its commit.
    let other = TotpSecret::generate(w.entropy.as_ref())?;
    let second = PendingTotp {
        sealed: w
            .vault
            .seal(SealedFor::TotpSecret(user("bob")), other.expose_bytes())?,
        expires_at: w.now() + PENDING_ENROLLMENT,
        bootstrapped_by: None,
    };
    let landed = second.clone();
    w.store.before_next_commit(move |s| {
        s.factors.entry(user("bob")).or_default().pending = Some(landed);
    })?;
    let err = w
        .enrollment()
        .confirm(
            &bob,
            &first_secret.code_at(w.now()).unwrap(),
            None,
            &w.meta(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, FactorError::NoPendingEnrollment), "{err}");
    let factors = w.factors_of("bob")?;
    assert!(factors.totp.is_none(), "nothing was activated");
    assert_eq!(factors.pending, Some(second));
    Ok(())
}

#[tokio::test]
async fn re_enrolling_needs_a_current_code() -> TestResult {
    let w = enrolled();
    let alice = w.identity("alice")?;
    let before = w.factors_of("alice")?;
    let err = w
        .enrollment()
        .start(&alice, None, &w.meta())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, FactorError::CodeRequired), "{err}");
    assert_eq!(last_record(&w).reason.as_deref(), Some("totp_required"));
    let err = w
        .enrollment()
        .start(&alice, Some(&w.wrong_code("alice")?), &w.meta())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, FactorError::InvalidCode), "{err}");
    assert_eq!(w.factors_of("alice")?.pending, None);
    assert_eq!(w.factors_of("alice")?.totp, before.totp);

    w.enrollment()
        .start(&alice, Some(&w.code("alice")?), &w.meta())
        .await?;
    let after = w.factors_of("alice")?;
    assert!(after.pending.is_some());
    assert_eq!(
        after.totp.as_ref().map(|t| &t.sealed),
        before.totp.as_ref().map(|t| &t.sealed),
        "the old authenticator stays until the new one is confirmed"
    );
    Ok(())
}

#[tokio::test]
async fn a_secret_sealed_for_one_user_opens_for_no_other() -> TestResult {
    let w = enrolled();
    w.user("mallory")?;
    // mallory's factors carry alice's sealed secret: KMS's context refuses to open it.
    let alice_totp = w.factors_of("alice")?.totp;
    w.store.seed(|s| {
        s.factors.entry(user("mallory")).or_default().totp = alice_totp;
    })?;
    let err = w
        .second_factor()
        .check(&user("mallory"), &w.code("alice")?)
        .await
        .unwrap_err();
    assert!(matches!(err, FactorError::Upstream(_)), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_password_is_set_with_a_fresh_code_which_it_spends() -> TestResult {
    let w = enrolled();
    let alice = w.identity("alice")?;
    let password = NewPassword::parse(SecretString::from("correct horse battery"), &user("alice"))?;
    let err = w
        .password_change()
        .set(&alice, &password, &w.wrong_code("alice")?, &w.meta())
        .await
        .unwrap_err();
    assert!(matches!(err, FactorError::InvalidCode), "{err}");
    assert!(w.factors_of("alice")?.password.is_none());
    assert_eq!(last_record(&w).event, AuditEvent::PasswordRefused);
    assert_eq!(guard(&w).failures, 1);

    let code = w.code("alice")?;
    w.password_change()
        .set(&alice, &password, &code, &w.meta())
        .await?;
    let (hash, at) = w.factors_of("alice")?.password.unwrap();
    assert_eq!(at, w.now());
    assert!(PasswordHash::verify(
        Some(&hash),
        &SecretString::from("correct horse battery")
    ));
    assert_eq!(last_record(&w).event, AuditEvent::PasswordChanged);
    assert_eq!(guard(&w).failures, 0, "a success clears the failures");

    let err = w
        .password_change()
        .set(&alice, &password, &code, &w.meta())
        .await
        .unwrap_err();
    assert!(matches!(err, FactorError::Replayed), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_password_needs_an_authenticator() -> TestResult {
    let w = MemoryWorld::new();
    w.user("bob")?;
    let password = NewPassword::parse(SecretString::from("correct horse battery"), &user("bob"))?;
    let err = w
        .password_change()
        .set(
            &w.identity("bob")?,
            &password,
            &TotpCode::parse("123456")?,
            &w.meta(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, FactorError::NotEnrolled), "{err}");
    assert!(w.factors_of("bob")?.password.is_none());
    Ok(())
}

/// `name`, as a script with an API token.
fn scripted(name: &str) -> Identity {
    Identity::new(
        user(name),
        AuthMethod::ApiToken(TokenId::parse("0123456789abcdef").unwrap()),
    )
}

#[tokio::test]
async fn an_api_token_cannot_enroll_an_authenticator() -> TestResult {
    let w = MemoryWorld::new();
    w.user("bob")?;
    let result = w
        .enrollment()
        .start(&scripted("bob"), None, &w.meta())
        .await;
    assert!(result.is_err(), "a script's token may not enroll factors");
    assert!(w.factors_of("bob")?.pending.is_none());
    Ok(())
}

#[tokio::test]
async fn an_api_token_cannot_set_a_password() -> TestResult {
    let w = enrolled();
    let password = NewPassword::parse(SecretString::from("correct horse battery"), &user("alice"))?;
    let result = w
        .password_change()
        .set(&scripted("alice"), &password, &w.code("alice")?, &w.meta())
        .await;
    assert!(result.is_err(), "a script's token may not set a password");
    assert!(w.factors_of("alice")?.password.is_none());
    Ok(())
}

/// An enrollment code dave issued for `who`, valid `hours`, as the admin use case stores it:
/// the identity that presents it (as `presenter`).
fn enrollment_code(w: &MemoryWorld, who: &str, presenter: &str, hours: i64) -> Identity {
    let code = EnrollmentCode::generate(w.entropy.as_ref()).unwrap();
    let record = EnrollmentCodeRecord::issue(
        &code,
        user(who),
        Some(user("dave")),
        w.now(),
        Duration::hours(hours),
    );
    let id = record.id.clone();
    w.store
        .seed(|s| s.enrollment_codes.insert(id.clone(), record))
        .unwrap();
    Identity::new(user(presenter), AuthMethod::EnrollmentCode(id))
}

/// The code the pending enrollment of `who` expects now.
fn pending_code(w: &MemoryWorld, who: &str) -> TotpCode {
    let pending = w.factors_of(who).unwrap().pending.unwrap();
    let bytes = w
        .vault
        .open(&SealedFor::TotpSecret(user(who)), &pending.sealed)
        .unwrap();
    TotpSecret::from_bytes(bytes)
        .unwrap()
        .code_at(w.now())
        .unwrap()
}

#[tokio::test]
async fn an_enrollment_code_enrolls_its_own_user_once() -> TestResult {
    let w = MemoryWorld::new();
    w.user("bob")?;
    let by_code = enrollment_code(&w, "bob", "bob", 24);
    w.enrollment().start(&by_code, None, &w.meta()).await?;
    w.enrollment()
        .confirm(&by_code, &pending_code(&w, "bob"), None, &w.meta())
        .await?;
    let factors = w.factors_of("bob")?;
    assert!(factors.totp.is_some());
    let AuthMethod::EnrollmentCode(id) = &by_code.method else {
        unreachable!()
    };
    let used = w.state()?.enrollment_codes[id].used_at;
    assert_eq!(used, Some(w.now()), "the code is spent");

    // Spent, it opens nothing more.
    let err = w
        .enrollment()
        .start(&by_code, None, &w.meta())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, FactorError::InvalidCredentials), "{err}");
    Ok(())
}

#[tokio::test]
async fn an_enrollment_code_is_refused_for_another_user_once_used_and_from_its_end() -> TestResult {
    let w = MemoryWorld::new();
    for name in ["bob", "carol"] {
        w.user(name)?;
    }
    let refused = |identity: Identity| {
        let w = w.clone();
        async move {
            let err = w
                .enrollment()
                .start(&identity, None, &w.meta())
                .await
                .err()
                .unwrap();
            assert!(matches!(err, FactorError::InvalidCredentials), "{err}");
            assert!(w.factors_of("bob").unwrap().pending.is_none());
            assert!(w.factors_of("carol").unwrap().pending.is_none());
        }
    };
    // carol's code, presented by bob.
    refused(enrollment_code(&w, "carol", "bob", 24)).await;
    // bob's code, used already (and bob has no authenticator: the code alone says no).
    let used = enrollment_code(&w, "bob", "bob", 24);
    let AuthMethod::EnrollmentCode(id) = &used.method else {
        unreachable!()
    };
    let at = w.now();
    w.store.seed(|s| {
        if let Some(r) = s.enrollment_codes.get_mut(id) {
            r.used_at = Some(at);
        }
    })?;
    refused(used).await;
    // bob's code, at the instant it ends.
    let ending = enrollment_code(&w, "bob", "bob", 1);
    w.clock.advance(Duration::hours(1));
    refused(ending).await;
    Ok(())
}

#[tokio::test]
async fn re_enrolling_is_confirmed_with_the_new_authenticators_code() -> TestResult {
    let w = enrolled();
    let alice = w.identity("alice")?;
    let before = w.factors_of("alice")?.totp.unwrap();
    w.enrollment()
        .start(&alice, Some(&w.code("alice")?), &w.meta())
        .await?;
    w.clock.advance(Duration::seconds(30));
    w.enrollment()
        .confirm(&alice, &pending_code(&w, "alice"), None, &w.meta())
        .await?;
    let after = w.factors_of("alice")?.totp.unwrap();
    assert_ne!(
        after.sealed, before.sealed,
        "the new authenticator replaced the old"
    );
    Ok(())
}
