//! cooper's own JWTs: HS256 only (pinned), key from SSM, `exp`, `iss`, `aud` and `sub` required,
//! times checked against the injected clock with a small leeway.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: i64 = 30;
/// HMAC keys shorter than the hash output weaken HS256 (RFC 7518 section 3.2).
const MIN_KEY_BYTES: usize = 32;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub exp: i64,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// For a session made from an identity provider's token: its issuer, and the groups it
    /// asserted (cooper verified them when it signed this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// The user's directory groups at sign-in, if few: which grants a decision reads early,
    /// never what it decides on (the directory is read for that).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hint: Vec<String>,
    /// The session's id (what a sign-out or a revoke ends). Every session cooper signs has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is not a valid cooper token")]
    Invalid,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
}

#[derive(Debug, thiserror::Error)]
pub enum JwtKeyError {
    #[error("the JWT signing key is not base64")]
    NotBase64,
    #[error("the JWT signing key must be at least {MIN_KEY_BYTES} bytes")]
    TooShort,
}

/// Signs and verifies cooper's JWTs.
pub struct JwtAuthority {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
}

impl JwtAuthority {
    /// `key_b64` is the SSM parameter's value: base64 of the HMAC key.
    pub fn new(key_b64: &SecretString, issuer: &str, audience: &str) -> Result<Self, JwtKeyError> {
        let encoded = key_b64.expose_secret().trim();
        let key = STANDARD
            .decode(encoded)
            .or_else(|_| STANDARD_NO_PAD.decode(encoded))
            .map_err(|_| JwtKeyError::NotBase64)?;
        if key.len() < MIN_KEY_BYTES {
            return Err(JwtKeyError::TooShort);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        // Time is checked below against the injected clock, not the library's wall clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        Ok(Self {
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            validation,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        })
    }

    /// A token for `subject`, valid from `now` for `lifetime`, with a new random session id.
    pub fn mint(
        &self,
        subject: &str,
        now: OffsetDateTime,
        lifetime: time::Duration,
    ) -> Result<SecretString, JwtError> {
        let sid = cooper_core::revocation::SessionId::generate(&cooper_core::clock::OsEntropy)
            .map_err(|_| JwtError::Invalid)?;
        self.mint_for(subject, None, Vec::new(), now, lifetime, sid.as_str())
    }

    /// A session for someone an identity provider vouched for, keeping the groups it asserted.
    pub fn mint_for(
        &self,
        subject: &str,
        idp: Option<&str>,
        groups: Vec<String>,
        now: OffsetDateTime,
        lifetime: time::Duration,
        sid: &str,
    ) -> Result<SecretString, JwtError> {
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: subject.to_owned(),
            iat: now.unix_timestamp(),
            nbf: Some(now.unix_timestamp()),
            exp: (now + lifetime).unix_timestamp(),
            idp: idp.map(str::to_owned),
            groups,
            hint: Vec::new(),
            sid: Some(sid.to_owned()),
        };
        self.encode(&claims)
    }

    fn encode(&self, claims: &Claims) -> Result<SecretString, JwtError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map(SecretString::from)
            .map_err(|_| JwtError::Invalid)
    }

    /// A MAC of `message` under this key for `purpose` (cooper's short values that are not
    /// JWTs: a SAML sign-in's RelayState), base64url. The input starts with a label and holds a
    /// NUL, which no JWT signing input (base64url) can: one is never the other's MAC.
    pub fn mac(&self, purpose: &str, message: &str) -> Option<String> {
        let input = format!("cooper:{purpose}\0{message}");
        jsonwebtoken::crypto::sign(input.as_bytes(), &self.encoding, Algorithm::HS256).ok()
    }

    /// The same key and issuer for another audience: tokens of one are refused by the other
    /// (the web console's sessions never open the API, nor the other way round).
    pub fn for_audience(&self, audience: &str) -> Self {
        let mut validation = self.validation.clone();
        validation.set_audience(&[audience]);
        Self {
            encoding: self.encoding.clone(),
            decoding: self.decoding.clone(),
            validation,
            issuer: self.issuer.clone(),
            audience: audience.to_owned(),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Result<Claims, JwtError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => JwtError::Expired,
                ErrorKind::ImmatureSignature => JwtError::NotYetValid,
                _ => JwtError::Invalid,
            })?;
        let claims = data.claims;
        let now = now.unix_timestamp();
        if claims.exp + LEEWAY_SECONDS <= now {
            return Err(JwtError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf - LEEWAY_SECONDS > now) {
            return Err(JwtError::NotYetValid);
        }
        Ok(claims)
    }
}

/// Sessions the use cases hand out are cooper JWTs.
impl cooper_core::ports::SessionSigner for JwtAuthority {
    fn sign(
        &self,
        session: &cooper_core::ports::SessionClaims,
    ) -> Result<SecretString, cooper_core::ports::SigningUnavailable> {
        let names = |groups: &[cooper_core::names::GroupName]| {
            groups.iter().map(ToString::to_string).collect::<Vec<_>>()
        };
        let now = session.issued_at.unix_timestamp();
        self.encode(&Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: session.user.to_string(),
            iat: now,
            nbf: Some(now),
            exp: session.expires_at.unix_timestamp(),
            idp: session.idp.clone(),
            groups: names(&session.groups),
            hint: names(&session.hinted_groups),
            sid: Some(session.session_id.as_str().to_owned()),
        })
        .map_err(|_| cooper_core::ports::SigningUnavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 bytes

    fn authority() -> JwtAuthority {
        JwtAuthority::new(&SecretString::from(KEY), "cooper", "cooper-api").unwrap()
    }

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).unwrap()
    }

    #[test]
    fn a_minted_token_verifies_within_its_lifetime_only() {
        let a = authority();
        let token = a
            .mint("alice", at(1_000_000), time::Duration::minutes(10))
            .unwrap();
        let claims = a.verify(token.expose_secret(), at(1_000_100)).unwrap();
        assert_eq!(claims.sub, "alice");
        assert_eq!(
            a.verify(token.expose_secret(), at(1_000_600 + LEEWAY_SECONDS))
                .unwrap_err(),
            JwtError::Expired
        );
        assert_eq!(
            a.verify(token.expose_secret(), at(1_000_000 - 120))
                .unwrap_err(),
            JwtError::NotYetValid
        );
    }

    /// A signed session keeps what the identity provider asserted and the directory's hint
    /// apart: `groups` is authority (checked at sign-in), `hint` only chooses early reads.
    #[test]
    fn a_signed_session_keeps_asserted_groups_and_the_hint_apart() {
        use cooper_core::names::{GroupName, UserName};
        use cooper_core::ports::{SessionClaims, SessionSigner};
        let group = |g: &str| GroupName::parse(g).unwrap();
        let session = SessionClaims {
            session_id: cooper_core::revocation::SessionId::generate(
                &cooper_core::clock::OsEntropy,
            )
            .unwrap(),
            user: UserName::parse("ivy").unwrap(),
            idp: Some("https://idp.example".into()),
            groups: vec![group("eng")],
            hinted_groups: vec![group("db")],
            issued_at: at(1_000),
            expires_at: at(4_600),
        };
        let token = authority().sign(&session).unwrap();
        let claims = authority()
            .verify(token.expose_secret(), at(2_000))
            .unwrap();
        assert_eq!(claims.groups, ["eng"]);
        assert_eq!(claims.hint, ["db"]);
        assert_eq!((claims.iat, claims.exp), (1_000, 4_600));
        assert_eq!(claims.sid.as_deref(), Some(session.session_id.as_str()));
    }

    #[test]
    fn other_issuers_audiences_keys_and_algorithms_are_refused() {
        let now = at(1_000_000);
        let token = authority()
            .mint("alice", now, time::Duration::minutes(10))
            .unwrap();

        let other_aud = JwtAuthority::new(&SecretString::from(KEY), "cooper", "elsewhere").unwrap();
        assert_eq!(
            other_aud.verify(token.expose_secret(), now).unwrap_err(),
            JwtError::Invalid
        );
        let other_iss = JwtAuthority::new(&SecretString::from(KEY), "evil", "cooper-api").unwrap();
        assert_eq!(
            other_iss.verify(token.expose_secret(), now).unwrap_err(),
            JwtError::Invalid
        );
        let other_key = JwtAuthority::new(
            &SecretString::from("ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="),
            "cooper",
            "cooper-api",
        )
        .unwrap();
        assert_eq!(
            other_key.verify(token.expose_secret(), now).unwrap_err(),
            JwtError::Invalid
        );

        // alg: none, with the same claims
        let parts: Vec<&str> = token.expose_secret().split('.').collect();
        let none_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"; // {"alg":"none","typ":"JWT"}
        let unsigned = format!("{none_header}.{}.", parts[1]);
        assert_eq!(
            authority().verify(&unsigned, now).unwrap_err(),
            JwtError::Invalid
        );
    }

    #[test]
    fn tokens_missing_a_required_claim_are_refused() {
        #[derive(Serialize)]
        struct NoSub {
            iss: &'static str,
            aud: &'static str,
            exp: i64,
        }
        let key = EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef");
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &NoSub {
                iss: "cooper",
                aud: "cooper-api",
                exp: 2_000_000,
            },
            &key,
        )
        .unwrap();
        assert_eq!(
            authority().verify(&token, at(1_000_000)).unwrap_err(),
            JwtError::Invalid
        );
    }

    #[test]
    fn short_or_malformed_keys_are_refused_at_start() {
        assert!(matches!(
            JwtAuthority::new(&SecretString::from("c2hvcnQ="), "i", "a"),
            Err(JwtKeyError::TooShort)
        ));
        assert!(matches!(
            JwtAuthority::new(&SecretString::from("not base64!"), "i", "a"),
            Err(JwtKeyError::NotBase64)
        ));
    }
}
