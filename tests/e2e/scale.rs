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
/// read first. Reading the groups' grants ahead needs the caller's groups and the target's
/// account, which the function learns from the decision before: the first issuance a function
/// serves for a caller (and for a target) waits on one more round, for the groups' grants.
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

/// How many AWS round trips an issuance waits on, one after another (read from when each call
/// left and came back): identity, the decision's reads, STS and the audit record, and whatever
/// else stands in line. The caller reaches the target through a group, the longest path; then
/// the caller's own groups, grants and targets grow (past one BatchGetItem's 100 keys), and the
/// chain must not.
#[tokio::test(flavor = "multi_thread")]
async fn an_issuance_waits_on_a_bounded_chain_of_round_trips() {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    env.role_target("a-readonly", ACCOUNT_A, 10, None).await;
    let caller = env.user("caller@example.com").await;
    let group = env.group("readers", &[&caller]).await;
    env.grant_account(Principal::Group(group), ACCOUNT_A, 10)
        .await;
    let token = env.api_token(&caller).await;
    let jwt = env.jwt(&caller);
    let chains = |round: &'static str| {
        let (env, jwt, token) = (&env, &jwt, &token);
        async move {
            for (who, bearer, most) in [
                ("session", jwt, DEPTH_SESSION),
                ("API token", token, DEPTH_TOKEN),
            ] {
                // The first may find the function knowing less than it did; the second is the
                // one a warm function serves.
                for (nth, allowed) in [("first", most + COLD), ("second", most)] {
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
    chains("one group").await;

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
    chains("61 groups").await;
}
