//! Issuing credentials: what STS is asked, what the record says, fresh codes for high-security
//! targets, and failing closed: no credentials without their record.

use cooper_core::approval::{ApprovalError, ApprovalProof};
use cooper_core::audit::AuditEvent;
use cooper_core::factors::FactorError;
use cooper_core::issue::{CredentialRequest, IssueError};
use cooper_core::memory::{BrokerCall, MemoryWorld};
use cooper_core::model::approvals::ApprovalStatus;
use cooper_core::names::Partition;
use cooper_core::ports::UpstreamKind;
use cooper_core::rate::RateLimit;
use cooper_core::session::BrokerSigning;
use cooper_core::totp::step_of;
use secrecy::ExposeSecret;

use crate::given::*;

/// Account A: `a-ro` (role, 10), `a-fed` (federated user, 10), `a-prod` (role, 100, high
/// security); alice may become all of them, and has an authenticator.
fn issue_world() -> MemoryWorld {
    let w = MemoryWorld::new();
    w.account(A).unwrap();
    w.role_target("a-ro", A, 10).unwrap();
    w.federated_target("a-fed", A, 10).unwrap();
    let mut prod = w.role_target("a-prod", A, 100).unwrap();
    prod.high_security = true;
    w.put_target(prod).unwrap();
    w.user("alice").unwrap();
    w.enroll_totp("alice").unwrap();
    w.grant_account(as_user("alice"), A, 100).unwrap();
    w
}

#[tokio::test]
async fn issued_credentials_are_recorded_with_what_they_are_for() -> TestResult {
    let w = issue_world();
    let issued = w
        .issuer()
        .issue(w.identity("alice")?, &ask("a-ro"), &w.meta())
        .await?;
    assert_eq!(issued.duration.seconds(), 3600);
    let calls = w.broker.calls();
    let [BrokerCall::AssumeRole(call)] = calls.as_slice() else {
        panic!("one AssumeRole: {calls:?}");
    };
    assert_eq!(
        call.role_arn.as_str(),
        "arn:aws:iam::111111111111:role/a-ro"
    );
    assert_eq!(call.session_name.as_str(), "alice");
    assert_eq!(call.source_identity.as_str(), "alice");
    assert_eq!(call.external_id, None);
    assert_eq!(call.duration.seconds(), 3600);

    let record = last_record(&w);
    assert_eq!(record.event, AuditEvent::CredentialsIssued);
    assert_eq!(record.actor, "alice");
    assert_eq!(record.auth, "jwt");
    assert_eq!(
        record.access_key_id.as_deref(),
        Some(issued.credentials.access_key_id.as_str())
    );
    assert_eq!(record.target, Some(target("a-ro")));
    assert_eq!(record.account.as_ref().map(|a| a.as_str()), Some(A));
    assert_eq!(record.duration_seconds, Some(3600));
    assert_eq!(record.expiration, Some(issued.credentials.expiration));
    assert_eq!(
        record.principal_arn.as_deref(),
        Some(issued.credentials.principal_arn.as_str())
    );
    assert_eq!(
        record.reason.as_deref(),
        Some("user alice -> account 111111111111 up to level 100"),
        "the grant that allowed it"
    );
    let text = serde_json::to_string(&record)?;
    assert!(!text.contains(issued.credentials.secret_access_key.expose_secret()));
    assert!(!text.contains(issued.credentials.session_token.expose_secret()));
    Ok(())
}

#[tokio::test]
async fn a_federated_user_target_is_signed_with_its_own_keys() -> TestResult {
    let w = issue_world();
    let issued = w
        .issuer()
        .issue(
            w.identity("alice")?,
            &CredentialRequest {
                duration_seconds: Some(7200),
                ..ask("a-fed")
            },
            &w.meta(),
        )
        .await?;
    let calls = w.broker.calls();
    let [BrokerCall::FederationToken(call)] = calls.as_slice() else {
        panic!("one GetFederationToken: {calls:?}");
    };
    assert_eq!(call.access_key_id, "AKIAFEDERATIONKEYS01");
    assert_eq!(call.partition, Partition::Aws);
    assert_eq!(call.name.as_str(), "alice");
    assert!(call.policy.as_str().contains("s3:ListAllMyBuckets"));
    assert_eq!(call.duration.seconds(), 7200);
    assert_eq!(last_record(&w).duration_seconds, Some(7200));
    assert_eq!(issued.duration.seconds(), 7200);
    Ok(())
}

#[tokio::test]
async fn durations_stay_within_what_the_target_and_sts_allow() -> TestResult {
    let w = issue_world();
    for bad in [899, 3601] {
        let err = w
            .issuer()
            .issue(
                w.identity("alice")?,
                &CredentialRequest {
                    duration_seconds: Some(bad),
                    ..ask("a-ro")
                },
                &w.meta(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, IssueError::InvalidDuration(_)),
            "{bad}: {err}"
        );
    }
    let mut long = w.role_target("a-long", A, 10)?;
    long.max_duration_seconds = 43_200;
    w.put_target(long)?;
    let err = w
        .issuer_with(BrokerSigning::RoleChain, None)
        .issue(
            w.identity("alice")?,
            &CredentialRequest {
                duration_seconds: Some(7200),
                ..ask("a-long")
            },
            &w.meta(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, IssueError::InvalidDuration(_)),
        "role chaining: {err}"
    );
    assert!(w.broker.calls().is_empty());
    assert!(w.audit()?.is_empty(), "bad input is not audited");
    Ok(())
}

#[tokio::test]
async fn it_fails_closed_when_the_record_cannot_be_written() -> TestResult {
    let w = issue_world();
    let before = w.state()?;
    w.store.fail_next_commits(1)?;
    let err = w
        .issuer()
        .issue(w.identity("alice")?, &ask("a-ro"), &w.meta())
        .await
        .unwrap_err();
    assert!(matches!(err, IssueError::AuditUnavailable(_)), "{err}");
    assert_eq!(w.broker.calls().len(), 1, "STS made credentials");
    assert_eq!(w.broker.issued().len(), 1);
    nothing_written(&w, &before);
    Ok(())
}

#[tokio::test]
async fn a_code_spent_by_another_request_meanwhile_withholds_the_credentials() -> TestResult {
    let w = issue_world();
    let step = step_of(w.now());
    w.store.before_next_commit(move |s| {
        if let Some(t) = s
            .factors
            .get_mut(&user("alice"))
            .and_then(|f| f.totp.as_mut())
        {
            t.last_step = step;
        }
    })?;
    let request = CredentialRequest {
        totp: Some(w.code("alice")?),
        ..ask("a-prod")
    };
    let err = w
        .issuer()
        .issue(w.identity("alice")?, &request, &w.meta())
        .await
        .unwrap_err();
    assert!(
        matches!(err, IssueError::SecondFactor(FactorError::Replayed)),
        "{err}"
    );
    let made = w.broker.issued();
    assert_eq!(made.len(), 1);
    assert!(records(&w, AuditEvent::CredentialsIssued).is_empty());
    let denied = last_record(&w);
    assert_eq!(denied.event, AuditEvent::CredentialsDenied);
    assert_eq!(denied.reason.as_deref(), Some("totp_replayed"));
    assert_eq!(
        denied.access_key_id.as_deref(),
        Some(made[0].as_str()),
        "whoever asks who holds the key learns nobody does"
    );
    assert_eq!(denied.expiration, None);
    Ok(())
}

#[tokio::test]
async fn an_approval_used_by_another_request_meanwhile_withholds_the_credentials() -> TestResult {
    let w = issue_world();
    w.user("carol")?;
    w.enroll_totp("carol")?;
    let mut ro = w.state()?.targets[&target("a-ro")].value.clone();
    ro.approvers = vec![as_user("carol")];
    w.put_target(ro)?;
    let request = w
        .approvals()
        .open(
            w.identity("alice")?,
            &target("a-ro"),
            &cooper_core::names::Reason::parse("routine")?,
            &w.meta(),
        )
        .await?;
    w.approvals()
        .approve(
            &request.id,
            w.identity("carol")?,
            &w.code("carol")?,
            &w.meta(),
        )
        .await?;
    let id = request.id.clone();
    w.store.before_next_commit(move |s| {
        if let Some(r) = s.approvals.get_mut(&id) {
            r.status = ApprovalStatus::Used;
        }
    })?;
    let err = w
        .issuer()
        .issue(
            w.identity("alice")?,
            &CredentialRequest {
                approval: Some(ApprovalProof::Approved(request.id.clone())),
                ..ask("a-ro")
            },
            &w.meta(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, IssueError::Approval(ApprovalError::Used)),
        "{err}"
    );
    assert_eq!(last_record(&w).reason.as_deref(), Some("approval_used"));
    assert!(records(&w, AuditEvent::CredentialsIssued).is_empty());
    Ok(())
}

#[tokio::test]
async fn two_issuances_racing_with_one_code_hand_out_one_set() -> TestResult {
    let w = issue_world();
    let request = CredentialRequest {
        totp: Some(w.code("alice")?),
        ..ask("a-prod")
    };
    let issuer = w.issuer();
    let alice = w.identity("alice")?;
    w.store.interleave(true)?;
    let (a, b) = futures_util::future::join(
        issuer.issue(alice.clone(), &request, &w.meta()),
        issuer.issue(alice, &request, &w.meta()),
    )
    .await;
    w.store.interleave(false)?;
    assert_eq!(u8::from(a.is_ok()) + u8::from(b.is_ok()), 1, "{a:?} {b:?}");
    assert_eq!(w.broker.issued().len(), 2, "both got as far as STS");
    assert_eq!(records(&w, AuditEvent::CredentialsIssued).len(), 1);
    assert_eq!(records(&w, AuditEvent::CredentialsDenied).len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_high_security_target_needs_a_fresh_code_which_is_spent() -> TestResult {
    let w = issue_world();
    let issuer = w.issuer();
    let err = issuer
        .issue(w.identity("alice")?, &ask("a-prod"), &w.meta())
        .await
        .unwrap_err();
    assert!(matches!(err, IssueError::TotpRequired), "{err}");
    assert_eq!(last_record(&w).reason.as_deref(), Some("totp_required"));

    let with = |code| CredentialRequest {
        totp: Some(code),
        ..ask("a-prod")
    };
    let err = issuer
        .issue(
            w.identity("alice")?,
            &with(w.wrong_code("alice")?),
            &w.meta(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        last_record(&w).reason.as_deref(),
        Some("totp_invalid"),
        "{err}"
    );
    assert!(
        w.broker.calls().is_empty(),
        "no STS call before the code is right"
    );

    let code = w.code("alice")?;
    issuer
        .issue(w.identity("alice")?, &with(code.clone()), &w.meta())
        .await?;
    assert_eq!(
        w.factors_of("alice")?.totp.unwrap().last_step,
        step_of(w.now())
    );
    let err = issuer
        .issue(w.identity("alice")?, &with(code), &w.meta())
        .await
        .unwrap_err();
    assert_eq!(
        last_record(&w).reason.as_deref(),
        Some("totp_replayed"),
        "{err}"
    );
    assert_eq!(w.broker.calls().len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_console_link_comes_with_the_credentials() -> TestResult {
    let w = issue_world();
    let issued = w
        .issuer()
        .issue(
            w.identity("alice")?,
            &CredentialRequest {
                console: Some(None),
                ..ask("a-ro")
            },
            &w.meta(),
        )
        .await?;
    let url = issued.console_url.unwrap();
    assert!(
        url.expose_secret()
            .starts_with("https://signin.aws.amazon.com/")
    );
    let calls = w.console.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].session_seconds, Some(3600));
    assert_eq!(
        calls[0].destination,
        "https://eu-west-1.console.aws.amazon.com/console/home?region=eu-west-1"
    );
    let record = last_record(&w);
    assert_eq!(record.event, AuditEvent::ConsoleIssued);
    assert!(!serde_json::to_string(&record)?.contains(url.expose_secret()));

    w.issuer()
        .issue(
            w.identity("alice")?,
            &CredentialRequest {
                console: Some(None),
                ..ask("a-fed")
            },
            &w.meta(),
        )
        .await?;
    assert_eq!(
        w.console.calls()[1].session_seconds,
        None,
        "federation tokens carry their own duration"
    );

    let err = w
        .issuer()
        .issue(
            w.identity("alice")?,
            &CredentialRequest {
                console: Some(Some("https://evil.example/".into())),
                ..ask("a-ro")
            },
            &w.meta(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, IssueError::Invalid(_)), "{err}");
    Ok(())
}

#[tokio::test]
async fn sts_failing_is_an_upstream_error_and_nothing_is_recorded() -> TestResult {
    let w = issue_world();
    w.broker.fail(Some(UpstreamKind::Throttled));
    let err = w
        .issuer()
        .issue(w.identity("alice")?, &ask("a-ro"), &w.meta())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, IssueError::Upstream(e) if e.kind == UpstreamKind::Throttled),
        "{err}"
    );
    assert!(w.audit()?.is_empty());
    Ok(())
}

#[tokio::test]
async fn each_user_is_rate_limited() -> TestResult {
    let w = issue_world();
    let issuer = w.issuer_with(BrokerSigning::IamUser, Some(RateLimit::per_minute(2)));
    for _ in 0..2 {
        issuer
            .issue(w.identity("alice")?, &ask("a-ro"), &w.meta())
            .await?;
    }
    let err = issuer
        .issue(w.identity("alice")?, &ask("a-ro"), &w.meta())
        .await
        .unwrap_err();
    assert!(matches!(err, IssueError::Rate(_)), "{err}");
    assert_eq!(w.broker.calls().len(), 2);
    w.clock.advance(time::Duration::minutes(1));
    issuer
        .issue(w.identity("alice")?, &ask("a-ro"), &w.meta())
        .await?;
    Ok(())
}

#[tokio::test]
async fn an_issuance_costs_as_many_reads_whatever_the_size_of_the_directory() -> TestResult {
    let count = |extra: usize| async move {
        let w = issue_world();
        for i in 0..extra {
            w.user(&format!("user{i:04}")).unwrap();
            w.role_target(&format!("t{i:04}"), A, 10).unwrap();
            w.grant_account(as_user(&format!("user{i:04}")), A, 10)
                .unwrap();
        }
        let before = w.store.reads();
        w.issuer()
            .issue(w.identity("alice").unwrap(), &ask("a-ro"), &w.meta())
            .await
            .unwrap();
        w.store.reads() - before
    };
    assert_eq!(count(0).await, count(300).await);
    Ok(())
}

#[tokio::test]
async fn no_credentials_without_the_console_link_that_was_asked_for() -> TestResult {
    let w = issue_world();
    w.console.fail(true);
    let err = w
        .issuer()
        .issue(
            w.identity("alice")?,
            &CredentialRequest {
                console: Some(None),
                ..ask("a-ro")
            },
            &w.meta(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, IssueError::Upstream(_)), "{err}");
    assert_eq!(w.broker.issued().len(), 1, "STS made credentials");
    assert!(
        w.audit()?.is_empty(),
        "nothing is recorded, and nothing handed out"
    );
    Ok(())
}
