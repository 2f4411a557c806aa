//! STS: AssumeRole with the broker's keys, GetFederationToken with a target's own keys.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_sdk_sts::Client;
use aws_sdk_sts::config::Region;
use aws_sdk_sts::types::{Credentials as StsCredentials, Tag};
use cooper_core::names::Partition;
use cooper_core::ports::{
    AssumeRoleCall, CredentialBroker, FederationTokenCall, IssuedCredentials, Service,
    UpstreamError,
};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

use crate::error::{code_of, corrupt, upstream};
use crate::ssm::StaticKeys;

pub struct StsBroker {
    /// The partition of the region cooper runs in, and the client that signs AssumeRole there
    /// (the broker's IAM-user keys, or the ambient credentials): replaced when the keys are
    /// read again (see [`BrokerKeySource`]).
    home: Partition,
    home_client: std::sync::RwLock<Client>,
    /// Other partitions cooper has a broker identity in, each with its own IAM user's keys, to
    /// that partition's STS.
    elsewhere: Vec<(Partition, Client)>,
    /// The shared SDK configuration (region, endpoints, retries, HTTP client) federation clients start from.
    base: SdkConfig,
    reload: Option<Reload>,
}

/// Where the broker's keys are read again, so that a running function follows a rotation
/// without a restart: after STS refuses the keys it holds (once), and every so often.
#[async_trait]
pub trait BrokerKeySource: Send + Sync {
    async fn keys(&self) -> Result<StaticKeys, UpstreamError>;
}

struct Reload {
    source: std::sync::Arc<dyn BrokerKeySource>,
    every: std::time::Duration,
    /// When the keys were last read; held while they are read again (one read at a time).
    read_at: tokio::sync::Mutex<std::time::Instant>,
}

/// What STS says of keys it does not take (deactivated, deleted, or not yet known).
fn keys_refused(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("InvalidClientTokenId" | "SignatureDoesNotMatch" | "UnrecognizedClientException")
    )
}

impl StsBroker {
    /// `keys` are the broker's long-term IAM-user keys in the home partition (the region's);
    /// without them the ambient credentials of `base` sign (which makes AssumeRole a role
    /// chain when those are role credentials). `elsewhere` are the broker identities in other
    /// partitions.
    pub fn new(
        base: &SdkConfig,
        keys: Option<&StaticKeys>,
        elsewhere: &[(Partition, StaticKeys)],
    ) -> Self {
        let mut conf = aws_sdk_sts::config::Builder::from(base);
        if let Some(keys) = keys {
            conf = conf.credentials_provider(keys.provider("cooper-broker"));
        }
        let home = Self::home(base);
        let mut others = Vec::new();
        for (partition, keys) in elsewhere.iter().filter(|(p, _)| *p != home) {
            let conf = aws_sdk_sts::config::Builder::from(base)
                .credentials_provider(keys.provider("cooper-broker-partition"))
                .region(Region::new(partition.home_region()))
                .build();
            others.push((*partition, Client::from_conf(conf)));
        }
        Self {
            home,
            home_client: std::sync::RwLock::new(Client::from_conf(conf.build())),
            elsewhere: others,
            base: base.clone(),
            reload: None,
        }
    }

    /// Reads the home broker's keys again from `source` every `every`, and at once after STS
    /// refuses the ones held (a rotation replaced them), retrying that call once.
    pub fn reloading(
        mut self,
        source: std::sync::Arc<dyn BrokerKeySource>,
        every: std::time::Duration,
    ) -> Self {
        self.reload = Some(Reload {
            source,
            every,
            read_at: tokio::sync::Mutex::new(std::time::Instant::now()),
        });
        self
    }

    fn current_home(&self) -> Client {
        match self.home_client.read() {
            Ok(client) => client.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The home client, with the keys read again first when `force`d or when they are older
    /// than the interval.
    async fn home_client(&self, force: bool) -> Result<Client, UpstreamError> {
        let Some(reload) = &self.reload else {
            return Ok(self.current_home());
        };
        let mut read_at = reload.read_at.lock().await;
        if force || read_at.elapsed() >= reload.every {
            let keys = reload.source.keys().await?;
            let conf = aws_sdk_sts::config::Builder::from(&self.base)
                .credentials_provider(keys.provider("cooper-broker"))
                .build();
            let client = Client::from_conf(conf);
            match self.home_client.write() {
                Ok(mut held) => *held = client,
                Err(poisoned) => *poisoned.into_inner() = client,
            }
            *read_at = std::time::Instant::now();
        }
        Ok(self.current_home())
    }

    async fn assume_with(
        client: &Client,
        call: &AssumeRoleCall,
    ) -> Result<
        aws_sdk_sts::operation::assume_role::AssumeRoleOutput,
        aws_smithy_runtime_api::client::result::SdkError<
            aws_sdk_sts::operation::assume_role::AssumeRoleError,
            aws_smithy_runtime_api::client::orchestrator::HttpResponse,
        >,
    > {
        client
            .assume_role()
            .role_arn(call.role_arn.as_str())
            .role_session_name(call.session_name.as_str())
            .source_identity(call.source_identity.as_str())
            .set_external_id(call.external_id.as_ref().map(|e| e.as_str().to_owned()))
            .duration_seconds(seconds(call.duration.seconds()))
            .set_tags(session_tags(call).ok().flatten())
            .set_transitive_tag_keys((!call.transitive.is_empty()).then(|| {
                call.transitive
                    .iter()
                    .map(|k| k.as_str().to_owned())
                    .collect()
            }))
            .send()
            .await
    }

    /// The partition of the region cooper runs in.
    pub fn home(base: &SdkConfig) -> Partition {
        base.region()
            .map(|r| Partition::of_region(r.as_ref()))
            .unwrap_or_default()
    }

    /// Federation tokens are minted in the target's partition: in the broker's own region when it
    /// is in that partition, else in the partition's home region.
    fn federation_region(&self, partition: Partition) -> Region {
        match self.base.region() {
            Some(region) if Partition::of_region(region.as_ref()) == partition => region.clone(),
            _ => Region::new(partition.home_region()),
        }
    }
}

fn issued(
    credentials: Option<StsCredentials>,
    arn: Option<String>,
) -> Result<IssuedCredentials, UpstreamError> {
    let c =
        credentials.ok_or_else(|| corrupt(Service::Sts, "the response carried no credentials"))?;
    let expiration = OffsetDateTime::from_unix_timestamp(c.expiration.secs())
        .map_err(|_| corrupt(Service::Sts, "the credentials' expiration is out of range"))?;
    Ok(IssuedCredentials {
        access_key_id: c.access_key_id,
        secret_access_key: SecretString::from(c.secret_access_key),
        session_token: SecretString::from(c.session_token),
        expiration,
        principal_arn: arn.unwrap_or_default(),
    })
}

/// The call's session tags as the SDK takes them (`None` without any: nothing is sent).
fn session_tags(call: &AssumeRoleCall) -> Result<Option<Vec<Tag>>, UpstreamError> {
    if call.tags.is_empty() {
        return Ok(None);
    }
    call.tags
        .iter()
        .map(|t| {
            Tag::builder()
                .key(t.key.as_str())
                .value(t.value.as_str())
                .build()
                .map_err(|e| corrupt(Service::Sts, format!("a session tag: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn seconds(call_duration: u32) -> i32 {
    i32::try_from(call_duration).unwrap_or(i32::MAX)
}

#[async_trait]
impl CredentialBroker for StsBroker {
    async fn assume_role(&self, call: &AssumeRoleCall) -> Result<IssuedCredentials, UpstreamError> {
        // Tags that cannot be built are refused before anything is sent.
        session_tags(call)?;
        // A role of another partition goes to that partition's STS, signed by cooper's identity
        // there, or nowhere: never to another partition's STS.
        let partition = call.role_arn.partition();
        if partition != self.home {
            let broker = self
                .elsewhere
                .iter()
                .find(|(p, _)| *p == partition)
                .map(|(_, c)| c)
                .ok_or_else(|| {
                    UpstreamError::new(
                        Service::Sts,
                        cooper_core::ports::UpstreamKind::Refused,
                        format!("cooper has no broker identity in partition {partition}"),
                    )
                })?;
            let out = Self::assume_with(broker, call)
                .await
                .map_err(|e| upstream(Service::Sts, e))?;
            return issued(out.credentials, out.assumed_role_user.map(|u| u.arn));
        }
        let client = self.home_client(false).await?;
        let out = match Self::assume_with(&client, call).await {
            // The keys held were rotated away: read them again, and try once more.
            Err(e) if self.reload.is_some() && keys_refused(code_of(&e)) => {
                tracing::warn!("STS refused the broker's keys; reading them again");
                let client = self.home_client(true).await?;
                Self::assume_with(&client, call).await
            }
            other => other,
        }
        .map_err(|e| upstream(Service::Sts, e))?;
        issued(out.credentials, out.assumed_role_user.map(|u| u.arn))
    }

    async fn federation_token(
        &self,
        call: &FederationTokenCall,
    ) -> Result<IssuedCredentials, UpstreamError> {
        let credentials = Credentials::new(
            call.keys.access_key_id.clone(),
            call.keys.secret_access_key.expose_secret().to_owned(),
            None,
            None,
            "cooper-federation-target",
        );
        let conf = aws_sdk_sts::config::Builder::from(&self.base)
            .credentials_provider(credentials)
            .region(self.federation_region(call.partition))
            .build();
        let out = Client::from_conf(conf)
            .get_federation_token()
            .name(call.name.as_str())
            .policy(call.policy.as_str())
            .duration_seconds(seconds(call.duration.seconds()))
            .send()
            .await
            .map_err(|e| upstream(Service::Sts, e))?;
        issued(out.credentials, out.federated_user.map(|u| u.arn))
    }
}

/// The AWS principal the ambient credentials belong to (who an operator's command acts as).
pub async fn caller_arn(base: &SdkConfig) -> Result<String, UpstreamError> {
    let out = Client::new(base)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| upstream(Service::Sts, e))?;
    out.arn
        .ok_or_else(|| corrupt(Service::Sts, "GetCallerIdentity named no principal"))
}
