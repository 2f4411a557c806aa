//! Just-in-time access: who may ask (anyone signed in, for what a policy makes requestable and
//! they do not hold), who may approve (the policy's approvers, not the requester, with their own
//! fresh code), the time-bound grant approval gives (enforced by the ordinary decision, ended by
//! time or early), and lapsed, denied and withdrawn requests.

use cooper_core::access::Denial;
use cooper_core::audit::AuditEvent;
use cooper_core::factors::FactorError;
use cooper_core::issue::IssueError;
use cooper_core::memory::MemoryWorld;
use cooper_core::model::requests::{
    AccessRequest, RequestPolicy, RequestState, RequestStatus, RequestedAccess,
};
use cooper_core::model::{Grant, GrantScope};
use cooper_core::names::{AccountId, Level, Reason};
use cooper_core::requests::{AccessAsk, DEFAULT_REQUEST_LIFETIME, RequestError, RequestRole};
use futures_util::future::join;
use time::Duration;

use crate::given::*;

/// Account A: `prod` (level 100) may be requested from carol or a member of `oncall` (dave),
/// for up to 4 hours; A's targets up to level 50 (`ro` at 10, `mid` at 50) from erin; `ops`
/// (60) not at all. Account B allows no requests. alice and bob hold nothing; frank holds `ro`.
/// carol, dave and erin (and alice and bob) have authenticators.
fn jit_world() -> MemoryWorld {
    let w = MemoryWorld::new();
    w.account(A).unwrap();
    w.account(B).unwrap();
    w.role_target("prod", A, 100).unwrap();
    w.role_target("ro", A, 10).unwrap();
    w.role_target("mid", A, 50).unwrap();
    w.role_target("ops", A, 60).unwrap();
    w.role_target("b-ro", B, 10).unwrap();
    w.group("oncall").unwrap();
    for name in ["alice", "bob", "carol", "dave", "erin", "frank"] {
        w.user(name).unwrap();
    }
    for name in ["alice", "bob", "carol", "dave", "erin"] {
        w.enroll_totp(name).unwrap();
    }
    w.member("dave", "oncall").unwrap();
    w.requestable_target(
        "prod",
        vec![as_user("carol"), as_group("oncall")],
        Some(4 * 3600),
    )
    .unwrap();
    w.requestable_account(A, vec![as_user("erin")], Some(50))
        .unwrap();
    w.grant_target(as_user("frank"), "ro").unwrap();
    w
}

fn reason() -> Reason {
    Reason::parse("incident 4711: the payments queue is stuck").unwrap()
}

fn for_target(name: &str, seconds: Option<u64>) -> AccessAsk {
    AccessAsk {
        access: RequestedAccess::Target(target(name)),
        duration_seconds: seconds,
        reason: reason(),
    }
}

fn for_account(account: &str, level: u32) -> AccessAsk {
    AccessAsk {
        access: RequestedAccess::Account {
            account: AccountId::parse(account).unwrap(),
            level: Level::new(level).unwrap(),
        },
        duration_seconds: None,
        reason: reason(),
    }
}

async fn open(w: &MemoryWorld, who: &str, ask: &AccessAsk) -> Result<AccessRequest, RequestError> {
    w.access_requests()
        .open(w.identity(who).unwrap(), ask, &w.meta())
        .await
}

async fn approve(
    w: &MemoryWorld,
    request: &AccessRequest,
    who: &str,
    seconds: Option<u64>,
) -> Result<AccessRequest, RequestError> {
    // A fresh step, so that the approver's code was never used.
    w.clock.advance(Duration::seconds(30));
    let code = w.code(who).unwrap();
    w.access_requests()
        .approve(
            &request.id,
            w.identity(who).unwrap(),
            &code,
            seconds,
            &w.meta(),
        )
        .await
}

async fn become_(w: &MemoryWorld, who: &str, target_name: &str) -> Result<u32, IssueError> {
    let issued = w
        .issuer()
        .issue(w.identity(who).unwrap(), &ask(target_name), &w.meta())
        .await?;
    Ok(issued.duration.seconds())
}

fn stored(w: &MemoryWorld, request: &AccessRequest) -> AccessRequest {
    w.state().unwrap().access_requests[&request.id].clone()
}

fn refused_with(w: &MemoryWorld, code: &str) {
    let r = last_record(w);
    assert_eq!(r.event, AuditEvent::AccessRefused, "{r:?}");
    assert_eq!(r.reason.as_deref(), Some(code));
}

#[tokio::test]
async fn a_request_approved_gives_access_until_its_time_and_then_nothing() -> TestResult {
    let w = jit_world();
    assert_eq!(
        become_(&w, "alice", "prod").await.unwrap_err().to_string(),
        Denial::NotGranted.to_string()
    );
    let request = open(&w, "alice", &for_target("prod", Some(2 * 3600))).await?;
    assert_eq!(request.state, RequestState::Pending);
    assert_eq!(
        request.approvers,
        vec![as_user("carol"), as_group("oncall")]
    );
    assert_eq!(request.expires_at, w.now() + DEFAULT_REQUEST_LIFETIME);
    let opened = last_record(&w);
    assert_eq!(opened.event, AuditEvent::AccessRequested);
    assert_eq!(opened.access_request_id, Some(request.id.to_string()));
    assert_eq!(opened.duration_seconds, Some(7200));
    assert_eq!(
        opened.resource.as_deref(),
        Some("user alice -> target prod")
    );
    assert_eq!(opened.reason.as_deref(), Some(reason().as_str()));
    // Pending gives nothing.
    assert!(become_(&w, "alice", "prod").await.is_err());

    let approved = approve(&w, &request, "dave", None).await?;
    let until = w.now() + Duration::hours(2);
    assert_eq!(approved.access_until, Some(until));
    assert_eq!(approved.status_at(w.now()), RequestStatus::Approved);
    assert_eq!(stored(&w, &request), approved);
    let record = last_record(&w);
    assert_eq!(record.event, AuditEvent::AccessApproved);
    assert_eq!(record.actor, "dave");
    assert_eq!(record.approved_by.as_deref(), Some("dave"));
    assert_eq!(record.expiration, Some(until));

    // The ordinary decision path now lets alice become prod, for no longer than her access.
    assert_eq!(become_(&w, "alice", "prod").await?, 3600);
    let issued = last_record(&w);
    assert_eq!(issued.event, AuditEvent::CredentialsIssued);
    assert_eq!(issued.access_request_id, Some(request.id.to_string()));
    assert!(
        issued
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("until") && r.contains(request.id.as_str())),
        "{issued:?}"
    );
    w.clock.advance(Duration::minutes(90));
    let left = (until - w.now()).whole_seconds();
    assert_eq!(i64::from(become_(&w, "alice", "prod").await?), left);
    // Less than the shortest session left: refused, and nothing is asked of STS.
    w.clock.set(until - Duration::minutes(10));
    let calls = w.broker.calls().len();
    let err = become_(&w, "alice", "prod").await.unwrap_err();
    assert!(matches!(err, IssueError::AccessEnding(_)), "{err}");
    assert_eq!(last_record(&w).reason.as_deref(), Some("access_ending"));
    // Over: refused as if it had never been, and STS is not asked.
    w.clock.set(until);
    let err = become_(&w, "alice", "prod").await.unwrap_err();
    assert!(
        matches!(err, IssueError::Denied(Denial::NotGranted)),
        "{err}"
    );
    assert_eq!(w.broker.calls().len(), calls);
    assert_eq!(
        stored(&w, &request).status_at(w.now()),
        RequestStatus::Ended
    );
    let (_, reachable) = w.catalog().reachable(w.identity("alice")?).await?;
    assert!(reachable.is_empty());
    Ok(())
}

#[tokio::test]
async fn nobody_approves_their_own_request_nor_does_anyone_off_the_list() -> TestResult {
    let w = jit_world();
    // erin may approve account-wide requests, but prod has its own list.
    let request = open(&w, "alice", &for_target("prod", None)).await?;
    w.group("approvers").unwrap();
    w.member("alice", "oncall").unwrap();
    let before = w.state()?;
    let err = approve(&w, &request, "alice", None).await.unwrap_err();
    assert!(matches!(err, RequestError::SelfApproval), "{err}");
    refused_with(&w, "self_approval");
    // To those it neither asked nor names, it does not exist (an id tells them nothing).
    for who in ["erin", "bob"] {
        let err = approve(&w, &request, who, None).await.unwrap_err();
        assert!(matches!(err, RequestError::NotFound), "{who}: {err}");
        refused_with(&w, "access_request_not_found");
        let err = w
            .access_requests()
            .deny(&request.id, w.identity(who)?, None, &w.meta())
            .await
            .unwrap_err();
        assert!(matches!(err, RequestError::NotFound), "{who}: {err}");
    }
    nothing_changed(&w, &before);
    assert!(w.state()?.temporary_grants.is_empty());
    Ok(())
}

#[tokio::test]
async fn an_approvers_code_is_good_once_and_a_wrong_one_counts_against_them() -> TestResult {
    let w = jit_world();
    let first = open(&w, "alice", &for_target("prod", None)).await?;
    let second = open(&w, "bob", &for_target("prod", None)).await?;
    w.clock.advance(Duration::seconds(30));
    let code = w.code("carol")?;
    w.access_requests()
        .approve(&first.id, w.identity("carol")?, &code, None, &w.meta())
        .await?;
    let before = w.state()?;
    let err = w
        .access_requests()
        .approve(&second.id, w.identity("carol")?, &code, None, &w.meta())
        .await
        .unwrap_err();
    assert!(
        matches!(err, RequestError::ApproverFactor(FactorError::Replayed)),
        "{err}"
    );
    assert_eq!(err.code(), "approver_totp_replayed");
    refused_with(&w, "approver_totp_replayed");
    nothing_changed(&w, &before);

    let wrong = w.wrong_code("carol")?;
    let err = w
        .access_requests()
        .approve(&second.id, w.identity("carol")?, &wrong, None, &w.meta())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "approver_totp_invalid");
    assert_eq!(w.factors_of("carol")?.guard.map(|g| g.failures), Some(1));
    assert_eq!(stored(&w, &second).state, RequestState::Pending);
    Ok(())
}

#[tokio::test]
async fn a_scripts_token_cannot_approve() -> TestResult {
    let w = jit_world();
    let request = open(&w, "alice", &for_target("prod", None)).await?;
    let (_, token) = w.api_token("carol")?;
    let identity = cooper_core::access::Identity::new(
        user("carol"),
        cooper_core::access::AuthMethod::ApiToken(token.id),
    );
    let code = w.code("carol")?;
    let err = w
        .access_requests()
        .approve(&request.id, identity, &code, None, &w.meta())
        .await
        .unwrap_err();
    assert!(matches!(err, RequestError::SessionRequired), "{err}");
    refused_with(&w, "session_required");
    Ok(())
}

#[tokio::test]
async fn denied_lapsed_and_withdrawn_requests_cannot_be_approved() -> TestResult {
    let w = jit_world();
    let denied = open(&w, "alice", &for_target("prod", None)).await?;
    let note = Reason::parse("use the runbook instead").ok();
    let after = w
        .access_requests()
        .deny(&denied.id, w.identity("carol")?, note.clone(), &w.meta())
        .await?;
    assert_eq!(after.state, RequestState::Denied);
    assert_eq!(after.note, note);
    assert_eq!(last_record(&w).event, AuditEvent::AccessDenied);
    let err = approve(&w, &denied, "dave", None).await.unwrap_err();
    assert!(
        matches!(err, RequestError::Settled(RequestStatus::Denied)),
        "{err}"
    );
    refused_with(&w, "access_request_settled");

    // alice may ask again once the earlier one is settled; she withdraws it.
    let withdrawn = open(&w, "alice", &for_target("prod", None)).await?;
    let err = w
        .access_requests()
        .cancel(&withdrawn.id, w.identity("bob")?, None, &w.meta())
        .await
        .unwrap_err();
    assert!(matches!(err, RequestError::NotFound), "{err}");
    w.access_requests()
        .cancel(&withdrawn.id, w.identity("alice")?, None, &w.meta())
        .await?;
    assert_eq!(last_record(&w).event, AuditEvent::AccessCancelled);
    assert_eq!(stored(&w, &withdrawn).state, RequestState::Cancelled);
    let err = approve(&w, &withdrawn, "dave", None).await.unwrap_err();
    assert!(
        matches!(err, RequestError::Settled(RequestStatus::Cancelled)),
        "{err}"
    );

    let lapsed = open(&w, "alice", &for_target("prod", None)).await?;
    w.clock.advance(DEFAULT_REQUEST_LIFETIME);
    let err = approve(&w, &lapsed, "dave", None).await.unwrap_err();
    assert!(matches!(err, RequestError::Expired), "{err}");
    refused_with(&w, "access_request_expired");
    assert_eq!(
        stored(&w, &lapsed).status_at(w.now()),
        RequestStatus::Expired
    );
    assert!(w.state()?.temporary_grants.is_empty());
    assert!(become_(&w, "alice", "prod").await.is_err());
    Ok(())
}

#[tokio::test]
async fn only_what_a_policy_allows_can_be_asked_for_and_never_what_one_holds() -> TestResult {
    let w = jit_world();
    // Not requestable, and unknown, answer alike.
    for name in ["ops", "no-such-target"] {
        let err = open(&w, "alice", &for_target(name, None))
            .await
            .unwrap_err();
        assert!(matches!(err, RequestError::NotRequestable), "{name}: {err}");
        refused_with(&w, "not_requestable");
    }
    // Account A allows requests up to level 50; account B none.
    let err = open(&w, "alice", &for_account(A, 51)).await.unwrap_err();
    assert!(matches!(err, RequestError::NotRequestable), "{err}");
    let err = open(&w, "alice", &for_account(B, 10)).await.unwrap_err();
    assert!(matches!(err, RequestError::NotRequestable), "{err}");
    // frank holds ro: asking for it is pointless; so is asking for what a cascade gives.
    let err = open(&w, "frank", &for_target("ro", None))
        .await
        .unwrap_err();
    assert!(matches!(err, RequestError::AlreadyGranted), "{err}");
    refused_with(&w, "already_granted");
    w.grant_account(as_group("oncall"), A, 20)?;
    let err = open(&w, "dave", &for_account(A, 20)).await.unwrap_err();
    assert!(matches!(err, RequestError::AlreadyGranted), "{err}");
    // A time-bound cascade counts while it lasts, and not after; one on another account, never.
    w.grant_account(as_user("bob"), B, 100)?;
    w.put_grant(Grant {
        principal: as_user("bob"),
        scope: GrantScope::Account {
            account: AccountId::parse(A)?,
            max_level: Level::new(20)?,
        },
        expires_at: Some(w.now() + Duration::minutes(10)),
        via: None,
    })?;
    let err = open(&w, "bob", &for_account(A, 20)).await.unwrap_err();
    assert!(matches!(err, RequestError::AlreadyGranted), "{err}");
    w.clock.advance(Duration::minutes(10));
    open(&w, "bob", &for_account(A, 20)).await?;
    let before = w.state()?;
    // Too long for the policy (4 h), too short for AWS.
    for seconds in [4 * 3600 + 1, 1799] {
        let err = open(&w, "alice", &for_target("prod", Some(seconds)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_duration", "{seconds}");
    }
    nothing_changed(&w, &before);
    // The default is an hour.
    let request = open(&w, "alice", &for_target("prod", None)).await?;
    assert_eq!(request.duration_seconds, 3600);
    // Asking twice is refused while the first waits.
    let err = open(&w, "alice", &for_target("prod", None))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RequestError::AlreadyRequested(id) if *id == request.id),
        "{err}"
    );
    assert_eq!(err.code(), "request_pending");
    Ok(())
}

#[tokio::test]
async fn an_account_request_cascades_up_to_its_level_through_the_accounts_approvers() -> TestResult
{
    let w = jit_world();
    let request = open(&w, "bob", &for_account(A, 50)).await?;
    assert_eq!(request.approvers, vec![as_user("erin")]);
    // A target of A without its own policy is requestable through the account, up to 50.
    let mid = open(&w, "alice", &for_target("mid", None)).await?;
    assert_eq!(mid.approvers, vec![as_user("erin")]);
    let err = approve(&w, &request, "carol", None).await.unwrap_err();
    assert!(matches!(err, RequestError::NotFound), "{err}");
    approve(&w, &request, "erin", Some(1800)).await?;
    assert_eq!(become_(&w, "bob", "ro").await?, 1800);
    assert_eq!(become_(&w, "bob", "mid").await?, 1800);
    assert!(matches!(
        become_(&w, "bob", "prod").await,
        Err(IssueError::Denied(Denial::NotGranted))
    ));
    assert!(become_(&w, "bob", "b-ro").await.is_err());
    let (_, reachable) = w.catalog().reachable(w.identity("bob")?).await?;
    let names: Vec<&str> = reachable.iter().map(|r| r.target.name.as_str()).collect();
    assert_eq!(names, ["mid", "ro"]);
    Ok(())
}

#[tokio::test]
async fn an_approver_may_shorten_but_not_lengthen() -> TestResult {
    let w = jit_world();
    let request = open(&w, "alice", &for_target("prod", Some(3600))).await?;
    let err = approve(&w, &request, "carol", Some(3601))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_duration");
    assert_eq!(stored(&w, &request).state, RequestState::Pending);
    let approved = approve(&w, &request, "carol", Some(1800)).await?;
    assert_eq!(
        approved.access_until,
        Some(w.now() + Duration::seconds(1800))
    );
    assert_eq!(become_(&w, "alice", "prod").await?, 1800);
    Ok(())
}

#[tokio::test]
async fn access_ended_early_gives_nothing_more() -> TestResult {
    let w = jit_world();
    let request = open(&w, "alice", &for_target("prod", Some(3 * 3600))).await?;
    approve(&w, &request, "carol", None).await?;
    become_(&w, "alice", "prod").await?;
    // Only the requester or an approver may end it.
    let err = w
        .access_requests()
        .cancel(&request.id, w.identity("bob")?, None, &w.meta())
        .await
        .unwrap_err();
    assert!(matches!(err, RequestError::NotFound), "{err}");
    let ended = w
        .access_requests()
        .cancel(
            &request.id,
            w.identity("dave")?,
            Reason::parse("done").ok(),
            &w.meta(),
        )
        .await?;
    assert_eq!(ended.state, RequestState::Ended);
    assert_eq!(ended.access_until, Some(w.now()));
    let record = last_record(&w);
    assert_eq!(record.event, AuditEvent::AccessEnded);
    assert_eq!(record.actor, "dave");
    assert!(w.state()?.temporary_grants.is_empty());
    assert!(matches!(
        become_(&w, "alice", "prod").await,
        Err(IssueError::Denied(Denial::NotGranted))
    ));
    let err = w
        .access_requests()
        .cancel(&request.id, w.identity("alice")?, None, &w.meta())
        .await
        .unwrap_err();
    assert!(
        matches!(err, RequestError::Settled(RequestStatus::Ended)),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn approvers_list_what_asks_them_and_requesters_their_own() -> TestResult {
    let w = jit_world();
    let prod = open(&w, "alice", &for_target("prod", None)).await?;
    w.clock.advance(Duration::seconds(1));
    let account = open(&w, "bob", &for_account(A, 50)).await?;
    let ids = |list: Vec<AccessRequest>| {
        list.into_iter()
            .map(|r| r.id.to_string())
            .collect::<Vec<_>>()
    };
    let list = |who: &str, role| {
        let w = w.clone();
        let who = who.to_owned();
        async move {
            w.access_requests()
                .list(w.identity(&who).unwrap(), role)
                .await
                .unwrap()
        }
    };
    // dave through his group, carol by name, erin for the account.
    assert_eq!(
        ids(list("dave", RequestRole::Approver).await),
        [prod.id.to_string()]
    );
    assert_eq!(
        ids(list("carol", RequestRole::Approver).await),
        [prod.id.to_string()]
    );
    assert_eq!(
        ids(list("erin", RequestRole::Approver).await),
        [account.id.to_string()]
    );
    assert!(list("frank", RequestRole::Approver).await.is_empty());
    assert_eq!(
        ids(list("alice", RequestRole::Requester).await),
        [prod.id.to_string()]
    );
    // A request is seen by its requester and those it asks, by no one else.
    let requests = w.access_requests();
    assert!(requests.view(&prod.id, w.identity("dave")?).await.is_ok());
    assert!(requests.view(&prod.id, w.identity("alice")?).await.is_ok());
    for who in ["erin", "bob"] {
        let err = requests.view(&prod.id, w.identity(who)?).await.unwrap_err();
        assert!(matches!(err, RequestError::NotFound), "{who}: {err}");
    }
    // An approver who asks for something themselves does not see their own request to approve.
    w.member("carol", "oncall")?;
    let own = open(&w, "dave", &for_account(A, 10)).await?;
    assert!(!ids(list("dave", RequestRole::Approver).await).contains(&own.id.to_string()));
    Ok(())
}

#[tokio::test]
async fn two_approvers_at_once_give_one_grant() -> TestResult {
    let w = jit_world();
    let request = open(&w, "alice", &for_target("prod", None)).await?;
    w.clock.advance(Duration::seconds(30));
    let (carol, dave) = (w.code("carol")?, w.code("dave")?);
    w.store.interleave(true)?;
    let requests = w.access_requests();
    let (a, b) = join(
        requests.approve(&request.id, w.identity("carol")?, &carol, None, &w.meta()),
        requests.approve(&request.id, w.identity("dave")?, &dave, None, &w.meta()),
    )
    .await;
    w.store.interleave(false)?;
    let (won, lost) = match (a, b) {
        (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
        other => panic!("exactly one approval must land: {other:?}"),
    };
    assert!(matches!(lost, RequestError::Settled(_)), "{lost}");
    assert_eq!(stored(&w, &request), won);
    assert_eq!(w.state()?.temporary_grants.len(), 1);
    assert_eq!(records(&w, AuditEvent::AccessApproved).len(), 1);
    Ok(())
}

#[tokio::test]
async fn nothing_is_approved_without_its_audit_record() -> TestResult {
    let w = jit_world();
    let request = open(&w, "alice", &for_target("prod", None)).await?;
    let before = w.state()?;
    w.store.fail_commits(true)?;
    let err = approve(&w, &request, "carol", None).await.unwrap_err();
    assert!(matches!(err, RequestError::AuditUnavailable(_)), "{err}");
    w.store.fail_commits(false)?;
    nothing_written(&w, &before);
    assert!(become_(&w, "alice", "prod").await.is_err());
    Ok(())
}

#[tokio::test]
async fn someone_only_an_identity_provider_vouches_for_can_ask_and_use_it() -> TestResult {
    let w = jit_world();
    let identity = oidc("gina", &[]);
    let request = w
        .access_requests()
        .open(identity.clone(), &for_target("prod", None), &w.meta())
        .await?;
    approve(&w, &request, "carol", None).await?;
    let issued = w.issuer().issue(identity, &ask("prod"), &w.meta()).await?;
    assert_eq!(issued.target.name, target("prod"));
    Ok(())
}

#[tokio::test]
async fn a_policy_lowered_after_the_request_caps_the_approval() -> TestResult {
    let w = jit_world();
    let request = open(&w, "alice", &for_target("prod", Some(4 * 3600))).await?;
    let other = open(&w, "bob", &for_target("prod", None)).await?;
    w.requestable_target(
        "prod",
        vec![as_user("carol")],
        Some(RequestPolicy::SHORTEST),
    )?;
    let approved = approve(&w, &request, "carol", None).await?;
    assert_eq!(
        approved.access_until,
        Some(w.now() + Duration::seconds(i64::from(RequestPolicy::SHORTEST)))
    );
    // dave's group was asked, but is no longer on the list: he approves nothing now.
    let err = approve(&w, &other, "dave", None).await.unwrap_err();
    assert!(matches!(err, RequestError::NotAnApprover), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_deleted_users_time_bound_grants_go_with_them() -> TestResult {
    let w = jit_world();
    let request = open(&w, "alice", &for_target("prod", None)).await?;
    approve(&w, &request, "carol", None).await?;
    assert_eq!(w.state()?.temporary_grants.len(), 1);
    w.admin_grant(as_user("root"), None)?;
    w.user("root")?;
    let admin = w.admin(cooper_core::admin::AdminConfig::default());
    let ctx = admin
        .context(cooper_core::admin::AdminCall {
            identity: w.identity("root")?,
            totp: None,
            meta: w.meta(),
        })
        .await?;
    admin.delete_user(&ctx, &user("alice"), None, true).await?;
    assert!(w.state()?.temporary_grants.is_empty());
    // Someone made later under the same name holds nothing.
    w.user("alice")?;
    assert!(become_(&w, "alice", "prod").await.is_err());
    Ok(())
}
