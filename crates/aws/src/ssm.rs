//! Secrets cooper reads from SSM Parameter Store (SecureString) once, at start-up.

use std::collections::HashMap;
use std::fmt;

use aws_credential_types::Credentials;
use aws_sdk_ssm::Client;
use cooper_core::names::Partition;
use cooper_core::ports::{Service, UpstreamError};
use secrecy::{ExposeSecret, SecretString};

use crate::error::upstream;

/// The parameters cooper keeps under its prefix (default `/cooper`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Param {
    /// The broker IAM user's access key id: signs AssumeRole.
    BrokerAccessKeyId,
    /// The broker IAM user's secret access key.
    BrokerSecretAccessKey,
    /// The key cooper signs its own JWTs with (base64 of at least 32 random bytes).
    JwtSigningKey,
    /// The access key id of the broker identity cooper has in another partition (an IAM user
    /// of an account there: GovCloud and China are separate clouds with their own IAM).
    PartitionBrokerAccessKeyId(Partition),
    PartitionBrokerSecretAccessKey(Partition),
    /// A parameter the configuration names, by its path under the prefix (an identity
    /// provider's client secret: `oidc/google/client-secret`).
    Named(String),
}

impl Param {
    pub fn name(&self, prefix: &str) -> String {
        let leaf = match self {
            Self::BrokerAccessKeyId => "broker/access-key-id".to_owned(),
            Self::BrokerSecretAccessKey => "broker/secret-access-key".to_owned(),
            Self::JwtSigningKey => "jwt/signing-key".to_owned(),
            Self::PartitionBrokerAccessKeyId(p) => format!("broker/{p}/access-key-id"),
            Self::PartitionBrokerSecretAccessKey(p) => format!("broker/{p}/secret-access-key"),
            Self::Named(leaf) => leaf.clone(),
        };
        format!("{}/{leaf}", prefix.trim_end_matches('/'))
    }
}

/// Long-term IAM-user keys, held only in memory.
pub struct StaticKeys {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
}

impl fmt::Debug for StaticKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StaticKeys({}, ..)", self.access_key_id)
    }
}

impl StaticKeys {
    pub fn provider(&self, name: &'static str) -> Credentials {
        Credentials::new(
            self.access_key_id.clone(),
            self.secret_access_key.expose_secret().to_owned(),
            None,
            None,
            name,
        )
    }
}

/// Why the secrets could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("SSM parameter(s) missing: {}", .0.join(", "))]
    Missing(Vec<String>),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

/// The decrypted values of some parameters, read in one GetParameters call per ten.
pub struct Secrets {
    values: HashMap<Param, SecretString>,
}

impl Secrets {
    /// Reads `wanted` under `prefix`; every one must exist, and the error names those that do not.
    pub async fn load(
        client: &Client,
        prefix: &str,
        wanted: &[Param],
    ) -> Result<Self, SecretsError> {
        let names: Vec<String> = wanted.iter().map(|p| p.name(prefix)).collect();
        let mut by_name: HashMap<String, String> = HashMap::new();
        // GetParameters takes at most ten names a call.
        for chunk in names.chunks(10) {
            let out = client
                .get_parameters()
                .set_names(Some(chunk.to_vec()))
                .with_decryption(true)
                .send()
                .await
                .map_err(|e| upstream(Service::Ssm, e))?;
            by_name.extend(
                out.parameters
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|p| Some((p.name?, p.value?))),
            );
        }
        let mut values = HashMap::new();
        let mut missing = Vec::new();
        for (param, name) in wanted.iter().zip(names) {
            match by_name.remove(&name) {
                Some(value) => {
                    values.insert(param.clone(), SecretString::from(value));
                }
                None => missing.push(name),
            }
        }
        if !missing.is_empty() {
            return Err(SecretsError::Missing(missing));
        }
        Ok(Self { values })
    }

    /// Secrets already in hand, as if loaded (a host that reads them another way; tests).
    pub fn of(values: impl IntoIterator<Item = (Param, SecretString)>) -> Self {
        Self {
            values: values.into_iter().collect(),
        }
    }

    pub fn take(&mut self, param: Param) -> Option<SecretString> {
        self.values.remove(&param)
    }

    /// Whether `param` was loaded (and not taken yet).
    pub fn has(&self, param: &Param) -> bool {
        self.values.contains_key(param)
    }

    fn keys(&mut self, id: Param, secret: Param) -> Option<StaticKeys> {
        let id = self.take(id)?;
        let secret = self.take(secret)?;
        Some(StaticKeys {
            access_key_id: id.expose_secret().to_owned(),
            secret_access_key: secret,
        })
    }

    /// The broker's keys, if both were loaded.
    pub fn broker_keys(&mut self) -> Option<StaticKeys> {
        self.keys(Param::BrokerAccessKeyId, Param::BrokerSecretAccessKey)
    }

    /// The broker's keys in another partition, if both were loaded.
    pub fn partition_broker_keys(&mut self, partition: Partition) -> Option<StaticKeys> {
        self.keys(
            Param::PartitionBrokerAccessKeyId(partition),
            Param::PartitionBrokerSecretAccessKey(partition),
        )
    }
}
