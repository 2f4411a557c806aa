//! Rotating the broker's key in moto's IAM and SSM: two rotations leave one active key, the one
//! SSM holds; a run that dies after any step, run again, ends in the same good state;
//! credentials are issued throughout; and a function holding a key STS no longer takes reads
//! SSM again and carries on, without a restart. A federated-user target's key is rotated in its
//! own account's IAM, and sealed anew onto the target.

use std::sync::Arc;

use cooper_aws::aws_sdk_iam::types::StatusType;
use cooper_aws::rotation::IamBrokerKeys;
use cooper_aws::ssm::Param;
use cooper_core::model::{Principal, TargetKind};
use cooper_core::ports::{Directory, FederationBinding, KeyVault};
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

/// `user`'s keys in IAM: (id, active).
async fn keys_of(iam: &cooper_aws::aws_sdk_iam::Client, user: &str) -> Vec<(String, bool)> {
    iam.list_access_keys()
        .user_name(user)
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
        .collect()
}

/// The broker's keys in IAM (id, active) and the one SSM holds.
async fn state(env: &TestEnv) -> (Vec<(String, bool)>, String) {
    let iam = cooper_aws::aws_sdk_iam::Client::new(&env.sdk);
    let keys = keys_of(&iam, "cooper-broker").await;
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

const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"*"}]}"#;

/// Both rotations, as the function runs them; the JSON it answers, and its failures.
async fn rotate_all(env: &TestEnv) -> (serde_json::Value, Vec<String>) {
    let meta = cooper_core::audit::RequestMeta {
        request_id: format!("e2e-{}", crate::harness::uuid_like()),
        source_ip: None,
    };
    let run = cooper_api::rotation::rotations_over(
        IamBrokerKeys::new(
            &env.app_sdk,
            &env.settings.ssm_prefix,
            Some(env.kms_key.clone()),
        )
        .without_pauses(),
        cooper_aws::rotation::IamFederationUsers::new(&env.app_sdk).without_pauses(),
        &env.app_sdk,
        &env.settings,
        env.clock.clone(),
    )
    .run(true, "e2e-operator", "operator", &meta)
    .await;
    (run.json(), run.failures())
}

/// The federation user's keys in its account's IAM (id, active), and the key the target carries.
async fn federation_state(
    env: &TestEnv,
    account: &str,
    target: &str,
) -> (Vec<(String, bool)>, String) {
    let account_id = cooper_core::names::AccountId::parse(account).unwrap();
    let iam = cooper_aws::provisioning::iam_in_account(&env.sdk, &account_id, "e2e-admin")
        .await
        .unwrap();
    let keys = keys_of(&iam, &format!("{target}-iam-user")).await;
    let t = env
        .directory
        .target(&cooper_core::names::TargetName::parse(target).unwrap())
        .await
        .unwrap()
        .unwrap();
    let TargetKind::FederatedUser { sealed_keys, .. } = &t.kind else {
        panic!("{target} is not a federated-user target");
    };
    let carried = env
        .vault
        .open_federation_keys(sealed_keys, &FederationBinding::of(&t))
        .await
        .unwrap()
        .access_key_id;
    (keys, carried)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_federated_targets_key_is_rotated_in_its_account_and_sealed_onto_the_target() {
    let env = TestEnv::start().await;
    let account = env.account(ACCOUNT_A).await;
    env.federated_target("a-fed", &account, 10, POLICY).await;
    let alice = env.user("alice").await;
    env.grant_target(Principal::User(alice.clone()), "a-fed")
        .await;
    let token = env.api_token(&alice).await;
    let (_, old) = federation_state(&env, ACCOUNT_A, "a-fed").await;

    let ((report, failures), calls) = env.moto.record(rotate_all(&env)).await;
    assert!(failures.is_empty(), "{failures:?}");
    // Every write is one the function's policy allows: the target, and the audit record.
    assert_eq!(
        crate::policies::allowed(&env, "rotate-keys", &calls),
        ["TARGET#", "audit"].into_iter().map(String::from).collect()
    );
    let targets = report["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 1, "{report}");
    assert_eq!(targets[0]["outcome"], "done", "{report}");
    assert_eq!(targets[0]["user"], "a-fed-iam-user", "{report}");
    let (keys, new) = federation_state(&env, ACCOUNT_A, "a-fed").await;
    assert_ne!(new, old);
    assert_eq!(targets[0]["rotated"]["to"], new.as_str(), "{report}");
    let active: Vec<_> = keys.iter().filter(|k| k.1).map(|k| &k.0).collect();
    assert_eq!(active, [&new], "{keys:?}");
    assert!(keys.contains(&(old.clone(), false)), "{keys:?}");

    // Issuance signs GetFederationToken with the new key: STS refusing the old one changes
    // nothing (moto does not check keys; the proxy answers as AWS does for a deactivated one).
    env.faults.fail_only(
        "sts",
        Some("GetFederationToken"),
        Some(&old),
        Fault::InvalidToken,
    );
    let answer = env.credentials(&token, json!({"target": "a-fed"})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(env.faults.refused(), 0);
    env.faults.heal();

    let rotated: Vec<_> = env
        .audit_items()
        .await
        .into_iter()
        .filter(|i| i["event"].as_s().unwrap() == "target_keys.rotated")
        .collect();
    assert_eq!(rotated.len(), 1);
    assert_eq!(rotated[0]["account"].as_s().unwrap(), ACCOUNT_A);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_federated_targets_rotation_that_cannot_be_recorded_leaves_the_target_as_it_was() {
    let env = TestEnv::start().await;
    let account = env.account(ACCOUNT_A).await;
    env.federated_target("a-fed", &account, 10, POLICY).await;
    let (before, old) = federation_state(&env, ACCOUNT_A, "a-fed").await;
    // The write of the new sealed key with its audit record fails: the new key goes again.
    env.faults.fail_only(
        "dynamodb",
        Some("TransactWriteItems"),
        None,
        Fault::Unavailable,
    );
    let (report, failures) = rotate_all(&env).await;
    env.faults.heal();
    assert_eq!(failures.len(), 1, "{report}");
    assert_eq!(report["targets"][0]["outcome"], "failed", "{report}");
    let (keys, carried) = federation_state(&env, ACCOUNT_A, "a-fed").await;
    assert_eq!(carried, old, "the target keeps its key");
    assert!(keys.contains(&(old.clone(), true)), "{keys:?}");
    // The write may have landed for all the run knew (a timeout looks the same), so the new key
    // is left to the next run: it tidies it away and rotates.
    let (_, failures) = rotate_all(&env).await;
    assert!(failures.is_empty(), "{failures:?}");
    let (keys, carried) = federation_state(&env, ACCOUNT_A, "a-fed").await;
    assert_ne!(carried, old);
    let active: Vec<_> = keys.iter().filter(|k| k.1).map(|k| &k.0).collect();
    assert_eq!(active, [&carried], "{keys:?} (before: {before:?})");
}
