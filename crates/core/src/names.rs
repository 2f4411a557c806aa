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

// Regular-expression fragments (ECMA-262, as JSON Schema reads them) for the patterns below.
/// `char::is_control` (Unicode Cc).
macro_rules! control {
    () => {
        r"\u0000-\u001F\u007F-\u009F"
    };
}
/// `char::is_whitespace` (Unicode White_Space) that is not also a control character.
macro_rules! space {
    () => {
        r" \u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000"
    };
}
/// All of Unicode White_Space: what `str::trim` removes.
macro_rules! trimmed {
    () => {
        concat!(r"\t\n\u000B\u000C\r\u0085", space!())
    };
}
/// The characters of [`is_sts_name_char`].
macro_rules! sts {
    () => {
        r"A-Za-z0-9_+=,.@-"
    };
}
/// Text for people ([`Reason`] and the like): trimmed, then `$min` (0 or 1) to `$max` characters
/// without control characters; `$middle` is `$max - 2`.
macro_rules! text_pattern {
    (0, $middle:literal) => {
        concat!(
            "^[",
            trimmed!(),
            "]*(?:[^",
            control!(),
            space!(),
            "](?:[^",
            control!(),
            "]{0,",
            $middle,
            "}[^",
            control!(),
            space!(),
            "])?)?[",
            trimmed!(),
            "]*$"
        )
    };
    (1, $middle:literal) => {
        concat!(
            "^[",
            trimmed!(),
            "]*[^",
            control!(),
            space!(),
            "](?:[^",
            control!(),
            "]{0,",
            $middle,
            "}[^",
            control!(),
            space!(),
            "])?[",
            trimmed!(),
            "]*$"
        )
    };
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

pub const ACCOUNT_ID_PATTERN: &str = "^[0-9]{12}$";
string_schema!(
    AccountId,
    ACCOUNT_ID_PATTERN,
    (Some(12), Some(12)),
    "A 12-digit AWS account id.",
    Some("123456789012")
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

pub const USER_NAME_PATTERN: &str = concat!("^[", sts!(), "]{2,64}$");
string_schema!(
    UserName,
    USER_NAME_PATTERN,
    (Some(2), Some(64)),
    "A cooper user name: 2 to 64 of `A-Z a-z 0-9 _ + = , . @ -` (it doubles as the STS SourceIdentity and RoleSessionName).",
    Some("alice@example.com")
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

pub const GROUP_NAME_PATTERN: &str = concat!(
    "^[^",
    control!(),
    space!(),
    "#](?:[^",
    control!(),
    "#]{0,126}[^",
    control!(),
    space!(),
    "#])?$"
);
string_schema!(
    GroupName,
    GROUP_NAME_PATTERN,
    (Some(1), Some(128)),
    "A group name: 1 to 128 characters, no control characters, no `#`, not starting or ending with white space.",
    Some("payments-engineers")
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

pub const TARGET_NAME_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$";
string_schema!(
    TargetName,
    TARGET_NAME_PATTERN,
    (Some(1), Some(64)),
    "A target name: 1 to 64 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit.",
    Some("payments-readonly")
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

pub const ACCOUNT_NAME_PATTERN: &str = concat!("^[^", control!(), "]{1,64}$");
string_schema!(
    AccountName,
    ACCOUNT_NAME_PATTERN,
    (Some(1), Some(64)),
    "A friendly name: 1 to 64 characters, no control characters.",
    Some("Payments (EU)")
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

pub const EXTERNAL_ID_PATTERN: &str = "^[A-Za-z0-9_+=,.@:/-]{2,1224}$";
string_schema!(
    ExternalId,
    EXTERNAL_ID_PATTERN,
    (Some(2), Some(1224)),
    "The ExternalId the role's trust policy asks for: 2 to 1224 of `A-Z a-z 0-9 _ + = , . @ : / -`.",
    None
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

pub const REASON_PATTERN: &str = text_pattern!(1, 498);
string_schema!(
    Reason,
    REASON_PATTERN,
    (None, None),
    "Why: 1 to 500 characters once trimmed, no control characters.",
    Some("Rotate the payments database password (CHG-1234)")
);

text_newtype!(
    /// What a target or group is for.
    Description, "description", 0, 256
);

pub const DESCRIPTION_PATTERN: &str = text_pattern!(0, 254);
string_schema!(
    Description,
    DESCRIPTION_PATTERN,
    (None, None),
    "At most 256 characters once trimmed, no control characters.",
    None
);

text_newtype!(
    /// A user's name for people: `Alice Example`.
    DisplayName, "display_name", 0, 128
);

pub const DISPLAY_NAME_PATTERN: &str = text_pattern!(0, 126);
string_schema!(
    DisplayName,
    DISPLAY_NAME_PATTERN,
    (None, None),
    "A name for people: at most 128 characters once trimmed, no control characters.",
    Some("Alice Example")
);

text_newtype!(
    /// What an API token is for, shown when listing tokens.
    TokenLabel, "label", 0, 100
);

pub const TOKEN_LABEL_PATTERN: &str = text_pattern!(0, 98);
string_schema!(
    TokenLabel,
    TOKEN_LABEL_PATTERN,
    (None, None),
    "What the token is for: at most 100 characters once trimmed, no control characters.",
    Some("CI deploy (payments)")
);

string_newtype!(
    /// An AWS access key id (`AKIA...`, `ASIA...`): what an incident responder looks up.
    AccessKeyId
);

pub const ACCESS_KEY_ID_PATTERN: &str = "^[A-Za-z0-9]{16,128}$";
string_schema!(
    AccessKeyId,
    ACCESS_KEY_ID_PATTERN,
    (Some(16), Some(128)),
    "An AWS access key id: 16 to 128 letters and digits.",
    Some("ASIAEXAMPLEEXAMPLE12")
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

pub const ROLE_ARN_PATTERN: &str = concat!(
    "^arn:(?:aws|aws-us-gov|aws-cn):iam::[0-9]{12}:role/(?:[!-9;-~]*/)?[",
    sts!(),
    "]{1,64}$"
);
string_schema!(
    RoleArn,
    ROLE_ARN_PATTERN,
    (None, Some(2048)),
    "An IAM role: `arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME`.",
    Some("arn:aws:iam::123456789012:role/ReadOnly")
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

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Level {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::schema::integer(
            0,
            u32::from(Self::MAX),
            "A target level (0 to 1000); a cascade grant of level N covers the account's targets of level N and below.",
        )
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Level {}

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
        // At most 2048 characters once minified: exactly that is fine.
        let sized = |n: usize| {
            // (keys in the order the minified form keeps them)
            let head = r#"{"Statement":[{"Action":"s3:*","Effect":"Allow","Resource":""#;
            let tail = r#""}]}"#;
            format!("{head}{}{tail}", "x".repeat(n - head.len() - tail.len()))
        };
        let longest = SessionPolicy::parse(&sized(2048)).unwrap();
        assert_eq!(String::from(longest.clone()), sized(2048));
        assert_eq!(format!("{longest:?}"), "SessionPolicy(2048 chars)");
        assert!(SessionPolicy::parse(&sized(2049)).is_err());
    }

    #[test]
    fn a_region_tells_its_partition_and_a_level_its_number() {
        assert_eq!(Partition::of_region("cn-north-1"), Partition::AwsCn);
        assert_eq!(Partition::of_region("us-gov-west-1"), Partition::AwsUsGov);
        assert_eq!(Partition::of_region("eu-west-1"), Partition::Aws);
        assert_eq!(u32::from(Level::new(50).unwrap()), 50);
    }

    #[test]
    fn a_role_arn_may_be_2048_characters_long() {
        let arn = |n: usize| {
            let head = "arn:aws:iam::123456789012:role/";
            format!(
                "{head}{}/ReadOnly",
                "p".repeat(n - head.len() - "/ReadOnly".len())
            )
        };
        assert_eq!(
            RoleArn::parse(&arn(2048)).unwrap().account().as_str(),
            "123456789012"
        );
        assert!(RoleArn::parse(&arn(2049)).is_err());
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

/// Each published pattern (with the lengths its schema adds) accepts exactly what `parse` accepts,
/// on a sample set of edge cases shared by all the types and a few of each type's own.
#[cfg(test)]
mod pattern_tests {
    use regex_lite::Regex;

    use super::*;
    use crate::model::HEX_ID_PATTERN;
    use crate::model::Sealed;
    use crate::model::approvals::ApprovalId;
    use crate::model::requests::AccessRequestId;
    use crate::token::{TOKEN_ID_PATTERN, TokenId};
    use crate::totp::{TOTP_CODE_PATTERN, TotpCode};

    fn shared_samples() -> Vec<String> {
        let mut samples: Vec<String> = [
            "",
            " ",
            "a",
            "ab",
            "a b",
            " a",
            "a ",
            "\t",
            "x\n",
            "\nx",
            "x\ty",
            "\u{85}x",
            "x\u{85}",
            "\u{a0}x",
            "x\u{a0}",
            "x\u{a0}y",
            "\u{3000}",
            "x\u{1}",
            "\u{7f}",
            "x#y",
            "#",
            "ålice",
            "alice@example.com",
            "ci.deploy+prod=1,x_y-z",
            "aws:alice",
            "-bad",
            "prod-admin",
            "a.b_c-d",
            "123456789012",
            "12345678901",
            "1234567890123",
            "12345678901a",
            "123456",
            "123 456",
            " 1 2 3 4 5 6 ",
            "12345",
            "1234567",
            "12345a",
            "０１２３４５",
            "0123456789abcdef",
            "0123456789ABCDEF",
            "0123456789abcdef0123456789abcdef",
            "ASIAIOSFODNN7EXAMPLE",
            "ASIA-short",
            "abc+/==",
            "ab:cd/ef",
            "Payments (EU)",
            "  deploy fix  ",
            "line\nbreak",
            "arn:aws:iam::123456789012:role/ReadOnly",
            "arn:aws-us-gov:iam::123456789012:role/ops/ReadOnly",
            "arn:aws-cn:iam::123456789012:role/a/b/c/x",
            "arn:aws:iam::123456789012:user/alice",
            "arn:aws:iam::12345:role/x",
            "arn:aws:s3:::bucket",
            "arn:aws-mars:iam::123456789012:role/x",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:role/bad name",
            "arn:aws:iam::123456789012:role/p:q/x",
            "arn:aws:iam::123456789012:role//x",
            "arn:aws:iam::123456789012:role/é/x",
            "not an arn",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        for n in [
            12, 16, 32, 63, 64, 65, 98, 99, 100, 101, 126, 127, 128, 129, 254, 255, 256, 257,
        ] {
            samples.push("a".repeat(n));
            samples.push("é".repeat(n));
            samples.push(format!(" {} ", "x".repeat(n)));
            samples.push(format!("x{}x", " ".repeat(n.saturating_sub(2))));
        }
        for n in [499, 500, 501, 1224, 1225, 8192, 8193] {
            samples.push("a".repeat(n));
            samples.push(format!("\t{}\n", "r".repeat(n)));
        }
        samples.push(format!("arn:aws:iam::123456789012:role/{}", "a".repeat(64)));
        samples.push(format!("arn:aws:iam::123456789012:role/{}", "a".repeat(65)));
        samples.push(format!(
            "arn:aws:iam::123456789012:role/{}/x",
            "p".repeat(2000)
        ));
        samples.push(format!(
            "arn:aws:iam::123456789012:role/{}/x",
            "p".repeat(2020)
        ));
        samples
    }

    /// The schema's view of a string: the pattern, and the lengths it adds (in characters).
    fn check(
        name: &str,
        pattern: &str,
        max_chars: Option<usize>,
        parse: impl Fn(&str) -> bool,
        own: &[&str],
    ) {
        let regex = Regex::new(pattern).unwrap_or_else(|e| panic!("{name}: {e}"));
        let samples = shared_samples()
            .into_iter()
            .chain(own.iter().map(|s| (*s).to_owned()));
        for sample in samples {
            let by_schema =
                regex.is_match(&sample) && max_chars.is_none_or(|m| sample.chars().count() <= m);
            assert_eq!(
                by_schema,
                parse(&sample),
                "{name}: the pattern and parse disagree on {sample:?}"
            );
        }
    }

    #[test]
    fn every_pattern_accepts_what_parse_accepts_and_refuses_what_it_refuses() {
        check(
            "AccountId",
            ACCOUNT_ID_PATTERN,
            None,
            |s| AccountId::parse(s).is_ok(),
            &[],
        );
        check(
            "UserName",
            USER_NAME_PATTERN,
            None,
            |s| UserName::parse(s).is_ok(),
            &["a=b", "x,y"],
        );
        check(
            "GroupName",
            GROUP_NAME_PATTERN,
            None,
            |s| GroupName::parse(s).is_ok(),
            &["ops team", "x\u{2028}"],
        );
        check(
            "TargetName",
            TARGET_NAME_PATTERN,
            None,
            |s| TargetName::parse(s).is_ok(),
            &["_x", "x."],
        );
        check(
            "AccountName",
            ACCOUNT_NAME_PATTERN,
            None,
            |s| AccountName::parse(s).is_ok(),
            &[" padded "],
        );
        check(
            "ExternalId",
            EXTERNAL_ID_PATTERN,
            None,
            |s| ExternalId::parse(s).is_ok(),
            &["urn:x/y"],
        );
        check(
            "RoleArn",
            ROLE_ARN_PATTERN,
            Some(2048),
            |s| RoleArn::parse(s).is_ok(),
            &[],
        );
        check(
            "Reason",
            REASON_PATTERN,
            None,
            |s| Reason::parse(s).is_ok(),
            &["\u{2029}why\u{85}"],
        );
        check(
            "Description",
            DESCRIPTION_PATTERN,
            None,
            |s| Description::parse(s).is_ok(),
            &["\u{85}"],
        );
        check(
            "DisplayName",
            DISPLAY_NAME_PATTERN,
            None,
            |s| DisplayName::parse(s).is_ok(),
            &["Alice Example"],
        );
        check(
            "TokenLabel",
            TOKEN_LABEL_PATTERN,
            None,
            |s| TokenLabel::parse(s).is_ok(),
            &["ci\u{7}"],
        );
        check(
            "AccessKeyId",
            ACCESS_KEY_ID_PATTERN,
            None,
            |s| AccessKeyId::parse(s).is_ok(),
            &[],
        );
        check(
            "Sealed",
            crate::model::SEALED_PATTERN,
            None,
            |s| Sealed::parse(s).is_ok(),
            &["a b"],
        );
        check(
            "TokenId",
            TOKEN_ID_PATTERN,
            None,
            |s| TokenId::parse(s).is_ok(),
            &[],
        );
        check(
            "ApprovalId",
            HEX_ID_PATTERN,
            None,
            |s| ApprovalId::parse(s).is_ok(),
            &[],
        );
        check(
            "AccessRequestId",
            HEX_ID_PATTERN,
            None,
            |s| AccessRequestId::parse(s).is_ok(),
            &[],
        );
        let on_some_console = |s: &str| {
            [Partition::Aws, Partition::AwsUsGov, Partition::AwsCn]
                .into_iter()
                .any(|p| crate::console::Destination::parse(s, p).is_ok())
        };
        check(
            "Destination",
            crate::console::DESTINATION_PATTERN,
            Some(2048),
            on_some_console,
            &[
                "https://console.aws.amazon.com",
                "https://eu-west-1.console.aws.amazon.com/ec2/home?region=eu-west-1#Instances:",
                "https://console.amazonaws.cn/x",
                "https://console.amazonaws-us-gov.com?x",
                "https://x.y.console.amazonaws.cn#z",
                "https://.console.aws.amazon.com/",
                "https://evil.com/console.aws.amazon.com",
                "https://console.aws.amazon.com.evil.com/",
                "http://console.aws.amazon.com/",
                "https://console.aws.amazon.com/a b",
                "https://console.aws.amazon.com/\u{a0}",
                "https://a\u{85}.console.aws.amazon.com/",
                "https://console.aws.amazon.com/é",
                "https://console.aws.amazon.comx",
            ],
        );
        check(
            "TotpCode",
            TOTP_CODE_PATTERN,
            None,
            |s| TotpCode::parse(s).is_ok(),
            &["12 34 56", "1234 56 "],
        );
        check(
            "TagKey",
            crate::tags::TAG_KEY_PATTERN,
            None,
            |s| crate::tags::TagKey::parse(s).is_ok(),
            &[
                "a",
                "aw",
                "aws",
                "awsx",
                "aws:",
                "AWS:x",
                "aWs:y",
                "Aws:",
                "aw:s",
                "a:ws",
                "wws:",
                "bws:",
                "awt:",
                "aws_",
                "cost center",
                "k_.:/=+-@",
                "x,y",
                "x*y",
            ],
        );
        check(
            "TagValue",
            crate::tags::TAG_VALUE_PATTERN,
            None,
            |s| crate::tags::TagValue::parse(s).is_ok(),
            &["aws:x", "x,y", "a+b", "eng+okta:ops"],
        );
    }
}
