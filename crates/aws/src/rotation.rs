//! The broker's keys where they live: IAM (asked with the key in use, so the broker manages
//! its own keys and nobody else's) and SSM (where the functions read the one in use). Also the
//! source the running functions read them again from after a rotation.

use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_iam::types::StatusType;
use aws_sdk_ssm::types::ParameterType;
use cooper_core::model::FederationKeys;
use cooper_core::names::Partition;
use cooper_core::ports::{Service, UpstreamError, UpstreamKind};
use cooper_core::rotation::targets::FederationIam;
use cooper_core::rotation::{AccessKeyInfo, BrokerKeys, NewAccessKey, UserKeys};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use tokio::sync::OnceCell;

use crate::error::{corrupt, upstream};
use crate::ssm::{Param, Secrets, StaticKeys};
use crate::sts::BrokerKeySource;

/// The broker's keys as the functions read them: both parameters, in one call.
pub struct SsmBrokerKeys {
    ssm: aws_sdk_ssm::Client,
    prefix: String,
}

impl SsmBrokerKeys {
    pub fn new(sdk: &SdkConfig, prefix: &str) -> Self {
        Self {
            ssm: aws_sdk_ssm::Client::new(sdk),
            prefix: prefix.to_owned(),
        }
    }
}

#[async_trait]
impl BrokerKeySource for SsmBrokerKeys {
    async fn keys(&self) -> Result<StaticKeys, UpstreamError> {
        let mut secrets = Secrets::load(
            &self.ssm,
            &self.prefix,
            &[Param::BrokerAccessKeyId, Param::BrokerSecretAccessKey],
        )
        .await
        .map_err(|e| match e {
            crate::ssm::SecretsError::Upstream(u) => u,
            missing => UpstreamError::new(Service::Ssm, UpstreamKind::Refused, missing.to_string()),
        })?;
        secrets
            .broker_keys()
            .ok_or_else(|| corrupt(Service::Ssm, "the broker's keys are not both stored"))
    }
}

/// How long a new key is given to be known to STS (IAM is eventually consistent), and how
/// often it is tried meanwhile.
const WORKS_TRIES: u32 = 12;
const WORKS_PAUSE: Duration = Duration::from_secs(5);

fn sts_as(base: &SdkConfig, keys: &StaticKeys) -> aws_sdk_sts::Client {
    let conf = aws_sdk_sts::config::Builder::from(base)
        .credentials_provider(keys.provider("cooper-rotation"))
        .build();
    aws_sdk_sts::Client::from_conf(conf)
}

/// The IAM user `keys` belong to, by asking STS who signs with them.
async fn user_of(base: &SdkConfig, keys: &StaticKeys) -> Result<Option<String>, UpstreamError> {
    let out = sts_as(base, keys)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| upstream(Service::Sts, e))?;
    Ok(out
        .arn
        .and_then(|arn| arn.split_once(":user/").map(|(_, name)| name.to_owned()))
        .map(|path| path.rsplit('/').next().unwrap_or(&path).to_owned()))
}

/// IAM as one user's key signs it: that user's own keys.
pub struct IamUserKeys {
    base: SdkConfig,
    iam: aws_sdk_iam::Client,
    user: String,
    pause: Duration,
}

impl IamUserKeys {
    /// IAM as `keys` sign it (in `base`'s region and endpoint), for the user they belong to.
    pub async fn of(
        base: &SdkConfig,
        keys: &StaticKeys,
        pause: Duration,
    ) -> Result<Self, UpstreamError> {
        let user = user_of(base, keys)
            .await?
            .ok_or_else(|| corrupt(Service::Sts, "the key in use is not an IAM user's"))?;
        let conf = aws_sdk_iam::config::Builder::from(base)
            .credentials_provider(keys.provider("cooper-rotation"))
            .build();
        Ok(Self {
            base: base.clone(),
            iam: aws_sdk_iam::Client::from_conf(conf),
            user,
            pause,
        })
    }
}

#[async_trait]
impl UserKeys for IamUserKeys {
    fn user(&self) -> &str {
        &self.user
    }

    async fn list(&self) -> Result<Vec<AccessKeyInfo>, UpstreamError> {
        let out = self
            .iam
            .list_access_keys()
            .user_name(&self.user)
            .send()
            .await
            .map_err(|e| upstream(Service::Iam, e))?;
        out.access_key_metadata
            .into_iter()
            .map(|k| {
                let id = k
                    .access_key_id
                    .ok_or_else(|| corrupt(Service::Iam, "an access key without an id"))?;
                let created = k
                    .create_date
                    .and_then(|d| OffsetDateTime::from_unix_timestamp(d.secs()).ok())
                    .ok_or_else(|| corrupt(Service::Iam, "an access key without its date"))?;
                Ok(AccessKeyInfo {
                    id,
                    active: k.status == Some(StatusType::Active),
                    created,
                })
            })
            .collect()
    }

    async fn create(&self) -> Result<NewAccessKey, UpstreamError> {
        let out = self
            .iam
            .create_access_key()
            .user_name(&self.user)
            .send()
            .await
            .map_err(|e| upstream(Service::Iam, e))?;
        let key = out
            .access_key
            .ok_or_else(|| corrupt(Service::Iam, "CreateAccessKey returned no key"))?;
        Ok(NewAccessKey {
            id: key.access_key_id,
            secret: SecretString::from(key.secret_access_key),
        })
    }

    async fn works(&self, key: &NewAccessKey) -> Result<bool, UpstreamError> {
        let keys = StaticKeys {
            access_key_id: key.id.clone(),
            secret_access_key: key.secret.clone(),
        };
        for attempt in 0..WORKS_TRIES {
            match user_of(&self.base, &keys).await {
                Ok(Some(name)) if name == self.user => return Ok(true),
                // Known, but as someone else: it will not become this user's by waiting.
                Ok(_) => return Ok(false),
                Err(e) if attempt + 1 < WORKS_TRIES => {
                    tracing::info!(error = %e, "the new key is not known yet; trying again");
                    tokio::time::sleep(self.pause).await;
                }
                Err(_) => return Ok(false),
            }
        }
        Ok(false)
    }

    async fn deactivate(&self, id: &str) -> Result<(), UpstreamError> {
        self.iam
            .update_access_key()
            .user_name(&self.user)
            .access_key_id(id)
            .status(StatusType::Inactive)
            .send()
            .await
            .map_err(|e| upstream(Service::Iam, e))?;
        Ok(())
    }

    async fn delete(&self, id: &str) -> Result<(), UpstreamError> {
        self.iam
            .delete_access_key()
            .user_name(&self.user)
            .access_key_id(id)
            .send()
            .await
            .map_err(|e| upstream(Service::Iam, e))?;
        Ok(())
    }
}

/// The broker user's keys in IAM, managed with the key in use, and the one stored in SSM.
pub struct IamBrokerKeys {
    base: SdkConfig,
    source: SsmBrokerKeys,
    /// The KMS key the parameters are sealed under (SSM's default key when `None`).
    kms_key: Option<String>,
    /// IAM as the key in use signs it (read once a run).
    iam: OnceCell<IamUserKeys>,
    pause: Duration,
    /// Multi-region: the other regions' SSM, where the functions there read their copy (each
    /// sealed with that region's `alias/cooper`).
    replicas: Vec<aws_sdk_ssm::Client>,
}

impl IamBrokerKeys {
    pub fn new(base: &SdkConfig, prefix: &str, kms_key: Option<String>) -> Self {
        Self {
            base: base.clone(),
            source: SsmBrokerKeys::new(base, prefix),
            kms_key,
            iam: OnceCell::new(),
            pause: WORKS_PAUSE,
            replicas: Vec::new(),
        }
    }

    /// Stores each new key in these regions' SSM too (after this region's).
    pub fn with_replicas(mut self, regions: &[String]) -> Self {
        self.replicas = regions
            .iter()
            .map(|region| {
                aws_sdk_ssm::Client::from_conf(
                    aws_sdk_ssm::config::Builder::from(&self.base)
                        .region(aws_config::Region::new(region.clone()))
                        .build(),
                )
            })
            .collect();
        self
    }

    /// Tries a new key without pausing between tries (an emulator knows it at once).
    pub fn without_pauses(mut self) -> Self {
        self.pause = Duration::ZERO;
        self
    }

    async fn put(
        &self,
        ssm: &aws_sdk_ssm::Client,
        kms_key: Option<String>,
        param: Param,
        value: &str,
    ) -> Result<(), UpstreamError> {
        ssm.put_parameter()
            .name(param.name(&self.source.prefix))
            .value(value)
            .r#type(ParameterType::SecureString)
            .set_key_id(kms_key)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| upstream(Service::Ssm, e))?;
        Ok(())
    }

    /// Both parameters, in one region: the secret first, then the id (a reader between the two
    /// holds the old id with the new secret, which STS refuses, and reads both again).
    async fn put_pair(
        &self,
        ssm: &aws_sdk_ssm::Client,
        kms_key: Option<String>,
        key: &NewAccessKey,
    ) -> Result<(), UpstreamError> {
        self.put(
            ssm,
            kms_key.clone(),
            Param::BrokerSecretAccessKey,
            key.secret.expose_secret(),
        )
        .await?;
        self.put(ssm, kms_key, Param::BrokerAccessKeyId, &key.id)
            .await
    }
}

#[async_trait]
impl BrokerKeys for IamBrokerKeys {
    async fn stored(&self) -> Result<Option<String>, UpstreamError> {
        match self.source.keys().await {
            Ok(keys) => Ok(Some(keys.access_key_id)),
            Err(e) if e.kind == UpstreamKind::Refused && e.service == Service::Ssm => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn iam(&self) -> Result<&dyn UserKeys, UpstreamError> {
        let iam = self
            .iam
            .get_or_try_init(|| async {
                let keys = self.source.keys().await?;
                IamUserKeys::of(&self.base, &keys, self.pause).await
            })
            .await?;
        Ok(iam)
    }

    async fn store(&self, key: &NewAccessKey) -> Result<(), UpstreamError> {
        // The other regions first: the old key is deactivated only once every region holds the
        // new one, and this region's (what `stored` reads) says the rotation is done.
        for replica in &self.replicas {
            self.put_pair(replica, Some("alias/cooper".into()), key)
                .await?;
        }
        self.put_pair(&self.source.ssm, self.kms_key.clone(), key)
            .await
    }
}

/// IAM in the target accounts, as their federation users' own keys sign it: in the target's
/// partition (this region when it is in that partition, else the partition's home region).
pub struct IamFederationUsers {
    base: SdkConfig,
    pause: Duration,
}

impl IamFederationUsers {
    pub fn new(base: &SdkConfig) -> Self {
        Self {
            base: base.clone(),
            pause: WORKS_PAUSE,
        }
    }

    /// Tries a new key without pausing between tries (an emulator knows it at once).
    pub fn without_pauses(mut self) -> Self {
        self.pause = Duration::ZERO;
        self
    }
}

#[async_trait]
impl FederationIam for IamFederationUsers {
    async fn user(
        &self,
        keys: &FederationKeys,
        partition: Partition,
    ) -> Result<Box<dyn UserKeys>, UpstreamError> {
        let here = self
            .base
            .region()
            .map(|r| Partition::of_region(r.as_ref()) == partition)
            .unwrap_or(false);
        let base = if here {
            self.base.clone()
        } else {
            self.base
                .to_builder()
                .region(aws_config::Region::new(partition.home_region()))
                .build()
        };
        let keys = StaticKeys {
            access_key_id: keys.access_key_id.clone(),
            secret_access_key: keys.secret_access_key.clone(),
        };
        Ok(Box::new(IamUserKeys::of(&base, &keys, self.pause).await?))
    }
}
