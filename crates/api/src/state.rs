//! What the routers run on, built once at start-up: SDK clients, secrets from SSM, the use cases.

use std::sync::Arc;

use aws_config::SdkConfig;
use axum::extract::FromRef;
use cooper_aws::audit::DynamoAuditLog;
use cooper_aws::directory::DynamoDirectory;
use cooper_aws::kms::KmsVault;
use cooper_aws::ssm::{Param, Secrets, SecretsError};
use cooper_aws::sts::StsBroker;
use cooper_aws::{aws_sdk_dynamodb, aws_sdk_kms, aws_sdk_ssm};
use cooper_core::catalog::Catalog;
use cooper_core::clock::{Clock, SystemClock};
use cooper_core::issue::CredentialIssuer;
use cooper_core::session::BrokerSigning;

use crate::auth::Authenticator;
use crate::jwt::{JwtAuthority, JwtKeyError};
use crate::settings::{BrokerCredentials, ConfigError, Settings};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error(transparent)]
    JwtKey(#[from] JwtKeyError),
}

/// State of the issue-credentials routes.
#[derive(Clone)]
pub struct IssueState {
    pub issuer: Arc<CredentialIssuer>,
    pub catalog: Arc<Catalog>,
    pub auth: Arc<Authenticator>,
}

impl FromRef<IssueState> for Arc<Authenticator> {
    fn from_ref(state: &IssueState) -> Self {
        state.auth.clone()
    }
}

impl IssueState {
    /// Reads the secrets (one SSM call) and builds every client once.
    pub async fn load(sdk: &SdkConfig, settings: &Settings) -> Result<Self, StartupError> {
        Self::load_with_clock(sdk, settings, Arc::new(SystemClock)).await
    }

    pub async fn load_with_clock(
        sdk: &SdkConfig,
        settings: &Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartupError> {
        let mut wanted = vec![Param::JwtSigningKey];
        if settings.broker_credentials == BrokerCredentials::Ssm {
            wanted.extend([Param::BrokerAccessKeyId, Param::BrokerSecretAccessKey]);
        }
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
        let broker_keys = secrets.broker_keys();
        let signing = match settings.broker_credentials {
            BrokerCredentials::Ssm => BrokerSigning::IamUser,
            BrokerCredentials::Ambient => BrokerSigning::RoleChain,
        };

        let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
        let directory = Arc::new(DynamoDirectory::new(
            dynamodb.clone(),
            &settings.directory_table,
        ));
        let issuer = CredentialIssuer {
            directory: directory.clone(),
            broker: Arc::new(StsBroker::new(sdk, broker_keys.as_ref())),
            vault: Arc::new(KmsVault::new(aws_sdk_kms::Client::new(sdk))),
            audit: Arc::new(DynamoAuditLog::new(dynamodb, &settings.audit_table)),
            clock: clock.clone(),
            signing,
        };
        Ok(Self {
            issuer: Arc::new(issuer),
            catalog: Arc::new(Catalog {
                directory: directory.clone(),
                clock: clock.clone(),
            }),
            auth: Arc::new(Authenticator {
                jwt,
                directory,
                clock,
            }),
        })
    }
}
