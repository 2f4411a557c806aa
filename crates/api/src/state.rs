//! What the routers run on, built once at start-up: SDK clients, secrets from SSM, the use cases.

use std::sync::Arc;

use aws_config::SdkConfig;
use axum::extract::FromRef;
use cooper_aws::admin::DynamoAdmin;
use cooper_aws::approvals::DynamoApprovalStore;
use cooper_aws::audit::DynamoAuditLog;
use cooper_aws::directory::DynamoDirectory;
use cooper_aws::factors::DynamoFactorStore;
use cooper_aws::kms::KmsVault;
use cooper_aws::ledger::DynamoLedger;
use cooper_aws::rate::DynamoRequestCounter;
use cooper_aws::requests::DynamoAccessRequests;
use cooper_aws::revoker::IamRevoker;
use cooper_aws::signin::FederationSignin;
use cooper_aws::ssm::{Param, Secrets, SecretsError, StaticKeys};
use cooper_aws::sts::StsBroker;
use cooper_aws::{aws_sdk_dynamodb, aws_sdk_kms, aws_sdk_ssm};
use cooper_core::admin::{Admin, AdminConfig};
use cooper_core::approval::Approvals;
use cooper_core::catalog::Catalog;
use cooper_core::clock::{Clock, Entropy, OsEntropy, SystemClock};
use cooper_core::factors::{Enrollment, PasswordChange, SecondFactor};
use cooper_core::issue::CredentialIssuer;
use cooper_core::ledger::Ledger;
use cooper_core::names::InvalidValue;
use cooper_core::ports::{Directory, Pacer, UpstreamError};
use cooper_core::rate::{RateLimit, RateLimiter};
use cooper_core::requests::AccessRequests;
use cooper_core::session::BrokerSigning;
use cooper_core::sessions::{LocalLogin, SIGNIN_FAILURES, SessionExchange};
use cooper_core::signout::Signout;
use cooper_core::totp::TotpIssuer;

use crate::auth::Authenticator;
use crate::jwt::{JwtAuthority, JwtKeyError};
use crate::oidc::OidcVerifier;
use crate::settings::{BrokerCredentials, ConfigError, Settings, env};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error(transparent)]
    JwtKey(#[from] JwtKeyError),
    #[error(transparent)]
    Client(#[from] UpstreamError),
    #[error(transparent)]
    Oidc(#[from] crate::oidc::ConfigError),
}

/// Holds refusals back on the runtime's timer (see `cooper_core::sessions::REFUSAL_FLOOR`).
struct TokioPacer;

#[async_trait::async_trait]
impl Pacer for TokioPacer {
    fn mark(&self) -> std::time::Instant {
        std::time::Instant::now()
    }

    async fn hold(&self, since: std::time::Instant, floor: std::time::Duration) {
        tokio::time::sleep_until(tokio::time::Instant::from_std(since + floor)).await;
    }
}

/// What every router shares: authentication, the ledger, the clock, second factors.
#[derive(Clone)]
pub struct Shared {
    pub auth: Arc<Authenticator>,
    pub jwt: Arc<JwtAuthority>,
    pub ledger: Arc<dyn Ledger>,
    pub directory: Arc<dyn Directory>,
    pub catalog: Arc<Catalog>,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    pub second_factor: Arc<SecondFactor>,
    pub approvals: Arc<Approvals>,
    pub requests: Arc<AccessRequests>,
    pub admin: Arc<Admin>,
    pub signout: Arc<Signout>,
    /// The DynamoDB client the request counters write through (the home region's).
    dynamodb: aws_sdk_dynamodb::Client,
}

/// The adapters a process builds once, over one DynamoDB client, and the use cases every
/// router shares.
struct Core {
    dynamodb: aws_sdk_dynamodb::Client,
    directory: Arc<dyn Directory>,
    ledger: Arc<dyn Ledger>,
    catalog: Arc<Catalog>,
    entropy: Arc<dyn Entropy>,
    second_factor: Arc<SecondFactor>,
    approvals: Arc<Approvals>,
    requests: Arc<AccessRequests>,
    admin: Arc<Admin>,
}

impl Core {
    fn build(sdk: &SdkConfig, settings: &Settings, clock: &Arc<dyn Clock>) -> Self {
        let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
        let home = home_dynamodb(sdk, settings);
        let mut vault = KmsVault::new(aws_sdk_kms::Client::new(sdk));
        if let Some(key) = &settings.kms_key {
            vault = vault.with_key(key);
        }
        let directory: Arc<dyn Directory> = Arc::new(DynamoDirectory::new(
            dynamodb.clone(),
            &settings.directory_table,
        ));
        let entropy: Arc<dyn Entropy> = Arc::new(OsEntropy);
        let ledger: Arc<dyn Ledger> = Arc::new(DynamoLedger::new(
            home.clone(),
            &settings.directory_table,
            &settings.audit_table,
        ));
        let catalog = Arc::new(Catalog::new(directory.clone(), clock.clone()));
        let second_factor = Arc::new(SecondFactor {
            store: Arc::new(DynamoFactorStore::new(
                home.clone(),
                &settings.directory_table,
            )),
            vault: Arc::new(vault),
            clock: clock.clone(),
        });
        let approvals = Arc::new(Approvals {
            store: Arc::new(DynamoApprovalStore::new(
                dynamodb.clone(),
                &settings.directory_table,
            )),
            catalog: catalog.clone(),
            directory: directory.clone(),
            verifier: second_factor.clone(),
            ledger: ledger.clone(),
            entropy: entropy.clone(),
            clock: clock.clone(),
        });
        let requests = Arc::new(AccessRequests {
            store: Arc::new(DynamoAccessRequests::new(DynamoDirectory::new(
                dynamodb.clone(),
                &settings.directory_table,
            ))),
            catalog: catalog.clone(),
            directory: directory.clone(),
            verifier: second_factor.clone(),
            ledger: ledger.clone(),
            entropy: entropy.clone(),
            clock: clock.clone(),
            lifetime: time::Duration::hours(i64::from(settings.access_request_hours)),
        });
        let admin = Arc::new(Admin {
            store: Arc::new(DynamoAdmin::new(DynamoDirectory::new(
                dynamodb.clone(),
                &settings.directory_table,
            ))),
            directory: directory.clone(),
            factors: second_factor.store.clone(),
            second_factor: second_factor.clone(),
            ledger: ledger.clone(),
            search: Arc::new(DynamoAuditLog::new(dynamodb.clone(), &settings.audit_table)),
            vault: second_factor.vault.clone(),
            policies: Arc::new(IamRevoker::new(sdk.clone(), StsBroker::home(sdk))),
            clock: clock.clone(),
            entropy: entropy.clone(),
            config: AdminConfig {
                groups: settings.admin_groups.clone(),
                sensitive: settings.admin_totp_operations.clone(),
                role_partitions: std::iter::once(StsBroker::home(sdk))
                    .chain(settings.broker_partitions.iter().copied())
                    .collect(),
            },
        });
        Self {
            // What the shared counters write through: the home region's, as the ledger.
            dynamodb: home,
            directory,
            ledger,
            catalog,
            entropy,
            second_factor,
            approvals,
            requests,
            admin,
        }
    }
}

/// DynamoDB where the writes go: this region's, or the home region's (multi-region: conditional
/// writes hold within one region only, so every claim of a code, every approval, every count
/// and every audit record is decided in the home region; reads stay local).
pub(crate) fn home_dynamodb(sdk: &SdkConfig, settings: &Settings) -> aws_sdk_dynamodb::Client {
    let here = sdk.region().map(|r| r.as_ref().to_owned());
    match &settings.home_region {
        Some(home) if here.as_deref() != Some(home.as_str()) => {
            aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(sdk)
                    .region(aws_config::Region::new(home.clone()))
                    .build(),
            )
        }
        _ => aws_sdk_dynamodb::Client::new(sdk),
    }
}

/// The admin use cases over a deployment's tables, for operators' commands (`cooper setup`,
/// `cooper token`): the same code, and the same audit records, as the admin API.
pub fn operator_admin(sdk: &SdkConfig, settings: &Settings) -> Arc<Admin> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    Core::build(sdk, settings, &clock).admin
}

impl Shared {
    fn build(
        sdk: &SdkConfig,
        settings: &Settings,
        jwt: JwtAuthority,
        clock: Arc<dyn Clock>,
        secrets: &mut Secrets,
    ) -> Result<Self, StartupError> {
        let Core {
            dynamodb,
            directory,
            ledger,
            catalog,
            entropy,
            second_factor,
            approvals,
            requests,
            admin,
        } = Core::build(sdk, settings, &clock);
        let jwt = Arc::new(jwt);
        let oidc = (!settings.oidc_providers.is_empty())
            .then(|| {
                OidcVerifier::new(settings.oidc_providers.clone(), clock.clone())
                    .map(|v| Arc::new(v.with_client_secrets(secrets)))
            })
            .transpose()?;
        Ok(Self {
            dynamodb: dynamodb.clone(),
            signout: Arc::new(Signout {
                directory: directory.clone(),
                ledger: ledger.clone(),
                clock: clock.clone(),
            }),
            auth: Arc::new(Authenticator {
                jwt: jwt.clone(),
                directory: directory.clone(),
                clock: clock.clone(),
                oidc,
            }),
            jwt,
            ledger,
            directory,
            catalog,
            clock,
            entropy,
            second_factor,
            approvals,
            requests,
            admin,
        })
    }

    /// Reads the JWT key and `extra` parameters from SSM in one call, and builds what is shared.
    async fn load(
        sdk: &SdkConfig,
        settings: &Settings,
        extra: &[Param],
        clock: Arc<dyn Clock>,
    ) -> Result<(Self, Secrets), StartupError> {
        let mut wanted = vec![Param::JwtSigningKey];
        wanted.extend_from_slice(extra);
        let mut secrets = Secrets::load(
            &aws_sdk_ssm::Client::new(sdk),
            &settings.ssm_prefix,
            &wanted,
        )
        .await?;
        let jwt_key = secrets.take(Param::JwtSigningKey).ok_or_else(|| {
            SecretsError::Missing(vec![Param::JwtSigningKey.name(&settings.ssm_prefix)])
        })?;
        let jwt = JwtAuthority::new(&jwt_key, &settings.jwt_issuer, &settings.jwt_audience)?;
        let shared = Self::build(sdk, settings, jwt, clock, &mut secrets)?;
        Ok((shared, secrets))
    }
}

impl FromRef<Shared> for Arc<Authenticator> {
    fn from_ref(state: &Shared) -> Self {
        state.auth.clone()
    }
}

/// State of the issue-credentials routes.
#[derive(Clone)]
pub struct IssueState {
    pub shared: Shared,
    pub issuer: Arc<CredentialIssuer>,
    pub catalog: Arc<Catalog>,
}

impl FromRef<IssueState> for Arc<Authenticator> {
    fn from_ref(state: &IssueState) -> Self {
        state.shared.auth.clone()
    }
}

/// How often a running function reads the broker's keys again (a rotation reaches it by then
/// at the latest; at once when STS refuses the keys it holds).
const BROKER_KEYS_READ_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

/// STS with the broker's keys: with keys from SSM, read again after a rotation.
fn broker(
    sdk: &SdkConfig,
    settings: &Settings,
    keys: Option<&StaticKeys>,
    elsewhere: &[(cooper_core::names::Partition, StaticKeys)],
) -> StsBroker {
    let broker = StsBroker::new(sdk, keys, elsewhere);
    match (settings.broker_credentials, keys) {
        (BrokerCredentials::Ssm, Some(_)) => broker.reloading(
            Arc::new(cooper_aws::rotation::SsmBrokerKeys::new(
                sdk,
                &settings.ssm_prefix,
            )),
            BROKER_KEYS_READ_EVERY,
        ),
        _ => broker,
    }
}

fn broker_params(settings: &Settings) -> Vec<Param> {
    match settings.broker_credentials {
        BrokerCredentials::Ssm => {
            let mut params = vec![Param::BrokerAccessKeyId, Param::BrokerSecretAccessKey];
            for p in &settings.broker_partitions {
                params.push(Param::PartitionBrokerAccessKeyId(*p));
                params.push(Param::PartitionBrokerSecretAccessKey(*p));
            }
            params
        }
        BrokerCredentials::Ambient => Vec::new(),
    }
}

/// The broker identities in other partitions, out of the secrets read at start-up.
fn partition_brokers(
    settings: &Settings,
    secrets: &mut Secrets,
) -> Vec<(cooper_core::names::Partition, StaticKeys)> {
    settings
        .broker_partitions
        .iter()
        .filter_map(|p| secrets.partition_broker_keys(*p).map(|k| (*p, k)))
        .collect()
}

impl IssueState {
    /// Reads the secrets (one SSM call) and builds every client once.
    pub async fn load(sdk: &SdkConfig, settings: &Settings) -> Result<Self, StartupError> {
        let clock = Arc::new(SystemClock);
        let (shared, mut secrets) =
            Shared::load(sdk, settings, &broker_params(settings), clock).await?;
        Self::build(shared, sdk, settings, &mut secrets)
    }

    fn build(
        shared: Shared,
        sdk: &SdkConfig,
        settings: &Settings,
        secrets: &mut Secrets,
    ) -> Result<Self, StartupError> {
        let broker_keys = secrets.broker_keys();
        let elsewhere = partition_brokers(settings, secrets);
        let signing = match settings.broker_credentials {
            BrokerCredentials::Ssm => BrokerSigning::IamUser,
            BrokerCredentials::Ambient => BrokerSigning::RoleChain,
        };
        let issuer = CredentialIssuer {
            catalog: shared.catalog.clone(),
            broker: Arc::new(broker(sdk, settings, broker_keys.as_ref(), &elsewhere)),
            vault: shared.second_factor.vault.clone(),
            ledger: shared.ledger.clone(),
            clock: shared.clock.clone(),
            signing,
            second_factor: shared.second_factor.clone(),
            approvals: shared.approvals.clone(),
            console: Arc::new(
                FederationSignin::new(settings.signin_endpoint.clone(), &settings.console_issuer)?
                    .with_login_endpoint(settings.console_login_endpoint.clone()),
            ),
            console_region: sdk.region().map(ToString::to_string),
            rate: RateLimiter::new(
                Arc::new(DynamoRequestCounter::new(
                    shared.dynamodb.clone(),
                    &settings.directory_table,
                )),
                "credentials",
                (settings.credential_rate_limit > 0)
                    .then(|| RateLimit::per_minute(settings.credential_rate_limit)),
            ),
        };
        Ok(Self {
            issuer: Arc::new(issuer),
            catalog: shared.catalog.clone(),
            shared,
        })
    }
}

/// State of the enroll-totp routes: enrollment, sign-in, passwords.
#[derive(Clone)]
pub struct EnrollState {
    pub shared: Shared,
    pub enrollment: Arc<Enrollment>,
    pub login: Arc<LocalLogin>,
    pub exchange: Arc<SessionExchange>,
    pub password: Arc<PasswordChange>,
}

impl FromRef<EnrollState> for Arc<Authenticator> {
    fn from_ref(state: &EnrollState) -> Self {
        state.shared.auth.clone()
    }
}

impl EnrollState {
    pub async fn load(sdk: &SdkConfig, settings: &Settings) -> Result<Self, StartupError> {
        let (shared, _) = Shared::load(sdk, settings, &[], Arc::new(SystemClock)).await?;
        Self::build(shared, settings)
    }

    fn build(shared: Shared, settings: &Settings) -> Result<Self, StartupError> {
        if settings.kms_key.is_none() {
            return Err(ConfigError::Missing(env::KMS_KEY).into());
        }
        let issuer = TotpIssuer::parse(&settings.totp_issuer).map_err(|e: InvalidValue| {
            ConfigError::Invalid {
                name: env::TOTP_ISSUER,
                reason: e.reason,
            }
        })?;
        let lifetime = time::Duration::minutes(i64::from(settings.session_minutes));
        let login = local_login(&shared, settings, shared.jwt.clone(), lifetime);
        Ok(Self {
            enrollment: Arc::new(Enrollment {
                directory: shared.directory.clone(),
                verifier: shared.second_factor.clone(),
                ledger: shared.ledger.clone(),
                entropy: shared.entropy.clone(),
                issuer,
            }),
            login: Arc::new(login),
            exchange: Arc::new(SessionExchange {
                directory: shared.directory.clone(),
                ledger: shared.ledger.clone(),
                signer: shared.jwt.clone(),
                entropy: shared.entropy.clone(),
                clock: shared.clock.clone(),
                lifetime,
            }),
            password: Arc::new(PasswordChange {
                directory: shared.directory.clone(),
                verifier: shared.second_factor.clone(),
                ledger: shared.ledger.clone(),
                entropy: shared.entropy.clone(),
            }),
            shared,
        })
    }
}

/// Every router's state, from one read of the secrets (`cooper serve`).
/// Local sign-in whose sessions `signer` signs, for `lifetime` (the API's, or the web
/// console's). Failed sign-ins are counted together, whichever door they came through.
pub fn local_login(
    shared: &Shared,
    settings: &Settings,
    signer: Arc<dyn cooper_core::ports::SessionSigner>,
    lifetime: time::Duration,
) -> LocalLogin {
    LocalLogin {
        directory: shared.directory.clone(),
        verifier: shared.second_factor.clone(),
        ledger: shared.ledger.clone(),
        signer,
        entropy: shared.entropy.clone(),
        lifetime,
        failures: RateLimiter::new(
            Arc::new(DynamoRequestCounter::new(
                shared.dynamodb.clone(),
                &settings.directory_table,
            )),
            "signin-failures",
            Some(SIGNIN_FAILURES),
        ),
        pacer: Arc::new(TokioPacer),
    }
}

#[derive(Clone)]
pub struct States {
    pub issue: IssueState,
    pub enroll: EnrollState,
    pub admin: AdminState,
}

pub async fn load_all(sdk: &SdkConfig, settings: &Settings) -> Result<States, StartupError> {
    load_all_with_clock(sdk, settings, Arc::new(SystemClock)).await
}

/// As `load_all`, on a given clock (tests move time forward to see codes and locks expire).
pub async fn load_all_with_clock(
    sdk: &SdkConfig,
    settings: &Settings,
    clock: Arc<dyn Clock>,
) -> Result<States, StartupError> {
    // Every router, the console's included: it runs the identity providers' code flow, so it
    // reads the confidential console clients' secrets too.
    let mut wanted = broker_params(settings);
    wanted.extend(OidcVerifier::secret_params(&settings.oidc_providers));
    let (shared, mut secrets) = Shared::load(sdk, settings, &wanted, clock).await?;
    Ok(States {
        issue: IssueState::build(shared.clone(), sdk, settings, &mut secrets)?,
        enroll: EnrollState::build(shared.clone(), settings)?,
        admin: AdminState { shared },
    })
}

/// State of the admin-targets routes.
#[derive(Clone)]
pub struct AdminState {
    pub shared: Shared,
}

impl FromRef<AdminState> for Arc<Authenticator> {
    fn from_ref(state: &AdminState) -> Self {
        state.shared.auth.clone()
    }
}

impl AdminState {
    pub async fn load(sdk: &SdkConfig, settings: &Settings) -> Result<Self, StartupError> {
        let (shared, _) = Shared::load(sdk, settings, &[], Arc::new(SystemClock)).await?;
        Ok(Self { shared })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdk(region: &str) -> SdkConfig {
        SdkConfig::builder()
            .region(aws_config::Region::new(region.to_owned()))
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build()
    }

    #[test]
    fn writes_go_to_the_home_region_and_reads_stay_here() {
        let mut settings = Settings::local("directory", "audit");
        let region = |c: &aws_sdk_dynamodb::Client| c.config().region().map(|r| r.to_string());
        assert_eq!(
            region(&home_dynamodb(&sdk("eu-west-1"), &settings)).as_deref(),
            Some("eu-west-1")
        );
        settings.home_region = Some("us-east-1".into());
        assert_eq!(
            region(&home_dynamodb(&sdk("eu-west-1"), &settings)).as_deref(),
            Some("us-east-1")
        );
        assert_eq!(
            region(&home_dynamodb(&sdk("us-east-1"), &settings)).as_deref(),
            Some("us-east-1")
        );
    }
}
