//! AWS console sign-in links: a sign-in token from the partition's federation endpoint for the
//! issued credentials, then the `login` URL. The URL is as good as the credentials: a secret.

use std::fmt;

use async_trait::async_trait;
use secrecy::SecretString;

use crate::names::{InvalidValue, Partition};
use crate::ports::{IssuedCredentials, UpstreamError};

/// The console session AWS allows for AssumeRole credentials (`SessionDuration`).
pub const SESSION_MIN: u32 = 900;
pub const SESSION_MAX: u32 = 43_200;

impl Partition {
    /// The host of the partition's federation (sign-in) endpoint.
    pub fn signin_host(self) -> &'static str {
        match self {
            Self::Aws => "signin.aws.amazon.com",
            Self::AwsUsGov => "signin.amazonaws-us-gov.com",
            Self::AwsCn => "signin.amazonaws.cn",
        }
    }

    /// The console's own domain in the partition.
    pub fn console_domain(self) -> &'static str {
        match self {
            Self::Aws => "console.aws.amazon.com",
            Self::AwsUsGov => "console.amazonaws-us-gov.com",
            Self::AwsCn => "console.amazonaws.cn",
        }
    }

    /// The console home for `region` (when it is in this partition), else the partition's home.
    pub fn console_home(self, region: Option<&str>) -> String {
        let region = region
            .filter(|r| Partition::of_region(r) == self)
            .unwrap_or(self.home_region());
        match self {
            Self::Aws => {
                format!("https://{region}.console.aws.amazon.com/console/home?region={region}")
            }
            Self::AwsUsGov => {
                format!("https://console.amazonaws-us-gov.com/console/home?region={region}")
            }
            Self::AwsCn => format!("https://console.amazonaws.cn/console/home?region={region}"),
        }
    }
}

/// Where the console opens: an https URL on the target partition's console. Anything else would
/// make cooper an open redirect through AWS's sign-in page.
#[derive(Clone, PartialEq, Eq)]
pub struct Destination(String);

/// Any partition's console (which one is the target's decides); the pattern cannot know the target.
pub const DESTINATION_PATTERN: &str = concat!(
    r"^https://(?:[^/?#\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+\.)?",
    r"console\.(?:aws\.amazon\.com|amazonaws-us-gov\.com|amazonaws\.cn)",
    r"(?:[/?#][^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*)?$"
);
string_schema!(
    Destination,
    DESTINATION_PATTERN,
    (None, Some(2048)),
    "Where the console opens: an https URL on the target partition's console.",
    Some("https://us-east-1.console.aws.amazon.com/s3/home")
);

impl Destination {
    pub fn parse(value: &str, partition: Partition) -> Result<Self, InvalidValue> {
        let bad = || {
            InvalidValue::new(
                "destination",
                format!("must be an https URL on {}", partition.console_domain()),
            )
        };
        let rest = value.strip_prefix("https://").ok_or_else(bad)?;
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let domain = partition.console_domain();
        let on_console = host == domain
            || host
                .strip_suffix(domain)
                .is_some_and(|sub| sub.ends_with('.') && sub.len() > 1);
        if !on_console
            || value.len() > 2048
            || value.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad());
        }
        Ok(Self(value.to_owned()))
    }

    pub fn default_for(partition: Partition, region: Option<&str>) -> Self {
        Self(partition.console_home(region))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Destination({})", self.0)
    }
}

/// The federation endpoint: a sign-in token for credentials, and the login URL it opens.
#[async_trait]
pub trait ConsoleSignin: Send + Sync {
    /// `session_seconds` is sent only for AssumeRole credentials; federation tokens carry
    /// their own duration and AWS refuses the parameter for them.
    async fn login_url(
        &self,
        partition: Partition,
        credentials: &IssuedCredentials,
        session_seconds: Option<u32>,
        destination: &Destination,
    ) -> Result<SecretString, UpstreamError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_stay_on_the_partitions_console() {
        assert!(Destination::parse("https://console.aws.amazon.com/s3/", Partition::Aws).is_ok());
        assert!(
            Destination::parse(
                "https://eu-west-1.console.aws.amazon.com/ec2/home",
                Partition::Aws
            )
            .is_ok()
        );
        assert!(Destination::parse("https://console.amazonaws.cn/", Partition::AwsCn).is_ok());
        // Up to 2048 characters, as a URL stays usable everywhere.
        let base = "https://console.aws.amazon.com/";
        let longest = format!("{base}{}", "a".repeat(2048 - base.len()));
        let parsed = Destination::parse(&longest, Partition::Aws).unwrap();
        assert_eq!(parsed.as_str(), longest);
        assert_eq!(format!("{parsed:?}"), format!("Destination({longest})"));
        assert!(Destination::parse(&format!("{longest}a"), Partition::Aws).is_err());
        for bad in [
            "http://console.aws.amazon.com/",
            "https://evil.example/console.aws.amazon.com",
            "https://console.aws.amazon.com.evil.example/",
            "https://xconsole.aws.amazon.com/",
            "https://console.amazonaws.cn/",
            "javascript:alert(1)",
        ] {
            assert!(Destination::parse(bad, Partition::Aws).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_default_destination_follows_the_region_within_the_partition() {
        assert_eq!(
            Destination::default_for(Partition::Aws, Some("eu-west-1")).as_str(),
            "https://eu-west-1.console.aws.amazon.com/console/home?region=eu-west-1"
        );
        assert_eq!(
            Destination::default_for(Partition::AwsUsGov, Some("eu-west-1")).as_str(),
            "https://console.amazonaws-us-gov.com/console/home?region=us-gov-west-1"
        );
        assert_eq!(Partition::AwsCn.signin_host(), "signin.amazonaws.cn");
    }
}
