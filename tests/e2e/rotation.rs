//! Rotating the broker's key in moto's IAM and SSM: two rotations leave one active key, the one
//! SSM holds; a run that dies after any step, run again, ends in the same good state;
//! credentials are issued throughout; and a function holding a key STS no longer takes reads
//! SSM again and carries on, without a restart.

use std::sync::Arc;

use cooper_aws::aws_sdk_iam::types::StatusType;
use cooper_aws::rotation::IamBrokerKeys;
use cooper_aws::ssm::Param;
use cooper_core::model::Principal;
use cooper_core::rotation::KeyRotation;
use serde_json::json;

use crate::harness::{ACCOUNT_A, Fault, TestEnv, calls_to};

fn rotation(env: &TestEnv) -> KeyRotation {
    cooper_api::rotation::rotation_over(
        IamBrokerKeys::new(
            &env.app_sdk,
            &env.settings.ssm_prefix,
            Some(env.kms_key.clone()),
        )
        .without_pauses(),
        &env.app_sdk,
        &env.settings,
        env.clock.clone(),
    )
}

async fn rotate(env: &TestEnv) -> Result<(), cooper_core::rotation::RotationError> {
    let meta = cooper_core::audit::RequestMeta {
        request_id: format!("e2e-{}", crate::harness::uuid_like()),
        source_ip: None,
    };
    // A fresh adapter each run, as each run of the function reads the key in use anew.
    rotation(env)
        .run(true, "e2e-operator", "operator", &meta)
        .await
        .map(|_| ())
}

/// The broker's keys in IAM (id, active) and the one SSM holds.
async fn state(env: &TestEnv) -> (Vec<(String, bool)>, String) {
    let iam = cooper_aws::aws_sdk_iam::Client::new(&env.sdk);
    let keys = iam
        .list_access_keys()
        .user_name("cooper-broker")
        .send()
        .await
        .unwrap()
        .access_key_metadata
        .into_iter()
        .map(|k| {
            (
                k.access_key_id.unwrap(),
                k.status == Some(StatusType::Active),
            )
        })
        .collect();
    let stored = cooper_aws::aws_sdk_ssm::Client::new(&env.sdk)
        .get_parameter()
        .name(Param::BrokerAccessKeyId.name(&env.settings.ssm_prefix))
        .with_decryption(true)
        .send()
        .await
        .unwrap()
        .parameter
        .unwrap()
        .value
        .unwrap();
    (keys, stored)
}

/// Exactly one active key, the one SSM holds; at most one other, inactive.
async fn good(env: &TestEnv) -> (Vec<(String, bool)>, String) {
    let (keys, stored) = state(env).await;
    let active: Vec<&String> = keys.iter().filter(|k| k.1).map(|k| &k.0).collect();
    assert_eq!(active, [&stored], "{keys:?}");
    assert!(keys.len() <= 2, "{keys:?}");
    (keys, stored)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_rotations_leave_one_active_key_which_ssm_holds_and_issuance_never_stops() {
    let env = Arc::new(TestEnv::start().await);
    env.account(ACCOUNT_A).await;
    env.role_target("a-ro", ACCOUNT_A, 10, None).await;
    let alice = env.user("alice").await;
    env.grant_target(Principal::User(alice.clone()), "a-ro")
        .await;
    let token = env.api_token(&alice).await;
    let (_, first) = good(&env).await;

    // Credentials are asked for all the while.
    let asking = {
        let (env, token) = (env.clone(), token.clone());
        tokio::spawn(async move {
            let mut answers = Vec::new();
            for _ in 0..20 {
                answers.push(
                    env.credentials(&token, json!({"target": "a-ro"}))
                        .await
                        .status,
                );
            }
            answers
        })
    };
    rotate(&env).await.unwrap();
    let (keys, second) = good(&env).await;
    assert_ne!(second, first);
    assert!(
        keys.contains(&(first.clone(), false)),
        "the old key is inactive: {keys:?}"
    );
    rotate(&env).await.unwrap();
    let (keys, third) = good(&env).await;
    assert!(
        !keys.iter().any(|k| k.0 == first),
        "the first key is gone: {keys:?}"
    );
    assert!(keys.contains(&(second.clone(), false)), "{keys:?}");
    assert_ne!(third, second);
    for status in asking.await.unwrap() {
        assert_eq!(status, 200);
    }
    // Each rotation is recorded, with the keys it replaced and put in use.
    let rotated: Vec<_> = env
        .audit_items()
        .await
        .into_iter()
        .filter(|i| i["event"].as_s().unwrap() == "broker_key.rotated")
        .collect();
    assert_eq!(rotated.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_that_dies_after_any_step_then_runs_again_ends_in_the_good_state() {
    let env = TestEnv::start().await;
    // One rotation first: a key deactivated before is there for the next to delete.
    rotate(&env).await.unwrap();
    let steps = [
        ("iam", "DeleteAccessKey"),
        ("iam", "CreateAccessKey"),
        ("sts", "GetCallerIdentity"),
        ("dynamodb", "PutItem"),
        ("ssm", "PutParameter"),
        ("iam", "UpdateAccessKey"),
    ];
    for (service, operation) in steps {
        env.faults
            .fail_only(service, Some(operation), None, Fault::Unavailable);
        let died = rotate(&env).await;
        env.faults.heal();
        assert!(died.is_err(), "{operation}: the run died");
        rotate(&env)
            .await
            .unwrap_or_else(|e| panic!("after {operation}: {e}"));
        good(&env).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_function_holding_a_key_sts_refuses_reads_ssm_again_and_carries_on() {
    let env = TestEnv::start().await;
    env.account(ACCOUNT_A).await;
    env.role_target("a-ro", ACCOUNT_A, 10, None).await;
    let alice = env.user("alice").await;
    env.grant_target(Principal::User(alice.clone()), "a-ro")
        .await;
    let token = env.api_token(&alice).await;
    let (_, old) = good(&env).await;
    assert_eq!(
        env.credentials(&token, json!({"target": "a-ro"}))
            .await
            .status,
        200
    );
    rotate(&env).await.unwrap();
    // STS no longer takes the old key (moto does not check keys: the proxy answers as AWS
    // does for a deactivated one).
    env.faults
        .fail_only("sts", Some("AssumeRole"), Some(&old), Fault::InvalidToken);
    let (answer, calls) = env
        .moto
        .record(env.credentials(&token, json!({"target": "a-ro"})))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(env.faults.refused(), 1, "refused once, with the old key");
    assert_eq!(
        calls_to(&calls, "ssm").len(),
        1,
        "the keys read again, once"
    );
    // From then on the new key signs: nothing more is refused, and SSM is not read again.
    let (answer, calls) = env
        .moto
        .record(env.credentials(&token, json!({"target": "a-ro"})))
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(env.faults.refused(), 1);
    assert!(calls_to(&calls, "ssm").is_empty());
}
