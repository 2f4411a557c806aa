//! Per-user API tokens for scripts and CI: random, shown once, stored only as a hash, expiring,
//! revocable. And one-time enrollment codes, of the same make, that enroll a first authenticator.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::clock::{Entropy, EntropyUnavailable};
use crate::names::{GroupName, InvalidValue, TokenLabel, UserName};

const PREFIX: &str = "cooper_";
const ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;

/// The public half of a token: names it in the directory, in audit records and for revocation.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TokenId(String);

impl TokenId {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        if value.len() == ID_BYTES * 2
            && value
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidValue::new(
                "token_id",
                "must be 16 lowercase hex digits",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub const TOKEN_ID_PATTERN: &str = "^[0-9a-f]{16}$";
string_schema!(
    TokenId,
    TOKEN_ID_PATTERN,
    (None, None),
    "An API token's id: 16 lowercase hex digits.",
    Some("0123456789abcdef")
);

impl TryFrom<String> for TokenId {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<TokenId> for String {
    fn from(value: TokenId) -> String {
        value.0
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenId({})", self.0)
    }
}

/// The SHA-256 of a token's secret half, hex. The secret has 256 bits of entropy, so a fast hash
/// is enough: there is nothing to brute-force.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenHash(String);

impl TokenHash {
    fn of(secret: &str) -> Self {
        Self(hex::encode(Sha256::digest(secret.as_bytes())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn matches(&self, other: &TokenHash) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

/// A whole bearer token, `cooper_<id>_<secret>`: exists only when minted or presented.
pub struct ApiToken {
    id: TokenId,
    secret: SecretString,
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiToken({}, ..)", self.id)
    }
}

impl ApiToken {
    fn with_prefix(bearer: &str, prefix: &str) -> Option<Self> {
        let rest = bearer.strip_prefix(prefix)?;
        let (id, secret) = rest.split_once('_')?;
        let id = TokenId::parse(id).ok()?;
        let secret_ok = secret.len() == SECRET_BYTES * 2
            && secret
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        secret_ok.then(|| Self {
            id,
            secret: SecretString::from(secret.to_owned()),
        })
    }

    fn reveal_with(&self, prefix: &str) -> SecretString {
        SecretString::from(format!(
            "{prefix}{}_{}",
            self.id,
            self.secret.expose_secret()
        ))
    }

    pub fn generate(entropy: &dyn Entropy) -> Result<Self, EntropyUnavailable> {
        let mut id = [0u8; ID_BYTES];
        let mut secret = [0u8; SECRET_BYTES];
        entropy.fill(&mut id)?;
        entropy.fill(&mut secret)?;
        Ok(Self {
            id: TokenId(hex::encode(id)),
            secret: SecretString::from(hex::encode(secret)),
        })
    }

    /// Recognises a presented bearer value as an API token (by its shape only; nothing is verified).
    pub fn parse(bearer: &str) -> Option<Self> {
        Self::with_prefix(bearer, PREFIX)
    }

    pub fn looks_like(bearer: &str) -> bool {
        bearer.starts_with(PREFIX)
    }

    pub fn id(&self) -> &TokenId {
        &self.id
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(self.secret.expose_secret())
    }

    /// The bearer string, to hand to its owner once.
    pub fn reveal(&self) -> SecretString {
        self.reveal_with(PREFIX)
    }
}

/// What the directory keeps of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenRecord {
    pub id: TokenId,
    pub user: UserName,
    pub hash: TokenHash,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(default)]
    pub revoked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<TokenLabel>,
    /// The user's groups when the token was issued, if few (`Identity::hinted_groups`): which
    /// grants a decision reads early, never what it decides on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupName>,
}

/// Why a presented API token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    #[error("unknown or forged token")]
    Invalid,
    #[error("the token has expired")]
    Expired,
    #[error("the token has been revoked")]
    Revoked,
}

impl ApiTokenRecord {
    pub fn issue(
        token: &ApiToken,
        user: UserName,
        now: OffsetDateTime,
        lifetime: time::Duration,
    ) -> Self {
        Self {
            id: token.id.clone(),
            user,
            hash: token.hash(),
            created_at: now,
            expires_at: now + lifetime,
            revoked: false,
            label: None,
            groups: Vec::new(),
        }
    }

    /// Records `groups` as the token's hint (bounded by the caller: `catalog::hint_of`).
    pub fn hinting(mut self, groups: Vec<GroupName>) -> Self {
        self.groups = groups;
        self
    }

    /// The secret is checked first, in constant time, so an unknown secret learns nothing about
    /// the token's state.
    pub fn verify(
        &self,
        presented: &ApiToken,
        now: OffsetDateTime,
    ) -> Result<&UserName, TokenRejection> {
        if presented.id != self.id || !self.hash.matches(&presented.hash()) {
            return Err(TokenRejection::Invalid);
        }
        if self.revoked {
            return Err(TokenRejection::Revoked);
        }
        if self.expires_at <= now {
            return Err(TokenRejection::Expired);
        }
        Ok(&self.user)
    }
}

const ENROLL_PREFIX: &str = "cooper_enroll_";

/// A one-time enrollment code, `cooper_enroll_<id>_<secret>`: an admin issues it for a user who
/// has no authenticator, and the person redeems it to enroll one (and set a first password).
/// It proves nothing else: it is refused everywhere but enrollment, and works once.
pub struct EnrollmentCode(ApiToken);

impl fmt::Debug for EnrollmentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EnrollmentCode({}, ..)", self.0.id)
    }
}

impl EnrollmentCode {
    pub fn generate(entropy: &dyn Entropy) -> Result<Self, EntropyUnavailable> {
        ApiToken::generate(entropy).map(Self)
    }

    pub fn parse(bearer: &str) -> Option<Self> {
        ApiToken::with_prefix(bearer, ENROLL_PREFIX).map(Self)
    }

    pub fn looks_like(bearer: &str) -> bool {
        bearer.starts_with(ENROLL_PREFIX)
    }

    pub fn id(&self) -> &TokenId {
        &self.0.id
    }

    pub fn hash(&self) -> TokenHash {
        self.0.hash()
    }

    pub fn reveal(&self) -> SecretString {
        self.0.reveal_with(ENROLL_PREFIX)
    }
}

/// What the directory keeps of an enrollment code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentCodeRecord {
    pub id: TokenId,
    pub user: UserName,
    pub hash: TokenHash,
    /// The admin who issued it (`None`: an operator, from the command line). An authenticator
    /// enrolled with it never approves that admin's requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_by: Option<UserName>,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub used_at: Option<OffsetDateTime>,
}

impl EnrollmentCodeRecord {
    pub fn issue(
        code: &EnrollmentCode,
        user: UserName,
        issued_by: Option<UserName>,
        now: OffsetDateTime,
        lifetime: time::Duration,
    ) -> Self {
        Self {
            id: code.id().clone(),
            user,
            hash: code.hash(),
            issued_by,
            issued_at: now,
            expires_at: now + lifetime,
            used_at: None,
        }
    }

    /// As for API tokens, the secret is checked first, in constant time; a used code is revoked.
    pub fn verify(
        &self,
        presented: &EnrollmentCode,
        now: OffsetDateTime,
    ) -> Result<&UserName, TokenRejection> {
        if *presented.id() != self.id || !self.hash.matches(&presented.hash()) {
            return Err(TokenRejection::Invalid);
        }
        if self.used_at.is_some() {
            return Err(TokenRejection::Revoked);
        }
        if self.expires_at <= now {
            return Err(TokenRejection::Expired);
        }
        Ok(&self.user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::OsEntropy;

    fn now() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000)
    }

    #[test]
    fn a_minted_token_parses_back_and_verifies() {
        let token = ApiToken::generate(&OsEntropy).unwrap();
        let bearer = token.reveal();
        let presented = ApiToken::parse(bearer.expose_secret()).unwrap();
        let record = ApiTokenRecord::issue(
            &token,
            UserName::parse("ci-bot").unwrap(),
            now(),
            time::Duration::days(1),
        );
        assert_eq!(record.verify(&presented, now()).unwrap().as_str(), "ci-bot");
        assert!(!record.hash.as_str().contains(&bearer.expose_secret()[20..]));
    }

    #[test]
    fn debug_output_names_a_token_by_its_id_and_never_shows_its_secret_or_hash() {
        let token = ApiToken::generate(&OsEntropy).unwrap();
        let bearer = token.reveal();
        let secret = bearer
            .expose_secret()
            .rsplit('_')
            .next()
            .unwrap()
            .to_owned();
        assert_eq!(
            format!("{token:?}"),
            format!("ApiToken({}, ..)", token.id())
        );
        let record = ApiTokenRecord::issue(
            &token,
            UserName::parse("ci-bot").unwrap(),
            now(),
            time::Duration::days(1),
        );
        let shown = format!("{record:?}");
        assert!(shown.contains("TokenHash(..)"), "{shown}");
        assert!(!shown.contains(record.hash.as_str()) && !shown.contains(&secret));
    }

    #[test]
    fn bearer_values_are_told_apart_by_their_shape() {
        let token = ApiToken::generate(&OsEntropy).unwrap().reveal();
        let code = EnrollmentCode::generate(&OsEntropy).unwrap();
        let enroll = code.reveal();
        let (token, enroll) = (token.expose_secret(), enroll.expose_secret());
        // (An enrollment code has the API tokens' prefix too: it is told apart first.)
        assert!(ApiToken::looks_like(token) && ApiToken::parse(enroll).is_none());
        assert!(EnrollmentCode::looks_like(enroll) && !EnrollmentCode::looks_like(token));
        assert!(!ApiToken::looks_like("eyJhbGciOi.jwt") && !EnrollmentCode::looks_like("x"));
        assert_eq!(
            format!("{code:?}"),
            format!("EnrollmentCode({}, ..)", code.id())
        );
        // A secret of the right length with a letter past f, or one digit short, is no token.
        let (head, secret) = token.rsplit_once('_').unwrap();
        let bad_digit = format!("{head}_g{}", &secret[1..]);
        let short = format!("{head}_{}", &secret[1..]);
        for bad in [bad_digit, short] {
            assert!(ApiToken::parse(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn an_enrollment_code_verifies_only_with_its_own_id_and_secret() {
        let code = EnrollmentCode::generate(&OsEntropy).unwrap();
        let record = EnrollmentCodeRecord::issue(
            &code,
            UserName::parse("bob").unwrap(),
            None,
            now(),
            time::Duration::hours(1),
        );
        assert!(record.verify(&code, now()).is_ok());
        // The same id with another secret, and another code altogether.
        let bearer = code.reveal();
        let (head, secret) = bearer.expose_secret().rsplit_once('_').unwrap();
        let flipped = if secret.starts_with('0') { '1' } else { '0' };
        let forged = EnrollmentCode::parse(&format!("{head}_{flipped}{}", &secret[1..])).unwrap();
        let other = EnrollmentCode::generate(&OsEntropy).unwrap();
        for wrong in [forged, other] {
            assert!(matches!(
                record.verify(&wrong, now()),
                Err(TokenRejection::Invalid)
            ));
        }
    }

    #[test]
    fn a_token_id_reads_back_as_itself_and_its_hash_is_the_secrets_sha256() {
        let id = TokenId::parse("0123456789abcdef").unwrap();
        assert_eq!(id.as_str(), "0123456789abcdef");
        assert_eq!(format!("{id:?}"), "TokenId(0123456789abcdef)");
        assert_eq!(String::from(id), "0123456789abcdef");
        // The store keeps the hash as text: 64 hex digits of SHA-256.
        let hash = TokenHash::of("secret");
        assert_eq!(
            hash.as_str(),
            "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
        );
    }

    #[test]
    fn forged_expired_and_revoked_tokens_are_rejected() {
        let token = ApiToken::generate(&OsEntropy).unwrap();
        let mut record = ApiTokenRecord::issue(
            &token,
            UserName::parse("ci-bot").unwrap(),
            now(),
            time::Duration::days(1),
        );

        let forged = format!("cooper_{}_{}", token.id(), "0".repeat(64));
        let forged = ApiToken::parse(&forged).unwrap();
        assert_eq!(record.verify(&forged, now()), Err(TokenRejection::Invalid));

        assert_eq!(
            record.verify(&token, now() + time::Duration::days(1)),
            Err(TokenRejection::Expired)
        );

        record.revoked = true;
        assert_eq!(record.verify(&token, now()), Err(TokenRejection::Revoked));
    }

    #[test]
    fn malformed_bearer_values_are_not_tokens() {
        for bad in [
            "",
            "cooper_",
            "cooper_abc_def",
            "Bearer x",
            "cooper_0123456789abcdef_XYZ",
        ] {
            assert!(ApiToken::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn enrollment_codes_are_not_api_tokens_and_work_once() {
        let code = EnrollmentCode::generate(&OsEntropy).unwrap();
        let bearer = code.reveal();
        assert!(bearer.expose_secret().starts_with("cooper_enroll_"));
        assert!(ApiToken::parse(bearer.expose_secret()).is_none());
        let presented = EnrollmentCode::parse(bearer.expose_secret()).unwrap();
        let mut record = EnrollmentCodeRecord::issue(
            &code,
            UserName::parse("carol").unwrap(),
            None,
            now(),
            time::Duration::days(1),
        );
        assert_eq!(record.verify(&presented, now()).unwrap().as_str(), "carol");
        record.used_at = Some(now());
        assert_eq!(
            record.verify(&presented, now()),
            Err(TokenRejection::Revoked)
        );
        assert!(!format!("{code:?}").contains(&bearer.expose_secret()[30..]));
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let token = ApiToken::generate(&OsEntropy).unwrap();
        let secret = token.reveal();
        let shown = format!("{token:?} {:?}", token.hash());
        assert!(!shown.contains(&secret.expose_secret()[30..]));
    }
}
