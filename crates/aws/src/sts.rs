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

use crate::error::{corrupt, upstream};
use crate::ssm::StaticKeys;

pub struct StsBroker {
    /// Signs AssumeRole, one client per partition cooper has a broker identity in: the home
    /// partition's (the broker's IAM-user keys, or the ambient credentials), and any other
    /// partition's (its own IAM user's keys, to that partition's STS).
    brokers: Vec<(Partition, Client)>,
    /// The shared SDK configuration (region, endpoints, retries, HTTP client) federation clients start from.
    base: SdkConfig,
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
        let mut brokers = vec![(home, Client::from_conf(conf.build()))];
        for (partition, keys) in elsewhere.iter().filter(|(p, _)| *p != home) {
            let conf = aws_sdk_sts::config::Builder::from(base)
                .credentials_provider(keys.provider("cooper-broker-partition"))
                .region(Region::new(partition.home_region()))
                .build();
            brokers.push((*partition, Client::from_conf(conf)));
        }
        Self {
            brokers,
            base: base.clone(),
        }
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
        // A role of another partition goes to that partition's STS, signed by cooper's identity
        // there, or nowhere: never to another partition's STS.
        let partition = call.role_arn.partition();
        let broker = self
            .brokers
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
        let out = broker
            .assume_role()
            .role_arn(call.role_arn.as_str())
            .role_session_name(call.session_name.as_str())
            .source_identity(call.source_identity.as_str())
            .set_external_id(call.external_id.as_ref().map(|e| e.as_str().to_owned()))
            .duration_seconds(seconds(call.duration.seconds()))
            .set_tags(session_tags(call)?)
            .set_transitive_tag_keys((!call.transitive.is_empty()).then(|| {
                call.transitive
                    .iter()
                    .map(|k| k.as_str().to_owned())
                    .collect()
            }))
            .send()
            .await
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
