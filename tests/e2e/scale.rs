//! The cost of an issuance does not grow with the directory: the same DynamoDB calls with 10 and
//! with 10,000 users, and never a Scan.

use cooper_core::model::{Principal, User};
use cooper_core::names::UserName;
use serde_json::json;

use crate::harness::{ACCOUNT_A, TestEnv, calls_to};

/// The longest chain of AWS round trips an issuance may wait on, for a caller with a cooper
/// session and with an API token, reaching the target through a group: the decision's reads
/// side by side (the user's partition, the target, their time-bound grants, the session's
/// revocations, and the groups' grants read ahead), then STS, then the audit record; a token is
/// read first. Reading the groups' grants ahead needs the caller's groups: an API token's record
/// hints those its user had when it was issued, an identity provider's session asserts them,
/// and a function remembers what its last decision saw. A caller none of these tells (a local
/// session in a fresh function), or whose groups changed since, waits on one more round.
const DEPTH_SESSION: usize = 3;
const DEPTH_TOKEN: usize = 4;
const COLD: usize = 1;

fn users(from: usize, to: usize) -> Vec<User> {
    (from..to)
        .map(|i| User::new(UserName::parse(&format!("user{i:05}@example.com")).unwrap()))
        .collect()
}

async fn dynamodb_calls_for_one_issuance(env: &TestEnv, token: &str) -> Vec<String> {
    let (answer, calls) = env
        .moto
        .record(env.credentials(token, json!({"target": "a-readonly"})))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    // The user's partition and the target are read concurrently: compare as a multiset.
    let mut operations: Vec<String> = calls_to(&calls, "dynamodb")
        .iter()
        .map(|c| c.operation.clone())
        .collect();
    operations.sort();
    operations
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_calls_per_issuance_are_the_same_with_10_and_10000_users() {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    env.role_target("a-readonly", ACCOUNT_A, 10, None).await;
    for n in 0..20 {
        env.role_target(&format!("a-other-{n}"), ACCOUNT_A, 10 + n, None)
            .await;
    }
    // The caller reaches the target through a group, the longest path.
    let caller = env.user("caller@example.com").await;
    let other = env.user("bystander").await;
    let group = env.group("readers", &[&caller, &other]).await;
    env.group("bystanders", &[&caller]).await;
    env.grant_account(Principal::Group(group), ACCOUNT_A, 10)
        .await;
    let token = env.api_token(&caller).await;

    env.directory.put_users(&users(0, 8)).await.unwrap();
    // A function's first issuance for a target does not know its account yet and reads each
    // hinted group's grants with a Query; both compared below are a warm function's.
    let cold = dynamodb_calls_for_one_issuance(&env, &token).await;
    assert_eq!(
        cold.iter().filter(|op| *op == "Query").count(),
        4,
        "a Query for each of the caller's 2 groups: {cold:?}"
    );
    let small = dynamodb_calls_for_one_issuance(&env, &token).await;

    env.directory.put_users(&users(8, 9_998)).await.unwrap();
    let large = dynamodb_calls_for_one_issuance(&env, &token).await;

    assert_eq!(small, large, "the same calls whatever the directory's size");
    assert!(
        !large.iter().any(|op| op == "Scan"),
        "never a Scan: {large:?}"
    );
    // API token; the user's partition, the target and the user's time-bound grants (side by
    // side); the groups' grants; the audit record; the caller's request count.
    assert_eq!(
        large,
        [
            "BatchGetItem",
            "GetItem",
            "GetItem",
            "PutItem",
            "Query",
            "Query",
            "UpdateItem"
        ]
    );
}

/// A caller who reaches `a-readonly` through a group's grant on its account (the longest path).
async fn reader() -> (TestEnv, UserName) {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    env.role_target("a-readonly", ACCOUNT_A, 10, None).await;
    let caller = env.user("caller@example.com").await;
    let group = env.group("readers", &[&caller]).await;
    env.grant_account(Principal::Group(group), ACCOUNT_A, 10)
        .await;
    (env, caller)
}

/// How many AWS round trips an issuance waits on, one after another (read from when each call
/// left and came back): identity, the decision's reads, STS and the audit record, and whatever
/// else stands in line. The caller reaches the target through a group, the longest path; then
/// the caller's own groups, grants and targets grow (past one BatchGetItem's 100 keys), and the
/// chain must not.
#[tokio::test(flavor = "multi_thread")]
async fn an_issuance_waits_on_a_bounded_chain_of_round_trips() {
    let (env, caller) = reader().await;
    let token = env.api_token(&caller).await;
    let jwt = env.jwt(&caller);
    // `cold`: what the first issuance of each may wait on besides (the second is the one a
    // warm function serves). The API token goes first, into a function that knows nothing yet.
    let chains = |round: &'static str, cold: usize| {
        let (env, jwt, token) = (&env, &jwt, &token);
        async move {
            for (who, bearer, most) in [
                ("API token", token, DEPTH_TOKEN),
                ("session", jwt, DEPTH_SESSION),
            ] {
                for (nth, allowed) in [("first", most + cold), ("second", most)] {
                    let (answer, calls) = env
                        .faults
                        .timed(env.credentials(bearer, json!({"target": "a-readonly"})))
                        .await;
                    assert_eq!(answer.status, 200, "{}", answer.text);
                    let (depth, chain) = crate::harness::sequential_depth(&calls);
                    eprintln!("{round}, {who}, {nth}: {depth} round trips deep: {chain:?}");
                    assert!(
                        depth <= allowed,
                        "{round}, {who}, {nth}: {depth} round trips deep: {chain:?}"
                    );
                }
            }
        }
    };
    // The token's hint names the caller's group: no round is added, on a fresh function.
    chains("one group", 0).await;

    // The caller joins 60 more groups (120 keys of group grants: two BatchGetItems), each with a
    // grant of a target of its own, and is granted 20 targets directly.
    for n in 0..60 {
        let name = format!("a-team-{n}");
        env.role_target(&name, ACCOUNT_A, 20, None).await;
        let team = env.group(&format!("team-{n:02}"), &[&caller]).await;
        env.grant_target(Principal::Group(team), &name).await;
    }
    for n in 0..20 {
        let name = format!("a-mine-{n}");
        env.role_target(&name, ACCOUNT_A, 20, None).await;
        env.grant_target(Principal::User(caller.clone()), &name)
            .await;
    }
    // The token's hint and the function's memory both miss the 60 new groups: the first
    // issuance reads their grants after the profile.
    chains("61 groups", COLD).await;
}

/// A session signed in now hints its user's groups: a fresh function's first issuance for it
/// (and for a target it has not seen) waits on no more than a warm one's.
#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_functions_first_issuance_for_a_session_is_as_shallow_as_a_warm_one() {
    let (env, caller) = reader().await;
    let jwt = env.jwt_hinting(&caller).await;
    let (answer, calls) = env
        .faults
        .timed(env.credentials(&jwt, json!({"target": "a-readonly"})))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let (depth, chain) = crate::harness::sequential_depth(&calls);
    assert!(
        depth <= DEPTH_SESSION,
        "{depth} round trips deep: {chain:?}"
    );
}
