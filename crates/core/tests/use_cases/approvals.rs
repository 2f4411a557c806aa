//! Second-person approval: who may ask, who may approve (on the list, not the requester, active,
//! with their own fresh code), an approval good once and for a while, inline approvals.

use cooper_core::approval::{APPROVAL_LIFETIME, ApprovalError, ApprovalProof};
use cooper_core::audit::AuditEvent;
use cooper_core::factors::FactorError;
use cooper_core::issue::{CredentialRequest, IssueError};
use cooper_core::memory::MemoryWorld;
use cooper_core::model::approvals::{ApprovalRequest, ApprovalStatus};
use cooper_core::model::factors::MAX_FAILURES;
use cooper_core::names::Reason;
use cooper_core::totp::{TotpCode, step_of};
use futures_util::future::join;

use crate::given::*;

/// Account A: `prod` (level 100) needs carol's or an `approvers` member's approval; `ro` (10)
/// needs none. alice may become both; bob nothing. carol, dave (in `approvers`) and erin (on no
/// list) have authenticators, as has alice.
fn approval_world() -> MemoryWorld {
    let w = MemoryWorld::new();
    w.account(A).unwrap();
    let mut prod = w.role_target("prod", A, 100).unwrap();
    prod.approvers = vec![as_user("carol"), as_group("approvers")];
    w.put_target(prod).unwrap();
    w.role_target("ro", A, 10).unwrap();
    w.group("approvers").unwrap();
    for name in ["alice", "bob", "carol", "dave", "erin"] {
        w.user(name).unwrap();
    }
    for name in ["alice", "carol", "dave", "erin"] {
        w.enroll_totp(name).unwrap();
    }
    w.member("dave", "approvers").unwrap();
    w.grant_account(as_user("alice"), A, 100).unwrap();
    w
}

fn reason() -> Reason {
    Reason::parse("deploy the hotfix").unwrap()
}

async fn open(
    w: &MemoryWorld,
    who: &str,
    target_name: &str,
) -> Result<ApprovalRequest, ApprovalError> {
    w.approvals()
        .open(
            w.identity(who).unwrap(),
            &target(target_name),
            &reason(),
            &w.meta(),
        )
        .await
}

async fn approve(
    w: &MemoryWorld,
    request: &ApprovalRequest,
    who: &str,
    code: &TotpCode,
) -> Result<ApprovalRequest, ApprovalError> {
    w.approvals()
        .approve(&request.id, w.identity(who).unwrap(), code, &w.meta())
        .await
}

fn with_approval(target_name: &str, request: &ApprovalRequest) -> CredentialRequest {
    CredentialRequest {
        approval: Some(ApprovalProof::Approved(request.id.clone())),
        ..ask(target_name)
    }
}

fn stored(w: &MemoryWorld, request: &ApprovalRequest) -> ApprovalRequest {
    w.state().unwrap().approvals[&request.id].clone()
}

#[tokio::test]
async fn only_a_granted_requester_may_ask() -> TestResult {
    let w = approval_world();
    let err = open(&w, "bob", "prod").await.unwrap_err();
    assert_eq!(err.code(), "not_granted");
    let refused = last_record(&w);
    assert_eq!(refused.event, AuditEvent::ApprovalRefused);
    assert_eq!(refused.reason.as_deref(), Some("not_granted"));
    assert!(w.state()?.approvals.is_empty());

    let err = open(&w, "alice", "ro").await.unwrap_err();
    assert!(matches!(err, ApprovalError::NotRequired), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_request_is_opened_approved_and_used_once() -> TestResult {
    let w = approval_world();
    let request = open(&w, "alice", "prod").await?;
    assert_eq!(request.status, ApprovalStatus::Pending);
    assert_eq!(request.expires_at, w.now() + APPROVAL_LIFETIME);
    assert_eq!(stored(&w, &request), request);
    let opened = last_record(&w);
    assert_eq!(opened.event, AuditEvent::ApprovalRequested);
    assert_eq!(opened.approval_id, Some(request.id.to_string()));
    assert_eq!(opened.account.as_ref().map(|a| a.as_str()), Some(A));

    // Not usable while pending.
    let err = w
        .issuer()
        .issue(
            w.identity("alice")?,
            &with_approval("prod", &request),
            &w.meta(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, IssueError::Approval(ApprovalError::Pending)),
        "{err}"
    );

    let approved = approve(&w, &request, "carol", &w.code("carol")?).await?;
    assert_eq!(approved.status, ApprovalStatus::Approved);
    assert_eq!(approved.approved_by, Some(user("carol")));
    assert_eq!(stored(&w, &request), approved);
    let record = last_record(&w);
    assert_eq!(record.event, AuditEvent::ApprovalApproved);
    assert_eq!(record.approved_by.as_deref(), Some("carol"));
    assert_eq!(
        w.factors_of("carol")?.totp.unwrap().last_step,
        step_of(w.now()),
        "the approver's code is spent with the approval"
    );

    let issued = w
        .issuer()
        .issue(
            w.identity("alice")?,
            &with_approval("prod", &request),
            &w.meta(),
        )
        .await?;
    assert_eq!(issued.approved_by, Some(user("carol")));
    let record = last_record(&w);
    assert_eq!(record.event, AuditEvent::CredentialsIssued);
    assert_eq!(record.approved_by.as_deref(), Some("carol"));
    assert_eq!(record.approval_id, Some(request.id.to_string()));
    assert_eq!(stored(&w, &request).status, ApprovalStatus::Used);

    let err = w
        .issuer()
        .issue(
            w.identity("alice")?,
            &with_approval("prod", &request),
            &w.meta(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, IssueError::Approval(ApprovalError::Used)),
        "{err}"
    );
    assert_eq!(last_record(&w).reason.as_deref(), Some("approval_used"));

    let err = approve(&w, &request, "dave", &w.code("dave")?)
        .await
        .unwrap_err();
    assert!(matches!(err, ApprovalError::AlreadyDecided), "{err}");
    Ok(())
}

#[tokio::test]
async fn nobody_approves_their_own_request() -> TestResult {
    let w = approval_world();
    let mut prod = w.state()?.targets[&target("prod")].value.clone();
    prod.approvers.push(as_user("alice"));
    w.put_target(prod)?;
    let request = open(&w, "alice", "prod").await?;
    let err = approve(&w, &request, "alice", &w.code("alice")?)
        .await
        .unwrap_err();
    assert!(matches!(err, ApprovalError::SelfApproval), "{err}");
    assert_eq!(last_record(&w).reason.as_deref(), Some("self_approval"));
    assert_eq!(stored(&w, &request).status, ApprovalStatus::Pending);

    let inline = CredentialRequest {
        approval: Some(ApprovalProof::Inline {
            approver: user("alice"),
            code: w.code("alice")?,
        }),
        ..ask("prod")
    };
    let err = w
        .issuer()
        .issue(w.identity("alice")?, &inline, &w.meta())
        .await
        .unwrap_err();
    assert!(
        matches!(err, IssueError::Approval(ApprovalError::SelfApproval)),
        "{err}"
    );
    assert!(w.broker.calls().is_empty());
    Ok(())
}

#[tokio::test]
async fn the_approver_must_be_on_the_list_by_name_or_group() -> TestResult {
    let w = approval_world();
    let request = open(&w, "alice", "prod").await?;
    let err = approve(&w, &request, "erin", &w.code("erin")?)
        .await
        .unwrap_err();
    assert!(matches!(err, ApprovalError::NotAnApprover), "{err}");
    assert_eq!(
        w.factors_of("erin")?.totp.unwrap().last_step,
        step_of(w.now()) - 10,
        "an approver not on the list spends no code"
    );
    approve(&w, &request, "dave", &w.code("dave")?).await?;
    Ok(())
}

#[tokio::test]
async fn a_disabled_approver_approves_nothing() -> TestResult {
    let w = approval_world();
    let request = open(&w, "alice", "prod").await?;
    let mut carol = w.state()?.users[&user("carol")].value.clone();
    carol.enabled = false;
    w.put_user(carol)?;
    let err = approve(&w, &request, "carol", &w.code("carol")?)
        .await
        .unwrap_err();
    assert!(matches!(err, ApprovalError::NotAnApprover), "{err}");

    assert_eq!(stored(&w, &request).status, ApprovalStatus::Pending);
    Ok(())
}

#[tokio::test]
async fn the_approver_gives_their_own_fresh_code() -> TestResult {
    let w = approval_world();
    let request = open(&w, "alice", "prod").await?;
    let err = approve(&w, &request, "carol", &w.code("alice")?)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ApprovalError::ApproverFactor(FactorError::InvalidCode)),
        "{err}"
    );
    assert_eq!(err.code(), "approver_totp_invalid");
    assert_eq!(w.factors_of("carol")?.guard.unwrap().failures, 1);

    let code = w.code("carol")?;
    approve(&w, &request, "carol", &code).await?;
    let second = open(&w, "alice", "prod").await?;
    let err = approve(&w, &second, "carol", &code).await.unwrap_err();
    assert_eq!(err.code(), "approver_totp_replayed");
    Ok(())
}

#[tokio::test]
async fn requests_and_approvals_expire() -> TestResult {
    let w = approval_world();
    let late = open(&w, "alice", "prod").await?;
    let used_late = open(&w, "alice", "prod").await?;
    approve(&w, &used_late, "carol", &w.code("carol")?).await?;
    w.clock.advance(APPROVAL_LIFETIME);

    let err = approve(&w, &late, "dave", &w.code("dave")?)
        .await
        .unwrap_err();
    assert!(matches!(err, ApprovalError::Expired), "{err}");
    let err = w
        .issuer()
        .issue(
            w.identity("alice")?,
            &with_approval("prod", &used_late),
            &w.meta(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, IssueError::Approval(ApprovalError::Expired)),
        "{err}"
    );
    assert!(w.broker.calls().is_empty());
    Ok(())
}

#[tokio::test]
async fn an_approval_is_for_its_requester_and_target_only() -> TestResult {
    let w = approval_world();
    let mut other = w.role_target("prod-db", A, 100)?;
    other.approvers = vec![as_user("carol")];
    w.put_target(other)?;
    w.grant_account(as_user("bob"), A, 100)?;
    let request = open(&w, "alice", "prod").await?;
    approve(&w, &request, "carol", &w.code("carol")?).await?;

    let err = w
        .issuer()
        .issue(
            w.identity("bob")?,
            &with_approval("prod", &request),
            &w.meta(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, IssueError::Approval(ApprovalError::NotFound)),
        "{err}"
    );
    let err = w
        .issuer()
        .issue(
            w.identity("alice")?,
            &with_approval("prod-db", &request),
            &w.meta(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, IssueError::Approval(ApprovalError::Mismatch)),
        "{err}"
    );
    assert_eq!(stored(&w, &request).status, ApprovalStatus::Approved);
    Ok(())
}

#[tokio::test]
async fn a_target_with_approvers_refuses_issuance_without_an_approval() -> TestResult {
    let w = approval_world();
    let err = w
        .issuer()
        .issue(w.identity("alice")?, &ask("prod"), &w.meta())
        .await
        .unwrap_err();
    assert!(
        matches!(err, IssueError::Approval(ApprovalError::Required)),
        "{err}"
    );
    assert_eq!(last_record(&w).reason.as_deref(), Some("approval_required"));
    assert!(w.broker.calls().is_empty());
    Ok(())
}

#[tokio::test]
async fn an_inline_approval_spends_the_approvers_code_with_the_issuance() -> TestResult {
    let w = approval_world();
    let code = w.code("dave")?;
    let inline = |code: TotpCode| CredentialRequest {
        approval: Some(ApprovalProof::Inline {
            approver: user("dave"),
            code,
        }),
        ..ask("prod")
    };
    let issued = w
        .issuer()
        .issue(w.identity("alice")?, &inline(code.clone()), &w.meta())
        .await?;
    assert_eq!(issued.approved_by, Some(user("dave")));
    let record = last_record(&w);
    assert_eq!(record.approved_by.as_deref(), Some("dave"));
    assert_eq!(record.approval_id, None);
    assert_eq!(
        w.factors_of("dave")?.totp.unwrap().last_step,
        step_of(w.now())
    );

    let err = w
        .issuer()
        .issue(w.identity("alice")?, &inline(code), &w.meta())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        ApprovalError::ApproverFactor(FactorError::Replayed).to_string()
    );
    assert_eq!(
        last_record(&w).reason.as_deref(),
        Some("approver_totp_replayed")
    );

    let err = w
        .issuer()
        .issue(
            w.identity("alice")?,
            &inline(w.wrong_code("dave")?),
            &w.meta(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        last_record(&w).reason.as_deref(),
        Some("approver_totp_invalid"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn two_approvers_racing_one_wins() -> TestResult {
    let w = approval_world();
    let request = open(&w, "alice", "prod").await?;
    let (carol, dave) = (w.code("carol")?, w.code("dave")?);
    w.store.interleave(true)?;
    let (a, b) = join(
        approve(&w, &request, "carol", &carol),
        approve(&w, &request, "dave", &dave),
    )
    .await;
    w.store.interleave(false)?;
    let lost = match (a, b) {
        (Ok(_), Err(e)) | (Err(e), Ok(_)) => e,
        other => panic!("exactly one may approve: {other:?}"),
    };
    assert!(matches!(lost, ApprovalError::AlreadyDecided), "{lost}");
    assert_eq!(records(&w, AuditEvent::ApprovalApproved).len(), 1);
    // The loser's code was checked but its claim was never written.
    let spent = [w.factors_of("carol")?, w.factors_of("dave")?]
        .iter()
        .filter(|f| f.totp.as_ref().unwrap().last_step == step_of(w.now()))
        .count();
    assert_eq!(spent, 1);
    Ok(())
}

#[tokio::test]
async fn a_request_is_seen_by_its_requester_and_its_approvers_only() -> TestResult {
    let w = approval_world();
    let request = open(&w, "alice", "prod").await?;
    let approvals = w.approvals();
    for who in ["alice", "carol", "dave"] {
        approvals.view(&request.id, w.identity(who)?).await?;
    }
    for who in ["bob", "erin", "ghost"] {
        let err = approvals
            .view(&request.id, w.identity(who)?)
            .await
            .unwrap_err();
        assert!(matches!(err, ApprovalError::NotFound), "{who}: {err}");
    }
    Ok(())
}

#[tokio::test]
async fn a_requester_cannot_lock_an_approver_out_with_inline_guesses() -> TestResult {
    let w = approval_world();
    for _ in 0..MAX_FAILURES {
        let guess = CredentialRequest {
            approval: Some(ApprovalProof::Inline {
                approver: user("carol"),
                code: w.wrong_code("carol")?,
            }),
            ..ask("prod")
        };
        let err = w
            .issuer()
            .issue(w.identity("alice")?, &guess, &w.meta())
            .await
            .unwrap_err();
        // Every guess is a wrong code, the last too: the lock it sets is alice's, not the
        // approver's, and naming a lock would say otherwise.
        assert!(
            matches!(
                err,
                IssueError::Approval(ApprovalError::ApproverFactor(FactorError::InvalidCode))
            ),
            "{err}"
        );
    }
    let alice = w.factors_of("alice")?.guard.unwrap_or_default();
    assert!(
        alice.locked_until(w.now()).is_some(),
        "the guesses count against alice"
    );
    // carol gave none of those codes; she can still approve with her own.
    let request = open(&w, "alice", "prod").await?;
    approve(&w, &request, "carol", &w.code("carol")?).await?;
    Ok(())
}

#[tokio::test]
async fn an_api_token_cannot_approve() -> TestResult {
    let w = approval_world();
    let request = open(&w, "alice", "prod").await?;
    let token = cooper_core::access::Identity::new(
        user("carol"),
        cooper_core::access::AuthMethod::ApiToken(cooper_core::token::TokenId::parse(
            "0123456789abcdef",
        )?),
    );
    let result = w
        .approvals()
        .approve(&request.id, token, &w.code("carol")?, &w.meta())
        .await;
    assert!(result.is_err(), "a script's token may not approve");
    assert_eq!(stored(&w, &request).status, ApprovalStatus::Pending);
    Ok(())
}

#[tokio::test]
async fn approvers_see_what_asks_them_and_requesters_their_own() -> TestResult {
    let w = approval_world();
    let request = open(&w, "alice", "prod").await?;
    let ids = |found: Vec<ApprovalRequest>| found.into_iter().map(|r| r.id).collect::<Vec<_>>();
    // carol by name, dave through `approvers`; erin is on no list.
    for who in ["carol", "dave"] {
        let asking = w.approvals().asking(w.identity(who)?).await?;
        assert_eq!(ids(asking), std::slice::from_ref(&request.id), "{who}");
    }
    assert!(w.approvals().asking(w.identity("erin")?).await?.is_empty());
    // The requester's own list has it; what asks her does not.
    let mine = w.approvals().mine(w.identity("alice")?).await?;
    assert_eq!(ids(mine), std::slice::from_ref(&request.id));
    assert!(w.approvals().asking(w.identity("alice")?).await?.is_empty());
    assert!(w.approvals().mine(w.identity("carol")?).await?.is_empty());
    Ok(())
}
