//! Sessions: local sign-in (password and a fresh code) and sessions made from an identity
//! provider's token. Strangers cannot lock a user out; refusals answer alike.

use std::net::{IpAddr, Ipv4Addr};

use cooper_core::audit::AuditEvent;
use cooper_core::factors::FactorError;
use cooper_core::memory::{MemoryWorld, SESSION_LIFETIME};
use cooper_core::model::factors::{Guard, LOCKOUT, MAX_FAILURES};
use cooper_core::rate::RateLimit;
use cooper_core::sessions::{LOCAL_SIGNIN, REFUSAL_FLOOR, SessionError};
use cooper_core::totp::{TotpCode, step_of};
use secrecy::{ExposeSecret, SecretString};
use time::Duration;

use crate::given::*;

const PASSWORD: &str = "correct horse battery";

/// alice: password and authenticator.
fn signed_up() -> MemoryWorld {
    let w = MemoryWorld::new();
    w.user("alice").unwrap();
    w.enroll_totp("alice").unwrap();
    w.password("alice", PASSWORD).unwrap();
    w
}

async fn login(
    w: &MemoryWorld,
    who: &str,
    password: &str,
    code: &TotpCode,
) -> Result<cooper_core::sessions::Session, SessionError> {
    w.local_login()
        .login(
            &user(who),
            &SecretString::from(password.to_owned()),
            code,
            &w.meta(),
        )
        .await
}

fn guard(w: &MemoryWorld) -> Guard {
    w.factors_of("alice").unwrap().guard.unwrap_or_default()
}

#[tokio::test]
async fn a_user_signs_in_with_password_and_code() -> TestResult {
    let w = signed_up();
    w.group("ops")?;
    w.member("alice", "ops")?;
    let session = login(&w, "alice", PASSWORD, &w.code("alice")?).await?;
    assert_eq!(session.user, user("alice"));
    assert_eq!(session.expires_at, w.now() + SESSION_LIFETIME);
    assert!(session.idp.is_none());
    assert!(
        session
            .token
            .expose_secret()
            .starts_with("memory-session.alice.")
    );
    let claims = w.signer.signed();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].user, user("alice"));
    // Her groups ride along as a hint for the decision's early reads; nothing is asserted.
    assert_eq!(claims[0].hinted_groups, [group("ops")]);
    assert!(claims[0].groups.is_empty());

    let record = last_record(&w);
    assert_eq!(record.event, AuditEvent::SessionCreated);
    assert_eq!(record.actor, "alice");
    assert_eq!(record.auth, LOCAL_SIGNIN);
    assert_eq!(record.expiration, Some(session.expires_at));
    assert_eq!(
        w.factors_of("alice")?.totp.unwrap().last_step,
        step_of(w.now()),
        "the code is spent with the session"
    );
    assert!(w.pacer.holds().is_empty(), "a success is not held back");

    let err = login(&w, "alice", PASSWORD, &w.code("alice")?)
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), "totp_replayed");
    Ok(())
}

#[tokio::test]
async fn unknown_user_wrong_password_and_wrong_code_answer_alike() -> TestResult {
    let w = signed_up();
    w.user("bob")?; // no password, no authenticator
    let mut disabled = w.user("dora")?;
    w.enroll_totp("dora")?;
    w.password("dora", PASSWORD)?;
    disabled.enabled = false;
    w.put_user(disabled)?;

    let attempts = [
        login(&w, "ghost", PASSWORD, &w.code("alice")?).await,
        login(&w, "alice", "wrong password!!", &w.code("alice")?).await,
        login(&w, "alice", PASSWORD, &w.wrong_code("alice")?).await,
        login(&w, "bob", PASSWORD, &w.code("alice")?).await,
        login(&w, "dora", PASSWORD, &w.code("dora")?).await,
    ];
    for attempt in &attempts {
        let err = attempt.as_ref().err().unwrap();
        assert_eq!(err.code(), "invalid_credentials", "{err}");
        assert_eq!(err.to_string(), FactorError::InvalidCredentials.to_string());
    }
    assert_eq!(
        w.pacer.holds(),
        vec![REFUSAL_FLOOR; attempts.len()],
        "every refusal is held to the floor"
    );
    assert!(w.signer.signed().is_empty());
    Ok(())
}

#[tokio::test]
async fn a_wrong_password_never_counts_against_the_user() -> TestResult {
    let w = signed_up();
    for _ in 0..(2 * MAX_FAILURES) {
        let _ = login(&w, "alice", "not the password", &w.wrong_code("alice")?).await;
    }
    assert_eq!(
        guard(&w),
        Guard::default(),
        "strangers cannot lock alice out"
    );
    login(&w, "alice", PASSWORD, &w.code("alice")?).await?;
    Ok(())
}

#[tokio::test]
async fn a_wrong_code_after_the_right_password_is_one_of_the_users_failures() -> TestResult {
    let w = signed_up();
    let err = login(&w, "alice", PASSWORD, &w.wrong_code("alice")?)
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), "invalid_credentials");
    assert_eq!(guard(&w).failures, 1);
    let refused = last_record(&w);
    assert_eq!(refused.event, AuditEvent::SessionRefused);
    assert_eq!(refused.reason.as_deref(), Some("invalid_credentials"));
    assert_eq!(
        w.state()?.counters.values().sum::<u32>(),
        0,
        "the address is not counted: the caller knew the password"
    );
    Ok(())
}

#[tokio::test]
async fn a_lock_is_told_only_to_whoever_gives_the_right_password() -> TestResult {
    let w = signed_up();
    for _ in 0..MAX_FAILURES {
        let _ = login(&w, "alice", PASSWORD, &w.wrong_code("alice")?).await;
    }
    assert_eq!(guard(&w).failures, MAX_FAILURES);

    let stranger = login(&w, "alice", "not the password", &w.code("alice")?)
        .await
        .err()
        .unwrap();
    assert_eq!(stranger.code(), "invalid_credentials");
    let knows = login(&w, "alice", PASSWORD, &w.code("alice")?)
        .await
        .err()
        .unwrap();
    assert_eq!(knows.code(), "locked_out");
    assert!(matches!(
        knows,
        SessionError::Factor(FactorError::LockedOut { .. })
    ));

    w.clock.advance(LOCKOUT);
    login(&w, "alice", PASSWORD, &w.code("alice")?).await?;
    assert_eq!(guard(&w).failures, 0);
    Ok(())
}

#[tokio::test]
async fn failed_sign_ins_are_counted_per_address_and_audited_at_the_bounds() -> TestResult {
    let w = signed_up();
    let limit = RateLimit {
        requests: 4,
        window_seconds: 900,
    };
    let login_from = |ip: [u8; 4], password: &'static str| {
        let w = w.clone();
        async move {
            let code = w.code("alice").unwrap();
            w.local_login_with(Some(limit))
                .login(
                    &user("alice"),
                    &SecretString::from(password.to_owned()),
                    &code,
                    &w.meta_from(IpAddr::V4(Ipv4Addr::from(ip))),
                )
                .await
        }
    };
    let attacker = [198, 51, 100, 7];
    for _ in 0..limit.requests {
        let err = login_from(attacker, "guess").await.err().unwrap();
        assert_eq!(err.code(), "invalid_credentials");
    }
    let refused = records(&w, AuditEvent::SessionRefused);
    let reasons: Vec<&str> = refused.iter().filter_map(|r| r.reason.as_deref()).collect();
    assert_eq!(
        reasons,
        ["invalid_credentials", "signin_failures_limit"],
        "the first failure and the one that fills the window are recorded, the others counted"
    );

    // The address is refused before anything is compared, even with the right password.
    let audited = w.audit()?.len();
    let err = login_from(attacker, PASSWORD).await.err().unwrap();
    assert_eq!(err.code(), "rate_limited");
    assert_eq!(w.audit()?.len(), audited, "not audited");
    assert_eq!(guard(&w), Guard::default());

    // Another address is not affected, and the window passes.
    login_from([192, 0, 2, 99], PASSWORD).await?;
    w.clock.advance(Duration::seconds(900));
    login_from(attacker, PASSWORD).await?;
    Ok(())
}

#[tokio::test]
async fn the_production_limit_bounds_the_audit_of_a_guessing_address() -> TestResult {
    let w = signed_up();
    let n = cooper_core::sessions::SIGNIN_FAILURES.requests;
    for _ in 0..n + 3 {
        let _ = w
            .local_login()
            .login(
                &user("ghost"),
                &SecretString::from("guess"),
                &TotpCode::parse("123456")?,
                &w.meta(),
            )
            .await;
    }
    assert_eq!(records(&w, AuditEvent::SessionRefused).len(), 2);
    Ok(())
}

#[tokio::test]
async fn a_session_from_an_identity_provider_keeps_its_groups_and_names_it() -> TestResult {
    let w = MemoryWorld::new();
    let session = w
        .session_exchange()
        .exchange(oidc("ivy", &["ops", "eng", "ops"]), &w.meta())
        .await?;
    assert_eq!(session.user, user("ivy"));
    assert_eq!(session.idp.as_deref(), Some("https://idp.example"));
    assert_eq!(session.groups, vec![group("eng"), group("ops")]);
    let claims = &w.signer.signed()[0];
    assert_eq!(claims.groups, session.groups);
    let record = last_record(&w);
    assert_eq!(record.event, AuditEvent::SessionCreated);
    assert_eq!(record.auth, "oidc:https://idp.example");
    assert_eq!(record.expiration, Some(session.expires_at));
    Ok(())
}

/// The directory's groups go into a session as its hint, apart from what the identity provider
/// asserted (already in the session) and only while few.
#[tokio::test]
async fn a_session_hints_the_directory_groups_it_was_signed_with() -> TestResult {
    let w = MemoryWorld::new();
    w.user("ivy")?;
    for name in ["ops", "db"] {
        w.group(name)?;
        w.member("ivy", name)?;
    }
    w.session_exchange()
        .exchange(oidc("ivy", &["ops", "eng"]), &w.meta())
        .await?;
    let claims = &w.signer.signed()[0];
    assert_eq!(claims.groups, [group("eng"), group("ops")]);
    assert_eq!(claims.hinted_groups, [group("db")]);

    for n in 0..cooper_core::catalog::READ_AHEAD_QUERIES {
        let name = format!("team-{n}");
        w.group(&name)?;
        w.member("ivy", &name)?;
    }
    w.session_exchange()
        .exchange(oidc("ivy", &[]), &w.meta())
        .await?;
    assert!(
        w.signer.signed()[1].hinted_groups.is_empty(),
        "too many to hint"
    );
    Ok(())
}

#[tokio::test]
async fn the_directory_still_governs_identity_provider_users() -> TestResult {
    let w = MemoryWorld::new();
    let mut ivy = w.user("ivy")?;
    ivy.enabled = false;
    w.put_user(ivy)?;
    let err = w
        .session_exchange()
        .exchange(oidc("ivy", &["ops"]), &w.meta())
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), "user_disabled");
    assert!(w.signer.signed().is_empty());
    let refused = last_record(&w);
    assert_eq!(refused.event, AuditEvent::SessionRefused);
    assert_eq!(refused.reason.as_deref(), Some("user_disabled"));
    Ok(())
}

#[tokio::test]
async fn no_session_when_it_cannot_be_signed() -> TestResult {
    let w = signed_up();
    w.signer.fail(true);
    let err = login(&w, "alice", PASSWORD, &w.code("alice")?)
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), "internal");
    assert!(records(&w, AuditEvent::SessionCreated).is_empty());
    assert!(
        w.factors_of("alice")?.totp.unwrap().last_step < step_of(w.now()),
        "the code is not spent"
    );
    Ok(())
}
