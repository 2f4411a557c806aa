//! cooper's AWS adapters: the ports of cooper-core, implemented with the AWS SDK.
//!
//! Endpoints come from the SDK's standard configuration (`AWS_ENDPOINT_URL`,
//! `AWS_ENDPOINT_URL_<SERVICE>`), so the same code talks to AWS and to a local emulator.
#![deny(clippy::indexing_slicing)]

pub mod admin;
pub mod approvals;
pub mod audit;
pub mod directory;
mod error;
pub mod factors;
pub mod https;
pub mod items;
pub mod kms;
pub mod ledger;
pub mod notify;
#[cfg(feature = "provisioning")]
pub mod provisioning;
pub mod rate;
pub mod requests;
pub mod revoker;
pub mod rotation;
pub mod signin;
pub mod ssm;
#[cfg(feature = "stream")]
pub mod stream;
pub mod sts;

use aws_config::{BehaviorVersion, SdkConfig};

// The SDK crates, for building clients from one `SdkConfig` without depending on them again.
pub use {aws_sdk_dynamodb, aws_sdk_iam, aws_sdk_kms, aws_sdk_sns, aws_sdk_ssm, aws_sdk_sts};

/// The SDK configuration from the environment: region, credentials, endpoints, retries.
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}
