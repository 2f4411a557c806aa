//! The cost of an issuance does not grow with the directory: the same DynamoDB calls with 10 and
//! with 10,000 users, and never a Scan.

use cooper_core::model::{Principal, User};
use cooper_core::names::UserName;
use serde_json::json;

use crate::harness::{ACCOUNT_A, TestEnv, calls_to};

/// The longest chain of AWS round trips an issuance may wait on, for a caller with a cooper
/// session and with an API token, reaching the target through a group. Today: (the user's
/// partition, the target, their time-bound grants, the session's revocations, side by side),
/// then the groups' grants, STS, the audit record; a token is read first. The goal (issue 20)
/// is 3 and 4: the groups' grants in the first wave.
const DEPTH_SESSION: usize = 4;
const DEPTH_TOKEN: usize = 5;

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
/// else stands in line. The caller reaches the target through a group, the longest path.
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
    for (who, bearer, most) in [
        ("session", &jwt, DEPTH_SESSION),
        ("API token", &token, DEPTH_TOKEN),
    ] {
        // Twice: the second is the one a warm function serves.
        for _ in 0..2 {
            let (answer, calls) = env
                .faults
                .timed(env.credentials(bearer, json!({"target": "a-readonly"})))
                .await;
            assert_eq!(answer.status, 200, "{}", answer.text);
            let (depth, chain) = crate::harness::sequential_depth(&calls);
            eprintln!("{who}: {depth} round trips deep: {chain:?}");
            assert!(depth <= most, "{who}: {depth} round trips deep: {chain:?}");
        }
    }
}
