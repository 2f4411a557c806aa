//! The options that name a deployment (tables, SSM prefix, JWT issuer), shared by the commands.

use clap::Args;
use cooper_api::settings::{self, BrokerCredentials, Settings, env};
use cooper_core::admin::Sensitive;
use cooper_core::admin::scope::AdminGroups;
use cooper_core::names::InvalidValue;

#[derive(Debug, Clone, Args)]
pub struct DeploymentArgs {
    /// The directory table.
    #[arg(long, env = env::DIRECTORY_TABLE, default_value = "cooper-directory")]
    pub directory_table: String,
    /// The audit table.
    #[arg(long, env = env::AUDIT_TABLE, default_value = "cooper-audit")]
    pub audit_table: String,
    /// Where cooper's SSM parameters live.
    #[arg(long, env = env::SSM_PREFIX, default_value = settings::DEFAULT_SSM_PREFIX)]
    pub ssm_prefix: String,
    /// The `iss` of cooper's JWTs.
    #[arg(long, env = env::JWT_ISSUER, default_value = settings::DEFAULT_JWT_ISSUER)]
    pub jwt_issuer: String,
    /// The `aud` of cooper's JWTs.
    #[arg(long, env = env::JWT_AUDIENCE, default_value = settings::DEFAULT_JWT_AUDIENCE)]
    pub jwt_audience: String,
    /// What signs AssumeRole: the broker IAM user's keys from SSM, or the ambient credentials.
    #[arg(long, env = env::BROKER_CREDENTIALS, default_value = "ssm", value_parser = ["ssm", "ambient"])]
    pub broker_credentials: String,
    /// The KMS key new secrets (TOTP) are sealed under.
    #[arg(long, env = env::KMS_KEY, default_value = "alias/cooper")]
    pub kms_key: String,
    /// The issuer authenticator apps show.
    #[arg(long, env = env::TOTP_ISSUER, default_value = settings::DEFAULT_TOTP_ISSUER)]
    pub totp_issuer: String,
    /// How long a login session lasts, in minutes.
    #[arg(long, env = env::SESSION_MINUTES, default_value_t = settings::DEFAULT_SESSION_MINUTES,
          value_parser = clap::value_parser!(u32).range(5..=i64::from(settings::MAX_SESSION_MINUTES)))]
    pub session_minutes: u32,
    /// Groups whose members are admins: `platform-admins` (universal), `pay=111111111111+222222222222`.
    #[arg(long, env = env::ADMIN_GROUPS, default_value = "")]
    pub admin_groups: String,
    /// Admin operations that need a fresh TOTP code.
    #[arg(long, env = env::ADMIN_TOTP_OPERATIONS, default_value = Sensitive::DEFAULT_LIST)]
    pub admin_totp_operations: String,
    /// The SNS topic audit notices go to; by default `cooper serve` uses `cooper-audit`.
    #[arg(long, env = env::NOTIFY_TOPIC_ARN)]
    pub notify_topic_arn: Option<String>,
    /// Ask `getSigninToken` here instead of the partition's sign-in host (for local stand-ins).
    #[arg(long, env = env::SIGNIN_ENDPOINT)]
    pub signin_endpoint: Option<String>,
    /// Identity providers whose ID tokens sign people in (a JSON list; see the README).
    #[arg(long, env = env::OIDC_PROVIDERS, default_value = "")]
    pub oidc_providers: String,
    /// Credential and console requests one user may make per minute (0: no limit).
    #[arg(long, env = env::CREDENTIAL_RATE_LIMIT, default_value_t = settings::DEFAULT_CREDENTIAL_RATE_LIMIT)]
    pub credential_rate_limit: u32,
    /// Partitions besides the region's where cooper has a broker identity (`aws-us-gov,aws-cn`;
    /// its keys in SSM under broker/<partition>/).
    #[arg(long, env = env::BROKER_PARTITIONS, default_value = "")]
    pub broker_partitions: String,
    /// How long a web console sign-in lasts, in minutes.
    #[arg(long, env = env::WEB_SESSION_MINUTES, default_value_t = settings::DEFAULT_WEB_SESSION_MINUTES)]
    pub web_session_minutes: u32,
    /// Console links point here instead of the partition's sign-in host (`cooper serve` sets its
    /// own stand-in page: moto has no sign-in endpoint).
    #[arg(long, env = env::CONSOLE_LOGIN_ENDPOINT)]
    pub console_login_endpoint: Option<String>,
    /// SAML identity providers for the web console's sign-in (a JSON list; see the README).
    #[arg(long, env = env::SAML_PROVIDERS, default_value = "")]
    pub saml_providers: String,
    /// cooper's own URL as people reach it (SAML entity ids and assertion consumer URLs);
    /// `cooper serve` uses its own address when this is not given.
    #[arg(long, env = env::PUBLIC_URL)]
    pub public_url: Option<String>,
    /// How long an access request waits for an approver before it lapses, in hours.
    #[arg(long, env = env::ACCESS_REQUEST_HOURS, default_value_t = settings::DEFAULT_ACCESS_REQUEST_HOURS,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(settings::MAX_ACCESS_REQUEST_HOURS)))]
    pub access_request_hours: u32,
    /// How often the broker's key is rotated, in days (`cooper rotate-keys` keeps a younger key
    /// unless --force).
    #[arg(long, env = env::ROTATION_DAYS, default_value_t = settings::DEFAULT_ROTATION_DAYS,
          value_parser = clap::value_parser!(u32).range(2..=365))]
    pub rotation_days: u32,
    /// The Issuer console links carry.
    #[arg(long, env = env::CONSOLE_ISSUER, default_value = settings::DEFAULT_CONSOLE_ISSUER)]
    pub console_issuer: String,
}

impl DeploymentArgs {
    pub fn settings(&self) -> Result<Settings, InvalidValue> {
        Ok(Settings {
            directory_table: self.directory_table.clone(),
            audit_table: self.audit_table.clone(),
            ssm_prefix: self.ssm_prefix.clone(),
            jwt_issuer: self.jwt_issuer.clone(),
            jwt_audience: self.jwt_audience.clone(),
            broker_credentials: if self.broker_credentials == "ambient" {
                BrokerCredentials::Ambient
            } else {
                BrokerCredentials::Ssm
            },
            kms_key: Some(self.kms_key.clone()),
            totp_issuer: self.totp_issuer.clone(),
            session_minutes: self.session_minutes,
            admin_groups: AdminGroups::parse(&self.admin_groups)?,
            admin_totp_operations: Sensitive::parse_list(&self.admin_totp_operations)?,
            notify_topic_arn: self.notify_topic_arn.clone(),
            signin_endpoint: self.signin_endpoint.clone(),
            console_issuer: self.console_issuer.clone(),
            oidc_providers: cooper_api::oidc::parse_providers(&self.oidc_providers)
                .map_err(|e| InvalidValue::new("oidc_providers", e.to_string()))?,
            credential_rate_limit: self.credential_rate_limit,
            broker_partitions: self
                .broker_partitions
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(cooper_core::names::Partition::parse)
                .collect::<Result<_, _>>()?,
            web_session_minutes: self.web_session_minutes.min(self.session_minutes),
            web_base_path: String::new(),
            console_login_endpoint: self.console_login_endpoint.clone(),
            saml_providers: self.saml_providers.clone(),
            public_url: self
                .public_url
                .as_deref()
                .map(|u| u.trim().trim_end_matches('/').to_owned())
                .filter(|u| !u.is_empty()),
            access_request_hours: self.access_request_hours,
            rotation_days: self.rotation_days,
            home_region: None,
            replica_regions: Vec::new(),
        })
    }
}
