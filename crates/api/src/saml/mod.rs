//! Signing in with SAML 2.0 (Okta, OneLogin, Entra ID, Google Workspace, ADFS): cooper is the
//! service provider. SP-initiated by the HTTP-Redirect binding, the answer by HTTP-POST; the
//! Response checked by `profile` over signatures `dsig` verified; the request it answers is
//! one cooper made (a MAC over its id, its provider, where it goes on and the browser or CLI
//! that started it, carried in RelayState), and each request and assertion is used once.

pub mod dsig;
pub mod profile;

use std::io::Write;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use cooper_core::access::{AuthMethod, Identity};
use cooper_core::names::{GroupName, UserName};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::jwt::JwtAuthority;
pub use profile::Asserted;

/// Clock skew tolerated on the assertion's times.
pub const SKEW_SECONDS: i64 = 90;
/// How long a sign-in may take between cooper's request and the IdP's answer.
pub const REQUEST_SECONDS: i64 = 600;
/// Most groups taken from one assertion (a bound on the grant lookups a session can cause).
pub const MAX_GROUPS: usize = 100;
const EMAIL_FORMAT: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";

fn default_groups_attribute() -> Option<String> {
    Some("groups".into())
}
fn default_name_id_format() -> String {
    EMAIL_FORMAT.into()
}

/// One SAML identity provider, as configured (`COOPER_SAML_PROVIDERS`, a JSON list of these).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SamlProviderConfig {
    /// cooper's name for it, in its URLs (`/v1/saml/<name>/...`): 1 to 32 of `a-z 0-9 -`.
    pub name: String,
    /// What the sign-in button says ("Sign in with <display_name>"); `name` by default.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The IdP's entity id: the `Issuer` of its assertions.
    pub entity_id: String,
    /// Its single sign-on URL for the HTTP-Redirect binding.
    pub sso_url: String,
    /// Its signing certificates (PEM), several while it rotates. At least one.
    pub certificates: Vec<String>,
    /// The attribute that names the cooper user; the NameID when absent.
    #[serde(default)]
    pub user_attribute: Option<String>,
    /// The attribute that carries groups (`groups`, `memberOf`, an AWS Role attribute).
    #[serde(default = "default_groups_attribute")]
    pub groups_attribute: Option<String>,
    /// A pattern group values are mapped by (a regular expression with a `group` capture,
    /// `^arn:aws:iam::\d+:role/(?P<group>[^,]+),` for AWS Role values); values it does not
    /// match are dropped. Every value is taken whole when absent.
    #[serde(default)]
    pub group_pattern: Option<String>,
    /// What the provider's groups are prefixed with in cooper (`<name>:` by default), so that
    /// one IdP cannot assert another's groups, nor a directory group.
    #[serde(default)]
    pub group_prefix: Option<String>,
    /// When set, only users whose name is an email in these domains sign in.
    #[serde(default)]
    pub email_domains: Vec<String>,
    /// Accept unsolicited (IdP-initiated) responses. Off: every response must answer a
    /// request cooper made, in the browser that made it.
    #[serde(default)]
    pub allow_idp_initiated: bool,
    /// Accept RSA-SHA1 signatures and SHA-1 digests (an old ADFS). Off.
    #[serde(default)]
    pub allow_sha1: bool,
    /// cooper's entity id for this provider; `<public url>/v1/saml/<name>/metadata` by default.
    #[serde(default)]
    pub sp_entity_id: Option<String>,
    /// The NameID format asked for (emailAddress by default).
    #[serde(default = "default_name_id_format")]
    pub name_id_format: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SamlConfigError {
    #[error("COOPER_SAML_PROVIDERS is not a JSON list of providers: {0}")]
    Json(String),
    #[error("SAML provider {name}: {reason}")]
    Invalid { name: String, reason: String },
    #[error("SAML providers are configured but COOPER_PUBLIC_URL (cooper's own https URL) is not")]
    NoPublicUrl,
}

/// Why a SAML response was refused (each a 401 with its own code, but `NotConfigured`).
#[derive(Debug, thiserror::Error)]
pub enum SamlError {
    #[error("no SAML identity provider has this name")]
    NotConfigured,
    #[error("the SAML response is too large")]
    TooLarge,
    #[error("the SAML response is not well-formed: {0}")]
    Malformed(String),
    #[error("the SAML response has a DOCTYPE (never accepted)")]
    Doctype,
    #[error("the SAML response is not signed")]
    Unsigned,
    #[error("the SAML response's signature does not verify with the identity provider's keys")]
    BadSignature,
    #[error("the SAML response is signed with an algorithm cooper does not accept (SHA-1)")]
    WeakAlgorithm,
    #[error(
        "the SAML response holds more than its signed assertion, or the signed part is not where an assertion belongs"
    )]
    Wrapped,
    #[error("the assertion is not from this identity provider")]
    WrongIssuer,
    #[error("the assertion is not meant for cooper (audience)")]
    WrongAudience,
    #[error("the assertion is for another service provider's address (recipient)")]
    WrongRecipient,
    #[error("the response was sent to another address (destination)")]
    WrongDestination,
    #[error("the assertion has expired")]
    Expired,
    #[error("the assertion is not valid yet")]
    NotYetValid,
    #[error("the response answers no request: start the sign-in at cooper")]
    Unsolicited,
    #[error("the response answers a request cooper did not make, or one that took too long")]
    UnknownRequest,
    #[error("this sign-in was completed already")]
    Replayed,
    #[error("this sign-in was started in another browser: start again")]
    WrongBrowser,
    #[error("the identity provider did not sign you in ({status}){}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Status {
        status: String,
        message: Option<String>,
    },
    #[error("the assertion names no user")]
    NoUser,
    #[error("the assertion's user is not a valid cooper user name")]
    InvalidUser,
    #[error("this email domain may not sign in")]
    EmailDomainNotAllowed,
}

impl SamlError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotConfigured => "saml_not_configured",
            Self::TooLarge => "saml_too_large",
            Self::Malformed(_) => "saml_malformed",
            Self::Doctype => "saml_doctype",
            Self::Unsigned => "saml_unsigned",
            Self::BadSignature => "saml_bad_signature",
            Self::WeakAlgorithm => "saml_weak_algorithm",
            Self::Wrapped => "saml_wrapped",
            Self::WrongIssuer => "saml_wrong_issuer",
            Self::WrongAudience => "saml_wrong_audience",
            Self::WrongRecipient => "saml_wrong_recipient",
            Self::WrongDestination => "saml_wrong_destination",
            Self::Expired => "saml_expired",
            Self::NotYetValid => "saml_not_yet_valid",
            Self::Unsolicited => "saml_unsolicited",
            Self::UnknownRequest => "saml_unknown_request",
            Self::Replayed => "saml_replayed",
            Self::WrongBrowser => "saml_wrong_browser",
            Self::Status { .. } => "saml_status",
            Self::NoUser => "saml_no_user",
            Self::InvalidUser => "invalid_user",
            Self::EmailDomainNotAllowed => "email_domain_not_allowed",
        }
    }
}

/// Where a sign-in goes on once the IdP answers: the console, or a CLI's loopback listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    Console,
    Cli(u16),
}

/// A sign-in request cooper made, as its RelayState carries it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relay {
    pub destination: Destination,
    /// A digest of what started it (the browser's cookie, or the CLI's code challenge).
    pub binding: String,
}

/// Parsed configuration, with each provider's keys loaded.
pub struct SamlProvider {
    pub config: SamlProviderConfig,
    pub sp_entity_id: String,
    pub acs_url: String,
    pub prefix: String,
    pattern: Option<regex_lite::Regex>,
    signatures: Arc<dyn dsig::XmlSignatures>,
}

/// The configured SAML providers, and the key that makes cooper's requests unforgeable.
pub struct SamlProviders {
    providers: Vec<SamlProvider>,
    mac: Arc<JwtAuthority>,
}

const NAME_RULE: &str = "the name must be 1 to 32 of a-z, 0-9 and -";

fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The configured providers' names and button labels, read without their certificates (the
/// web-console function shows the buttons; the function that signs in checks the rest).
pub fn buttons(json: &str) -> Result<Vec<(String, String)>, SamlConfigError> {
    if json.trim().is_empty() {
        return Ok(Vec::new());
    }
    let configs: Vec<SamlProviderConfig> =
        serde_json::from_str(json).map_err(|e| SamlConfigError::Json(e.to_string()))?;
    configs
        .into_iter()
        .map(|c| {
            if valid_name(&c.name) {
                let label = c.display_name.unwrap_or_else(|| c.name.clone());
                Ok((c.name, label))
            } else {
                Err(SamlConfigError::Invalid {
                    name: c.name,
                    reason: NAME_RULE.to_owned(),
                })
            }
        })
        .collect()
}

/// `&`, `<`, `>` and quotes escaped, for an attribute value or text.
fn xml_escape(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// The digest a binding secret is kept as (16 bytes, base64url).
pub fn binding_of(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(secret.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.get(..16).unwrap_or_default())
}

impl SamlProviders {
    /// Parses and checks `json`; no providers gives `None`. A provider with no certificate, or
    /// one that does not load, is an error: unsigned is never accepted.
    pub fn parse(
        json: &str,
        public_url: Option<&str>,
        mac: Arc<JwtAuthority>,
    ) -> Result<Option<Self>, SamlConfigError> {
        if json.trim().is_empty() {
            return Ok(None);
        }
        let configs: Vec<SamlProviderConfig> =
            serde_json::from_str(json).map_err(|e| SamlConfigError::Json(e.to_string()))?;
        if configs.is_empty() {
            return Ok(None);
        }
        let public_url = public_url
            .map(|u| u.trim_end_matches('/'))
            .filter(|u| !u.is_empty())
            .ok_or(SamlConfigError::NoPublicUrl)?;
        let mut providers: Vec<SamlProvider> = Vec::new();
        for config in configs {
            let invalid = |reason: &str| SamlConfigError::Invalid {
                name: config.name.clone(),
                reason: reason.to_owned(),
            };
            if !valid_name(&config.name) {
                return Err(invalid(NAME_RULE));
            }
            if providers.iter().any(|p| p.config.name == config.name) {
                return Err(invalid("two providers have this name"));
            }
            let local = config.sso_url.starts_with("http://127.0.0.1")
                || config.sso_url.starts_with("http://localhost");
            if !config.sso_url.starts_with("https://") && !local {
                return Err(invalid("sso_url must be an https URL"));
            }
            if config.entity_id.trim().is_empty() {
                return Err(invalid("entity_id is empty"));
            }
            let signatures =
                dsig::Bergshamra::new(&config.certificates).map_err(|e| invalid(&e))?;
            let pattern = match &config.group_pattern {
                None => None,
                Some(p) => {
                    let re = regex_lite::Regex::new(p)
                        .map_err(|e| invalid(&format!("group_pattern: {e}")))?;
                    if !re.capture_names().any(|n| n == Some("group")) {
                        return Err(invalid("group_pattern must have a (?P<group>...) capture"));
                    }
                    Some(re)
                }
            };
            let prefix = config
                .group_prefix
                .clone()
                .unwrap_or_else(|| format!("{}:", config.name));
            if prefix.is_empty() {
                return Err(invalid(
                    "group_prefix may not be empty: an IdP must not assert directory groups",
                ));
            }
            if let Some(other) = providers
                .iter()
                .find(|p| p.prefix.starts_with(&prefix) || prefix.starts_with(&p.prefix))
            {
                return Err(invalid(&format!(
                    "group_prefix overlaps provider {}'s",
                    other.config.name
                )));
            }
            let sp_entity_id = config
                .sp_entity_id
                .clone()
                .unwrap_or_else(|| format!("{public_url}/v1/saml/{}/metadata", config.name));
            let acs_url = format!("{public_url}/v1/saml/{}/acs", config.name);
            providers.push(SamlProvider {
                config,
                sp_entity_id,
                acs_url,
                prefix,
                pattern,
                signatures: Arc::new(signatures),
            });
        }
        Ok(Some(Self { providers, mac }))
    }

    pub fn provider(&self, name: &str) -> Result<&SamlProvider, SamlError> {
        self.providers
            .iter()
            .find(|p| p.config.name == name)
            .ok_or(SamlError::NotConfigured)
    }

    pub fn providers(&self) -> impl Iterator<Item = &SamlProvider> {
        self.providers.iter()
    }

    fn relay_mac(&self, provider: &str, id: &str, body: &str) -> String {
        let message = format!("{provider}\n{id}\n{body}");
        let mac = self
            .mac
            .mac("saml-relay-state", &message)
            .unwrap_or_default();
        mac.chars().take(22).collect()
    }

    /// The RelayState of request `id`: `<expires>.<destination>.<binding>.<mac>`, 80 bytes at
    /// most (what IdPs keep).
    pub fn relay_state(
        &self,
        provider: &SamlProvider,
        id: &str,
        relay: &Relay,
        now: OffsetDateTime,
    ) -> String {
        let expires = (now.unix_timestamp() + REQUEST_SECONDS).to_string();
        let destination = match relay.destination {
            Destination::Console => "c".to_owned(),
            Destination::Cli(port) => port.to_string(),
        };
        let body = format!("{expires}.{destination}.{}", relay.binding);
        let mac = self.relay_mac(&provider.config.name, id, &body);
        format!("{body}.{mac}")
    }

    /// The request a RelayState says `id` was, if cooper made it for `provider` and it has
    /// not taken too long.
    pub fn relay(
        &self,
        provider: &SamlProvider,
        id: &str,
        relay_state: &str,
        now: OffsetDateTime,
    ) -> Result<(Relay, OffsetDateTime), SamlError> {
        let (body, mac) = relay_state
            .rsplit_once('.')
            .ok_or(SamlError::UnknownRequest)?;
        let expected = self.relay_mac(&provider.config.name, id, body);
        if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(mac.as_bytes())) {
            return Err(SamlError::UnknownRequest);
        }
        let mut parts = body.splitn(3, '.');
        let (Some(expires), Some(destination), Some(binding)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(SamlError::UnknownRequest);
        };
        let expires = expires
            .parse::<i64>()
            .ok()
            .and_then(|e| OffsetDateTime::from_unix_timestamp(e).ok())
            .ok_or(SamlError::UnknownRequest)?;
        if now >= expires {
            return Err(SamlError::UnknownRequest);
        }
        let destination = match destination {
            "c" => Destination::Console,
            port => Destination::Cli(port.parse().map_err(|_| SamlError::UnknownRequest)?),
        };
        Ok((
            Relay {
                destination,
                binding: binding.to_owned(),
            },
            expires,
        ))
    }

    /// The IdP's sign-in URL for a new request (HTTP-Redirect binding): the AuthnRequest,
    /// deflated and base64'd, and its RelayState. `random` makes the request's id.
    pub fn login_url(
        &self,
        provider: &SamlProvider,
        relay: &Relay,
        now: OffsetDateTime,
        random: &str,
    ) -> Result<String, SamlError> {
        let id = format!("_{random}");
        let instant = now
            .replace_nanosecond(0)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default();
        let request = format!(
            concat!(
                r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" "#,
                r#"xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" "#,
                r#"IssueInstant="{instant}" Destination="{destination}" "#,
                r#"AssertionConsumerServiceURL="{acs}" "#,
                r#"ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST">"#,
                r#"<saml:Issuer>{issuer}</saml:Issuer>"#,
                r#"<samlp:NameIDPolicy Format="{format}" AllowCreate="true"/>"#,
                r#"</samlp:AuthnRequest>"#
            ),
            id = id,
            instant = instant,
            destination = xml_escape(&provider.config.sso_url),
            acs = xml_escape(&provider.acs_url),
            issuer = xml_escape(&provider.sp_entity_id),
            format = xml_escape(&provider.config.name_id_format),
        );
        let mut deflater =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        deflater
            .write_all(request.as_bytes())
            .map_err(|e| SamlError::Malformed(e.to_string()))?;
        let deflated = deflater
            .finish()
            .map_err(|e| SamlError::Malformed(e.to_string()))?;
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("SAMLRequest", &STANDARD.encode(deflated))
            .append_pair("RelayState", &self.relay_state(provider, &id, relay, now))
            .finish();
        let separator = if provider.config.sso_url.contains('?') {
            '&'
        } else {
            '?'
        };
        Ok(format!("{}{separator}{query}", provider.config.sso_url))
    }

    /// The SP metadata for `provider`: entity id, the ACS (HTTP-POST), the NameID format
    /// asked for, and that assertions must be signed.
    pub fn metadata(&self, provider: &SamlProvider) -> String {
        format!(
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8"?>"#,
                "\n",
                r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity}">"#,
                r#"<md:SPSSODescriptor AuthnRequestsSigned="false" WantAssertionsSigned="true" "#,
                r#"protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">"#,
                r#"<md:NameIDFormat>{format}</md:NameIDFormat>"#,
                r#"<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" "#,
                r#"Location="{acs}" index="0" isDefault="true"/>"#,
                r#"</md:SPSSODescriptor></md:EntityDescriptor>"#,
                "\n"
            ),
            entity = xml_escape(&provider.sp_entity_id),
            format = xml_escape(&provider.config.name_id_format),
            acs = xml_escape(&provider.acs_url),
        )
    }

    /// Verifies a `SAMLResponse` form value (base64 of the Response) for `provider` at `now`.
    pub fn verify(
        &self,
        provider: &SamlProvider,
        saml_response: &str,
        now: OffsetDateTime,
    ) -> Result<Asserted, SamlError> {
        if saml_response.len() > profile::MAX_XML_BYTES * 4 / 3 + 4 {
            return Err(SamlError::TooLarge);
        }
        let compact: String = saml_response
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let decoded = STANDARD
            .decode(compact)
            .map_err(|_| SamlError::Malformed("SAMLResponse is not base64".into()))?;
        let xml = String::from_utf8(decoded)
            .map_err(|_| SamlError::Malformed("the response is not UTF-8".into()))?;
        profile::read(
            &xml,
            provider.signatures.as_ref(),
            &profile::Expected {
                idp_entity_id: &provider.config.entity_id,
                sp_entity_id: &provider.sp_entity_id,
                acs_url: &provider.acs_url,
                now,
                skew: time::Duration::seconds(SKEW_SECONDS),
                allow_sha1: provider.config.allow_sha1,
            },
        )
    }

    /// Who an assertion names, with its groups under the provider's prefix.
    pub fn identity(
        &self,
        provider: &SamlProvider,
        asserted: &Asserted,
    ) -> Result<Identity, SamlError> {
        let config = &provider.config;
        let values = |name: &str| {
            asserted
                .attributes
                .iter()
                .filter(|(n, _)| n == name)
                .flat_map(|(_, v)| v.iter().cloned())
                .collect::<Vec<String>>()
        };
        let user = match &config.user_attribute {
            None => asserted.name_id.clone(),
            Some(attribute) => values(attribute).into_iter().next().unwrap_or_default(),
        };
        if user.is_empty() {
            return Err(SamlError::NoUser);
        }
        if !crate::oidc::in_domains(&user, &config.email_domains) {
            return Err(SamlError::EmailDomainNotAllowed);
        }
        let user = UserName::parse(&user).map_err(|_| SamlError::InvalidUser)?;
        let groups = config
            .groups_attribute
            .as_deref()
            .map(values)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|value| match &provider.pattern {
                None => Some(value),
                Some(re) => re
                    .captures(&value)
                    .and_then(|c| c.name("group"))
                    .map(|m| m.as_str().to_owned()),
            })
            .filter_map(|g| GroupName::parse(&format!("{}{g}", provider.prefix)).ok())
            .take(MAX_GROUPS)
            .collect();
        let mut identity = Identity::new(
            user,
            AuthMethod::SamlAssertion(format!("saml:{}", config.name)),
        );
        identity.asserted_groups = groups;
        Ok(identity)
    }
}

#[cfg(test)]
mod tests;
