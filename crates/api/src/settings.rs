//! Configuration from the environment, checked once at start-up: a missing variable is named.

use std::collections::BTreeSet;

use cooper_core::admin::Sensitive;
use std::ops::Not;

use cooper_core::admin::scope::AdminGroups;
use cooper_core::names::Partition;

use crate::oidc::{ProviderConfig, parse_providers};

/// Environment variables cooper's functions read.
pub mod env {
    pub const DIRECTORY_TABLE: &str = "COOPER_DIRECTORY_TABLE";
    pub const AUDIT_TABLE: &str = "COOPER_AUDIT_TABLE";
    pub const SSM_PREFIX: &str = "COOPER_SSM_PREFIX";
    pub const JWT_ISSUER: &str = "COOPER_JWT_ISSUER";
    pub const JWT_AUDIENCE: &str = "COOPER_JWT_AUDIENCE";
    pub const BROKER_CREDENTIALS: &str = "COOPER_BROKER_CREDENTIALS";
    pub const KMS_KEY: &str = "COOPER_KMS_KEY";
    pub const TOTP_ISSUER: &str = "COOPER_TOTP_ISSUER";
    pub const SESSION_MINUTES: &str = "COOPER_SESSION_MINUTES";
    pub const ADMIN_GROUPS: &str = "COOPER_ADMIN_GROUPS";
    pub const ADMIN_TOTP_OPERATIONS: &str = "COOPER_ADMIN_TOTP_OPERATIONS";
    pub const NOTIFY_TOPIC_ARN: &str = "COOPER_NOTIFY_TOPIC_ARN";
    pub const SIGNIN_ENDPOINT: &str = "COOPER_SIGNIN_ENDPOINT";
    pub const CONSOLE_ISSUER: &str = "COOPER_CONSOLE_ISSUER";
    pub const OIDC_PROVIDERS: &str = "COOPER_OIDC_PROVIDERS";
    pub const CREDENTIAL_RATE_LIMIT: &str = "COOPER_CREDENTIAL_RATE_LIMIT";
    pub const BROKER_PARTITIONS: &str = "COOPER_BROKER_PARTITIONS";
    pub const WEB_SESSION_MINUTES: &str = "COOPER_WEB_SESSION_MINUTES";
    pub const WEB_BASE_PATH: &str = "COOPER_WEB_BASE_PATH";
    pub const SAML_PROVIDERS: &str = "COOPER_SAML_PROVIDERS";
    pub const PUBLIC_URL: &str = "COOPER_PUBLIC_URL";
    pub const CONSOLE_LOGIN_ENDPOINT: &str = "COOPER_CONSOLE_LOGIN_ENDPOINT";
    pub const ACCESS_REQUEST_HOURS: &str = "COOPER_ACCESS_REQUEST_HOURS";
    pub const ROTATION_DAYS: &str = "COOPER_ROTATION_DAYS";
    pub const HOME_REGION: &str = "COOPER_HOME_REGION";
    pub const REPLICA_REGIONS: &str = "COOPER_REPLICA_REGIONS";
}

pub const DEFAULT_SSM_PREFIX: &str = "/cooper";
pub const DEFAULT_JWT_ISSUER: &str = "cooper";
pub const DEFAULT_JWT_AUDIENCE: &str = "cooper";
pub const DEFAULT_TOTP_ISSUER: &str = "cooper";
pub const DEFAULT_CONSOLE_ISSUER: &str = "cooper";
/// A login lasts a working day by default; high-security targets still ask for a fresh code.
pub const DEFAULT_SESSION_MINUTES: u32 = 480;
pub const MAX_SESSION_MINUTES: u32 = 1440;
// A record of ended sessions is kept as long as the longest session: none may outlive it.
const _: () = assert!(
    MAX_SESSION_MINUTES as i64 * 60 <= cooper_core::signout::LONGEST_SESSION.whole_seconds()
);
/// Credential and console requests one user may make per minute (0: no limit).
pub const DEFAULT_CREDENTIAL_RATE_LIMIT: u32 = 60;
/// How often the broker's key is rotated, in days, by default.
pub const DEFAULT_ROTATION_DAYS: u32 = 30;
/// How long an access request waits for an approver, in hours, by default; and at most.
pub const DEFAULT_ACCESS_REQUEST_HOURS: u32 = 24;
pub const MAX_ACCESS_REQUEST_HOURS: u32 = 168;
/// A web console session is shorter than an API session: a browser is left open.
pub const DEFAULT_WEB_SESSION_MINUTES: u32 = 60;

/// Which credentials sign AssumeRole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BrokerCredentials {
    /// The broker IAM user's keys from SSM: sessions up to the role's maximum (12 h).
    #[default]
    Ssm,
    /// The function's own (role) credentials: no IAM user to keep, but every AssumeRole is a
    /// role chain, capped by AWS at one hour.
    Ambient,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub directory_table: String,
    pub audit_table: String,
    pub ssm_prefix: String,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub broker_credentials: BrokerCredentials,
    /// The KMS key new TOTP secrets are sealed under (needed to enroll).
    pub kms_key: Option<String>,
    pub totp_issuer: String,
    /// How long a session from `POST /v1/sessions` lasts.
    pub session_minutes: u32,
    /// Identity-provider or cooper groups whose members are admins, and of what.
    pub admin_groups: AdminGroups,
    /// Admin operations that need a fresh TOTP code.
    pub admin_totp_operations: BTreeSet<Sensitive>,
    /// The SNS topic audit notices go to (audit-notify, and `cooper serve` when set).
    pub notify_topic_arn: Option<String>,
    /// Where `getSigninToken` is asked, instead of the partition's sign-in host (tests point it
    /// at a local stand-in; the login URL handed out always names the real host).
    pub signin_endpoint: Option<String>,
    /// The `Issuer` console sign-in links carry (shown by AWS when the session ends).
    pub console_issuer: String,
    /// Identity providers whose ID tokens sign people in.
    pub oidc_providers: Vec<ProviderConfig>,
    /// Credential and console requests one user may make per minute (0: no limit).
    pub credential_rate_limit: u32,
    /// Partitions besides the home one (the region's) where cooper has a broker identity (an
    /// IAM user there, its keys in SSM under `broker/<partition>/`): roles there are assumed
    /// through it. A role in any other partition is refused when it is configured.
    pub broker_partitions: BTreeSet<Partition>,
    /// How long a web console sign-in lasts (at most `session_minutes`).
    pub web_session_minutes: u32,
    /// The path the web console is served under (`/prod` behind a named stage), or empty.
    pub web_base_path: String,
    /// Local runs only: where console sign-in links point instead of the partition's sign-in
    /// host (`cooper serve` points it at its stand-in page).
    pub console_login_endpoint: Option<String>,
    /// SAML identity providers (a JSON list, checked when the web console starts: it serves
    /// SAML sign-in).
    pub saml_providers: String,
    /// cooper's own URL as people reach it (`https://cooper.example.com`): SAML's entity ids
    /// and assertion consumer URLs are made from it, never from a request's `Host`.
    pub public_url: Option<String>,
    /// How long an access request waits for an approver before it lapses.
    pub access_request_hours: u32,
    /// How often the broker's key is rotated (a younger key is kept).
    pub rotation_days: u32,
    /// Multi-region: the region whose tables take every write (conditional writes are
    /// consistent within one region only, so single-use codes, approvals and audit records are
    /// decided there). `None`: this region's.
    pub home_region: Option<String>,
    /// Multi-region, in the home region: the other regions, whose copies of the broker's key
    /// (in their SSM) a rotation writes too.
    pub replica_regions: Vec<String>,
}

impl Settings {
    /// Settings for a local deployment with these tables, everything else at its default.
    pub fn local(directory_table: &str, audit_table: &str) -> Self {
        Self {
            directory_table: directory_table.to_owned(),
            audit_table: audit_table.to_owned(),
            ssm_prefix: DEFAULT_SSM_PREFIX.to_owned(),
            jwt_issuer: DEFAULT_JWT_ISSUER.to_owned(),
            jwt_audience: DEFAULT_JWT_AUDIENCE.to_owned(),
            broker_credentials: BrokerCredentials::Ssm,
            kms_key: None,
            totp_issuer: DEFAULT_TOTP_ISSUER.to_owned(),
            session_minutes: DEFAULT_SESSION_MINUTES,
            admin_groups: AdminGroups::default(),
            admin_totp_operations: Sensitive::DEFAULT.into_iter().collect(),
            notify_topic_arn: None,
            signin_endpoint: None,
            console_issuer: DEFAULT_CONSOLE_ISSUER.to_owned(),
            oidc_providers: Vec::new(),
            credential_rate_limit: DEFAULT_CREDENTIAL_RATE_LIMIT,
            broker_partitions: BTreeSet::new(),
            web_session_minutes: DEFAULT_WEB_SESSION_MINUTES,
            web_base_path: String::new(),
            console_login_endpoint: None,
            saml_providers: String::new(),
            public_url: None,
            access_request_hours: DEFAULT_ACCESS_REQUEST_HOURS,
            rotation_days: DEFAULT_ROTATION_DAYS,
            home_region: None,
            replica_regions: Vec::new(),
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| {
            lookup(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or(ConfigError::Missing(name))
        };
        let optional = |name: &'static str, default: &str| {
            lookup(name)
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        let ssm_prefix = optional(env::SSM_PREFIX, DEFAULT_SSM_PREFIX);
        if !ssm_prefix.starts_with('/') {
            return Err(ConfigError::Invalid {
                name: env::SSM_PREFIX,
                reason: "must start with /".into(),
            });
        }
        let broker_credentials = match optional(env::BROKER_CREDENTIALS, "ssm").as_str() {
            "ssm" => BrokerCredentials::Ssm,
            "ambient" => BrokerCredentials::Ambient,
            other => {
                return Err(ConfigError::Invalid {
                    name: env::BROKER_CREDENTIALS,
                    reason: format!("must be ssm or ambient, not {other:?}"),
                });
            }
        };
        let session_minutes = optional(env::SESSION_MINUTES, &DEFAULT_SESSION_MINUTES.to_string())
            .parse::<u32>()
            .ok()
            .filter(|m| (5..=MAX_SESSION_MINUTES).contains(m))
            .ok_or_else(|| ConfigError::Invalid {
                name: env::SESSION_MINUTES,
                reason: format!("must be a number of minutes from 5 to {MAX_SESSION_MINUTES}"),
            })?;
        let web_session_minutes = optional(
            env::WEB_SESSION_MINUTES,
            &DEFAULT_WEB_SESSION_MINUTES.min(session_minutes).to_string(),
        )
        .parse::<u32>()
        .ok()
        .filter(|m| (5..=session_minutes).contains(m))
        .ok_or_else(|| ConfigError::Invalid {
            name: env::WEB_SESSION_MINUTES,
            reason: format!(
                "must be a number of minutes from 5 to {session_minutes} (COOPER_SESSION_MINUTES)"
            ),
        })?;
        let web_base_path = optional(env::WEB_BASE_PATH, "");
        let web_base_path = web_base_path.trim_end_matches('/').to_owned();
        let path_ok = web_base_path.is_empty()
            || (web_base_path.starts_with('/')
                && !web_base_path.starts_with("//")
                && web_base_path
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/-_.".contains(c)));
        if !path_ok {
            return Err(ConfigError::Invalid {
                name: env::WEB_BASE_PATH,
                reason: "must be a path like /prod (letters, digits, / - _ .)".into(),
            });
        }
        let credential_rate_limit = optional(
            env::CREDENTIAL_RATE_LIMIT,
            &DEFAULT_CREDENTIAL_RATE_LIMIT.to_string(),
        )
        .parse::<u32>()
        .map_err(|_| ConfigError::Invalid {
            name: env::CREDENTIAL_RATE_LIMIT,
            reason: "must be a number of requests per minute (0: no limit)".into(),
        })?;
        let admin_groups = AdminGroups::parse(&optional(env::ADMIN_GROUPS, "")).map_err(|e| {
            ConfigError::Invalid {
                name: env::ADMIN_GROUPS,
                reason: e.to_string(),
            }
        })?;
        let broker_partitions = optional(env::BROKER_PARTITIONS, "")
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(Partition::parse)
            .collect::<Result<BTreeSet<_>, _>>()
            .map_err(|e| ConfigError::Invalid {
                name: env::BROKER_PARTITIONS,
                reason: e.to_string(),
            })?;
        if broker_partitions.is_empty().not() && broker_credentials == BrokerCredentials::Ambient {
            return Err(ConfigError::Invalid {
                name: env::BROKER_PARTITIONS,
                reason: "needs broker keys from SSM (COOPER_BROKER_CREDENTIALS=ssm)".into(),
            });
        }
        let access_request_hours = optional(
            env::ACCESS_REQUEST_HOURS,
            &DEFAULT_ACCESS_REQUEST_HOURS.to_string(),
        )
        .parse::<u32>()
        .ok()
        .filter(|h| (1..=MAX_ACCESS_REQUEST_HOURS).contains(h))
        .ok_or_else(|| ConfigError::Invalid {
            name: env::ACCESS_REQUEST_HOURS,
            reason: format!("must be a number of hours from 1 to {MAX_ACCESS_REQUEST_HOURS}"),
        })?;
        let rotation_days = optional(env::ROTATION_DAYS, &DEFAULT_ROTATION_DAYS.to_string())
            .parse::<u32>()
            .ok()
            .filter(|d| (2..=365).contains(d))
            .ok_or_else(|| ConfigError::Invalid {
                name: env::ROTATION_DAYS,
                reason: "must be a number of days from 2 to 365".into(),
            })?;
        let admin_totp_operations = match lookup(env::ADMIN_TOTP_OPERATIONS) {
            None => Sensitive::DEFAULT.into_iter().collect(),
            Some(spec) => Sensitive::parse_list(&spec).map_err(|e| ConfigError::Invalid {
                name: env::ADMIN_TOTP_OPERATIONS,
                reason: e.to_string(),
            })?,
        };
        Ok(Self {
            directory_table: required(env::DIRECTORY_TABLE)?,
            audit_table: required(env::AUDIT_TABLE)?,
            ssm_prefix,
            jwt_issuer: optional(env::JWT_ISSUER, DEFAULT_JWT_ISSUER),
            jwt_audience: optional(env::JWT_AUDIENCE, DEFAULT_JWT_AUDIENCE),
            broker_credentials,
            kms_key: lookup(env::KMS_KEY).filter(|v| !v.trim().is_empty()),
            totp_issuer: optional(env::TOTP_ISSUER, DEFAULT_TOTP_ISSUER),
            session_minutes,
            admin_groups,
            admin_totp_operations,
            notify_topic_arn: lookup(env::NOTIFY_TOPIC_ARN).filter(|v| !v.trim().is_empty()),
            signin_endpoint: lookup(env::SIGNIN_ENDPOINT).filter(|v| !v.trim().is_empty()),
            console_issuer: optional(env::CONSOLE_ISSUER, DEFAULT_CONSOLE_ISSUER),
            oidc_providers: parse_providers(&optional(env::OIDC_PROVIDERS, "")).map_err(|e| {
                ConfigError::Invalid {
                    name: env::OIDC_PROVIDERS,
                    reason: e.to_string(),
                }
            })?,
            credential_rate_limit,
            broker_partitions,
            web_session_minutes,
            web_base_path,
            console_login_endpoint: lookup(env::CONSOLE_LOGIN_ENDPOINT)
                .filter(|v| !v.trim().is_empty()),
            saml_providers: optional(env::SAML_PROVIDERS, ""),
            public_url: lookup(env::PUBLIC_URL)
                .map(|v| v.trim().trim_end_matches('/').to_owned())
                .filter(|v| !v.is_empty()),
            access_request_hours,
            rotation_days,
            home_region: lookup(env::HOME_REGION)
                .map(|r| r.trim().to_owned())
                .filter(|r| !r.is_empty()),
            replica_regions: optional(env::REPLICA_REGIONS, "")
                .split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_table_is_named() {
        let err =
            Settings::from_lookup(|name| (name == env::AUDIT_TABLE).then(|| "audit".to_owned()))
                .unwrap_err();
        assert_eq!(err.to_string(), "COOPER_DIRECTORY_TABLE is not set");
    }

    #[test]
    fn defaults_fill_the_optional_settings() {
        let s = Settings::from_lookup(|name| match name {
            env::DIRECTORY_TABLE => Some("dir".into()),
            env::AUDIT_TABLE => Some("audit".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(s.ssm_prefix, "/cooper");
        assert_eq!(s.broker_credentials, BrokerCredentials::Ssm);
    }

    #[test]
    fn a_bad_broker_credentials_value_is_refused() {
        let err = Settings::from_lookup(|name| match name {
            env::DIRECTORY_TABLE => Some("dir".into()),
            env::AUDIT_TABLE => Some("audit".into()),
            env::BROKER_CREDENTIALS => Some("magic".into()),
            _ => None,
        })
        .unwrap_err();
        assert!(err.to_string().contains("COOPER_BROKER_CREDENTIALS"));
    }
}
