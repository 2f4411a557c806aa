//! Writes the `cooper-revocations` inline policy in a target account, through the account's
//! `cooper-revoker` role (infra/target-role.yaml): a role that may write that policy on
//! cooper's target roles and federation users, and nothing else. It is assumed with the
//! function's own credentials, not the broker's: the broker identity that assumes target roles
//! cannot also rewrite them.

use async_trait::async_trait;
use aws_config::SdkConfig;
use cooper_core::names::{AccountId, Partition};
use cooper_core::ports::{RevocationPolicies, Service, UpstreamError, UpstreamKind};
use cooper_core::revocation::policy::{POLICY_NAME, PolicyHolder};

use crate::error::{code_of, upstream};

/// The role cooper assumes in a target account to write revocations.
pub const REVOKER_ROLE: &str = "cooper-revoker";

pub struct IamRevoker {
    base: SdkConfig,
    /// The partition the function's credentials belong to: holders elsewhere cannot be reached.
    home: Partition,
}

impl IamRevoker {
    pub fn new(base: SdkConfig, home: Partition) -> Self {
        Self { base, home }
    }

    /// IAM acting as the revoker role in `account`.
    async fn iam_in(
        &self,
        partition: Partition,
        account: &AccountId,
    ) -> Result<aws_sdk_iam::Client, UpstreamError> {
        if partition != self.home {
            return Err(UpstreamError::new(
                Service::Iam,
                UpstreamKind::Refused,
                format!("cooper's functions have no identity in partition {partition}"),
            ));
        }
        let out = aws_sdk_sts::Client::new(&self.base)
            .assume_role()
            .role_arn(format!(
                "arn:{partition}:iam::{account}:role/{REVOKER_ROLE}"
            ))
            .role_session_name("cooper-revocation")
            .duration_seconds(900)
            .send()
            .await
            .map_err(|e| upstream(Service::Sts, e))?;
        let c = out.credentials.ok_or_else(|| {
            UpstreamError::new(
                Service::Sts,
                UpstreamKind::Corrupt,
                "AssumeRole returned no credentials",
            )
        })?;
        let credentials = aws_credential_types::Credentials::new(
            c.access_key_id,
            c.secret_access_key,
            Some(c.session_token),
            None,
            "cooper-revoker",
        );
        let conf = aws_sdk_iam::config::Builder::from(&self.base)
            .credentials_provider(credentials)
            .build();
        Ok(aws_sdk_iam::Client::from_conf(conf))
    }
}

#[async_trait]
impl RevocationPolicies for IamRevoker {
    async fn write(
        &self,
        holder: &PolicyHolder,
        document: Option<&str>,
    ) -> Result<(), UpstreamError> {
        match holder {
            PolicyHolder::Role {
                partition,
                account,
                name,
            } => {
                let iam = self.iam_in(*partition, account).await?;
                match document {
                    Some(doc) => iam
                        .put_role_policy()
                        .role_name(name)
                        .policy_name(POLICY_NAME)
                        .policy_document(doc)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| upstream(Service::Iam, e)),
                    None => match iam
                        .delete_role_policy()
                        .role_name(name)
                        .policy_name(POLICY_NAME)
                        .send()
                        .await
                    {
                        Ok(_) => Ok(()),
                        Err(e) if code_of(&e) == Some("NoSuchEntity") => Ok(()),
                        Err(e) => Err(upstream(Service::Iam, e)),
                    },
                }
            }
            PolicyHolder::KeyOwner {
                partition,
                account,
                access_key_id,
            } => {
                let iam = self.iam_in(*partition, account).await?;
                let user = iam
                    .get_access_key_last_used()
                    .access_key_id(access_key_id)
                    .send()
                    .await
                    .map_err(|e| upstream(Service::Iam, e))?
                    .user_name
                    .ok_or_else(|| {
                        UpstreamError::new(
                            Service::Iam,
                            UpstreamKind::Corrupt,
                            "IAM did not say whose access key this is",
                        )
                    })?;
                match document {
                    Some(doc) => iam
                        .put_user_policy()
                        .user_name(&user)
                        .policy_name(POLICY_NAME)
                        .policy_document(doc)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| upstream(Service::Iam, e)),
                    None => match iam
                        .delete_user_policy()
                        .user_name(&user)
                        .policy_name(POLICY_NAME)
                        .send()
                        .await
                    {
                        Ok(_) => Ok(()),
                        Err(e) if code_of(&e) == Some("NoSuchEntity") => Ok(()),
                        Err(e) => Err(upstream(Service::Iam, e)),
                    },
                }
            }
        }
    }
}
