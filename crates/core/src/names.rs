//! Validated names and values: parse at the edge, and inside a value of these types is valid for AWS and for cooper's keys.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A value that failed validation, naming the field and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidValue {
    pub field: &'static str,
    pub reason: String,
}

impl InvalidValue {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// The characters AWS allows in role session names, source identities and federated user names: `[\w+=,.@-]`.
fn is_sts_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-')
}

fn check_len(field: &'static str, value: &str, min: usize, max: usize) -> Result<(), InvalidValue> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(InvalidValue::new(
            field,
            format!("must be {min} to {max} characters long, got {n}"),
        ));
    }
    Ok(())
}

/// Declares a string newtype that can only be built through `parse`, and (de)serialises through it.
macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidValue;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}

string_newtype!(
    /// A 12-digit AWS account id.
    AccountId
);

impl AccountId {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidValue::new("account_id", "must be exactly 12 digits"))
        }
    }

    /// The account an ARN (`arn:PARTITION:SERVICE:REGION:ACCOUNT:...`) names, if it names one.
    pub fn of_arn(arn: &str) -> Option<Self> {
        let mut parts = arn.splitn(6, ':');
        match (parts.next(), parts.nth(3)) {
            (Some("arn"), Some(account)) => Self::parse(account).ok(),
            _ => None,
        }
    }
}

string_newtype!(
    /// A cooper user: a person or a machine identity. The name doubles as the STS SourceIdentity and
    /// RoleSessionName, so it follows their rules: 2 to 64 characters of `[A-Za-z0-9_+=,.@-]`.
    UserName
);

impl UserName {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        check_len("user", value, 2, 64)?;
        if !value.chars().all(is_sts_name_char) {
            return Err(InvalidValue::new(
                "user",
                "may contain only letters, digits and _+=,.@-",
            ));
        }
        Ok(Self(value.to_owned()))
    }
}

string_newtype!(
    /// A group of users, from cooper itself or from an identity provider's `groups` claim.
    GroupName
);

impl GroupName {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        check_len("group", value, 1, 128)?;
        if value.chars().any(|c| c.is_control() || c == '#') || value.trim() != value {
            return Err(InvalidValue::new(
                "group",
                "may not contain control characters or '#', nor start or end with a space",
            ));
        }
        Ok(Self(value.to_owned()))
    }
}

string_newtype!(
    /// The name a user asks for: `prod-admin`. 1 to 64 of `[A-Za-z0-9._-]`, starting with a letter or digit.
    TargetName
);

impl TargetName {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        check_len("target", value, 1, 64)?;
        let mut chars = value.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
        if !first_ok
            || !value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(InvalidValue::new(
                "target",
                "must start with a letter or digit and contain only letters, digits and ._-",
            ));
        }
        Ok(Self(value.to_owned()))
    }
}

string_newtype!(
    /// A friendly account name, for people: `production`, `Payments (EU)`.
    AccountName
);

impl AccountName {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        check_len("account_name", value, 1, 64)?;
        if value.chars().any(char::is_control) {
            return Err(InvalidValue::new(
                "account_name",
                "may not contain control characters",
            ));
        }
        Ok(Self(value.to_owned()))
    }
}

string_newtype!(
    /// The ExternalId a role's trust policy asks for: 2 to 1224 of `[\w+=,.@:/-]`.
    ExternalId
);

impl ExternalId {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        check_len("external_id", value, 2, 1224)?;
        if !value
            .chars()
            .all(|c| is_sts_name_char(c) || c == ':' || c == '/')
        {
            return Err(InvalidValue::new(
                "external_id",
                "may contain only letters, digits and _+=,.@:/-",
            ));
        }
        Ok(Self(value.to_owned()))
    }
}

/// Declares a newtype of text for people (names, descriptions, reasons): trimmed, `$min` to `$max`
/// characters, no control characters.
macro_rules! text_newtype {
    ($(#[$meta:meta])* $name:ident, $field:literal, $min:literal, $max:literal) => {
        string_newtype!($(#[$meta])* $name);

        impl $name {
            pub const MAX_CHARS: usize = $max;

            pub fn parse(value: &str) -> Result<Self, InvalidValue> {
                let value = value.trim();
                let n = value.chars().count();
                if !($min..=$max).contains(&n) || value.chars().any(char::is_control) {
                    return Err(InvalidValue::new(
                        $field,
                        concat!("must be ", $min, " to ", $max, " printable characters"),
                    ));
                }
                Ok(Self(value.to_owned()))
            }
        }
    };
}

text_newtype!(
    /// Why someone asks for access or refuses it: shown to approvers and kept in the audit trail.
    Reason, "reason", 1, 500
);

text_newtype!(
    /// What a target or group is for.
    Description, "description", 0, 256
);

text_newtype!(
    /// A user's name for people: `Alice Example`.
    DisplayName, "display_name", 0, 128
);

text_newtype!(
    /// What an API token is for, shown when listing tokens.
    TokenLabel, "label", 0, 100
);

string_newtype!(
    /// An AWS access key id (`AKIA...`, `ASIA...`): what an incident responder looks up.
    AccessKeyId
);

impl AccessKeyId {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        if (16..=128).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidValue::new(
                "access_key_id",
                "must be an AWS access key id (16 to 128 letters and digits)",
            ))
        }
    }
}

/// The AWS partition an account lives in; it decides ARNs, the STS region and the console sign-in host.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub enum Partition {
    #[default]
    #[serde(rename = "aws")]
    Aws,
    #[serde(rename = "aws-us-gov")]
    AwsUsGov,
    #[serde(rename = "aws-cn")]
    AwsCn,
}

impl Partition {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        match value {
            "aws" => Ok(Self::Aws),
            "aws-us-gov" => Ok(Self::AwsUsGov),
            "aws-cn" => Ok(Self::AwsCn),
            _ => Err(InvalidValue::new(
                "partition",
                "must be one of aws, aws-us-gov, aws-cn",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aws => "aws",
            Self::AwsUsGov => "aws-us-gov",
            Self::AwsCn => "aws-cn",
        }
    }

    /// The partition a region belongs to (`cn-north-1` -> aws-cn).
    pub fn of_region(region: &str) -> Self {
        if region.starts_with("cn-") {
            Self::AwsCn
        } else if region.starts_with("us-gov-") {
            Self::AwsUsGov
        } else {
            Self::Aws
        }
    }

    /// The region to call STS in for credentials that belong to this partition.
    pub fn home_region(self) -> &'static str {
        match self {
            Self::Aws => "us-east-1",
            Self::AwsUsGov => "us-gov-west-1",
            Self::AwsCn => "cn-north-1",
        }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

string_newtype!(
    /// An IAM role ARN: `arn:PARTITION:iam::ACCOUNT:role/PATH/NAME`.
    RoleArn
);

impl RoleArn {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        let bad = |reason: &str| InvalidValue::new("role_arn", reason);
        if value.len() > 2048 {
            return Err(bad("is longer than 2048 characters"));
        }
        let mut parts = value.splitn(6, ':');
        let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad("must look like arn:aws:iam::123456789012:role/NAME"));
        };
        Partition::parse(partition).map_err(|_| bad("names an unknown partition"))?;
        AccountId::parse(account).map_err(|_| bad("must carry a 12-digit account id"))?;
        let Some(path_and_name) = resource.strip_prefix("role/") else {
            return Err(bad("must name a role (role/NAME)"));
        };
        let name = path_and_name.rsplit('/').next().unwrap_or_default();
        if name.is_empty() || name.len() > 64 || !name.chars().all(is_sts_name_char) {
            return Err(bad(
                "role name must be 1 to 64 of letters, digits and _+=,.@-",
            ));
        }
        if !path_and_name
            .chars()
            .all(|c| c.is_ascii_graphic() && c != ':')
        {
            return Err(bad("role path holds characters IAM does not allow"));
        }
        Ok(Self(value.to_owned()))
    }

    fn part(&self, index: usize) -> &str {
        self.0.split(':').nth(index).unwrap_or_default()
    }

    pub fn partition(&self) -> Partition {
        Partition::parse(self.part(1)).unwrap_or_default()
    }

    pub fn account(&self) -> AccountId {
        AccountId(self.part(4).to_owned())
    }

    pub fn role_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or_default()
    }
}

/// A target's level: cascading grants cover every target of an account at or below theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Level(u16);

impl Level {
    pub const MAX: u16 = 1000;

    pub fn new(value: u32) -> Result<Self, InvalidValue> {
        u16::try_from(value)
            .ok()
            .filter(|v| *v <= Self::MAX)
            .map(Self)
            .ok_or_else(|| InvalidValue::new("level", format!("must be 0 to {}", Self::MAX)))
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<u32> for Level {
    type Error = InvalidValue;
    fn try_from(value: u32) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Level> for u32 {
    fn from(value: Level) -> u32 {
        u32::from(value.0)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A session policy for GetFederationToken: a JSON object of at most 2048 characters once minified.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionPolicy(String);

impl SessionPolicy {
    pub const MAX_CHARS: usize = 2048;

    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        let parsed: serde_json::Value = serde_json::from_str(value)
            .map_err(|e| InvalidValue::new("session_policy", format!("is not JSON: {e}")))?;
        let statements = parsed
            .as_object()
            .and_then(|o| o.get("Statement"))
            .ok_or_else(|| {
                InvalidValue::new("session_policy", "must be a policy object with a Statement")
            })?;
        if !(statements.is_array() || statements.is_object()) {
            return Err(InvalidValue::new(
                "session_policy",
                "Statement must be an object or a list",
            ));
        }
        let minified = parsed.to_string();
        if minified.chars().count() > Self::MAX_CHARS {
            return Err(InvalidValue::new(
                "session_policy",
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        Ok(Self(minified))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SessionPolicy {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<SessionPolicy> for String {
    fn from(value: SessionPolicy) -> String {
        value.0
    }
}

impl fmt::Debug for SessionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionPolicy({} chars)", self.0.len())
    }
}

/// The RoleSessionName for AssumeRole, derived from the user (AWS: 2-64 of `[\w+=,.@-]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSessionName(String);

impl RoleSessionName {
    /// A user name already satisfies the session-name rules, so the user's name is used as it is:
    /// CloudTrail then shows who the session is, with no mapping table to consult.
    pub fn for_user(user: &UserName) -> Self {
        Self(user.as_str().to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The `Name` of a GetFederationToken call, derived from the user (AWS: 2-32 of `[\w+=,.@-]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedUserName(String);

impl FederatedUserName {
    const MAX: usize = 32;

    /// Short names are used as they are. Longer ones keep a readable prefix and end in a hash of the
    /// whole name, so two long names that share a prefix still give different federated users.
    pub fn for_user(user: &UserName) -> Self {
        let name = user.as_str();
        if name.len() <= Self::MAX {
            return Self(name.to_owned());
        }
        let digest = Sha256::digest(name.as_bytes());
        let suffix: String = hex::encode(digest).chars().take(8).collect();
        // A user name is ASCII (`[\w+=,.@-]`), so characters are bytes.
        let keep: String = name.chars().take(Self::MAX - suffix.len() - 1).collect();
        Self(format!("{keep}-{suffix}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The STS SourceIdentity: the user's name, which meets its rules (2-64 chars, never `aws:`-prefixed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceIdentity(String);

impl SourceIdentity {
    pub fn for_user(user: &UserName) -> Self {
        Self(user.as_str().to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_twelve_digits() {
        assert!(AccountId::parse("123456789012").is_ok());
        assert!(AccountId::parse("12345678901").is_err());
        assert!(AccountId::parse("1234567890123").is_err());
        assert!(AccountId::parse("12345678901a").is_err());
    }

    #[test]
    fn the_account_of_an_arn() {
        let of = |arn| AccountId::of_arn(arn).map(|a| a.to_string());
        assert_eq!(
            of("arn:aws:sts::111111111111:federated-user/alice").as_deref(),
            Some("111111111111")
        );
        assert_eq!(
            of("arn:aws-us-gov:iam::222222222222:role/x").as_deref(),
            Some("222222222222")
        );
        assert_eq!(of("arn:aws:s3:::bucket"), None);
        assert_eq!(of("not an arn"), None);
    }

    #[test]
    fn user_names_follow_the_sts_rules() {
        assert!(UserName::parse("alice@example.com").is_ok());
        assert!(UserName::parse("ci.deploy+prod=1,x_y-z").is_ok());
        assert!(UserName::parse("a").is_err());
        assert!(UserName::parse(&"a".repeat(65)).is_err());
        assert!(UserName::parse("aws:alice").is_err());
        assert!(UserName::parse("alice smith").is_err());
        assert!(UserName::parse("alice#1").is_err());
        assert!(UserName::parse("ålice").is_err());
    }

    #[test]
    fn role_arns_are_parsed_into_partition_account_and_name() {
        let arn = RoleArn::parse("arn:aws-us-gov:iam::123456789012:role/ops/ReadOnly").unwrap();
        assert_eq!(arn.partition(), Partition::AwsUsGov);
        assert_eq!(arn.account().as_str(), "123456789012");
        assert_eq!(arn.role_name(), "ReadOnly");

        for bad in [
            "arn:aws:iam::123456789012:user/alice",
            "arn:aws:iam::12345:role/x",
            "arn:aws:s3:::bucket",
            "arn:aws-mars:iam::123456789012:role/x",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:role/bad name",
            "not an arn",
        ] {
            assert!(RoleArn::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn levels_are_bounded() {
        assert_eq!(Level::new(50).unwrap().get(), 50);
        assert!(Level::new(1001).is_err());
        assert!(Level::new(70_000).is_err());
    }

    #[test]
    fn session_policies_must_be_small_policy_objects() {
        let p = SessionPolicy::parse(
            r#"{ "Version": "2012-10-17", "Statement": [ { "Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*" } ] }"#,
        )
        .unwrap();
        assert!(!p.as_str().contains(' '), "stored minified");
        assert!(SessionPolicy::parse("[]").is_err());
        assert!(SessionPolicy::parse("{\"Version\":\"2012-10-17\"}").is_err());
        assert!(SessionPolicy::parse("not json").is_err());
        let big = format!(
            r#"{{"Statement":[{{"Effect":"Allow","Action":"s3:*","Resource":"{}"}}]}}"#,
            "x".repeat(2100)
        );
        assert!(SessionPolicy::parse(&big).is_err());
    }

    #[test]
    fn federated_user_names_fit_in_32_characters_and_stay_distinct() {
        let short = UserName::parse("alice@example.com").unwrap();
        assert_eq!(
            FederatedUserName::for_user(&short).as_str(),
            "alice@example.com"
        );

        let a = UserName::parse("firstname.lastname.department@example.com").unwrap();
        let b = UserName::parse("firstname.lastname.department@example.org").unwrap();
        let fa = FederatedUserName::for_user(&a);
        let fb = FederatedUserName::for_user(&b);
        assert_eq!(fa.as_str().len(), 32);
        assert_ne!(fa, fb);
        assert!(fa.as_str().chars().all(is_sts_name_char));
    }

    #[test]
    fn text_for_people_is_trimmed_bounded_and_printable() {
        assert_eq!(
            Reason::parse("  deploy fix  ").unwrap().as_str(),
            "deploy fix"
        );
        assert!(Reason::parse("   ").is_err());
        assert!(Reason::parse(&"x".repeat(501)).is_err());
        assert!(Reason::parse("line\nbreak").is_err());
        assert!(Description::parse("").is_ok());
        assert!(Description::parse(&"é".repeat(256)).is_ok());
        assert!(Description::parse(&"é".repeat(257)).is_err());
        assert!(DisplayName::parse(&"x".repeat(129)).is_err());
        assert!(TokenLabel::parse("ci\u{7}").is_err());
        assert!(AccessKeyId::parse("ASIAIOSFODNN7EXAMPLE").is_ok());
        assert!(AccessKeyId::parse("ASIA-short").is_err());
    }

    #[test]
    fn serde_goes_through_parse() {
        let ok: TargetName = serde_json::from_str("\"prod-admin\"").unwrap();
        assert_eq!(ok.as_str(), "prod-admin");
        assert!(serde_json::from_str::<TargetName>("\"-bad\"").is_err());
        assert!(serde_json::from_str::<Level>("5000").is_err());
        assert!(serde_json::from_str::<Partition>("\"aws-cn\"").is_ok());
    }
}
