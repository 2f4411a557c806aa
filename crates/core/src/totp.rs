//! TOTP (RFC 6238): 6 digits, 30-second steps, at most one step of skew, 160-bit secrets.
//! Replay protection and lockout are the verifier's (see `factors`); this is the arithmetic.

use std::fmt;

use secrecy::{ExposeSecret, SecretBox, SecretString};
use time::OffsetDateTime;
use totp_rs::{Algorithm, Secret, Totp};

use crate::clock::{Entropy, EntropyUnavailable};
use crate::names::{InvalidValue, UserName};

pub const STEP_SECONDS: u64 = 30;
pub const DIGITS: u8 = 6;
/// Steps either side of now that are still accepted (clock drift, typing time).
pub const SKEW_STEPS: u16 = 1;
/// RFC 4226 recommends 160 bits.
pub const SECRET_BYTES: usize = 20;

/// A user's TOTP shared secret. Only ever in memory; stored KMS-sealed.
pub struct TotpSecret(SecretBox<Vec<u8>>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

/// What a user typed: six digits. Kept out of logs like any credential.
#[derive(Clone)]
pub struct TotpCode(SecretString);

impl fmt::Debug for TotpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpCode(..)")
    }
}

impl TotpCode {
    /// Six digits; spaces (as authenticator apps show them, "123 456") are ignored.
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        let digits: String = value.chars().filter(|c| *c != ' ').collect();
        if digits.len() == usize::from(DIGITS) && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(SecretString::from(digits)))
        } else {
            Err(InvalidValue::new(
                "totp",
                "must be the 6-digit code from the authenticator app",
            ))
        }
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

pub const TOTP_CODE_PATTERN: &str = "^ *(?:[0-9] *){6}$";
string_schema!(
    TotpCode,
    TOTP_CODE_PATTERN,
    (None, None),
    "A 6-digit TOTP code from the authenticator app (spaces are ignored).",
    Some("123456")
);

fn unix_seconds(at: OffsetDateTime) -> u64 {
    u64::try_from(at.unix_timestamp()).unwrap_or(0)
}

/// The step `at` falls in.
pub fn step_of(at: OffsetDateTime) -> u64 {
    unix_seconds(at) / STEP_SECONDS
}

impl TotpSecret {
    pub fn generate(entropy: &dyn Entropy) -> Result<Self, EntropyUnavailable> {
        let mut bytes = vec![0u8; SECRET_BYTES];
        entropy.fill(&mut bytes)?;
        Ok(Self(SecretBox::new(Box::new(bytes))))
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, InvalidValue> {
        if bytes.len() < 16 {
            return Err(InvalidValue::new(
                "totp_secret",
                "must be at least 128 bits",
            ));
        }
        Ok(Self(SecretBox::new(Box::new(bytes))))
    }

    pub fn expose_bytes(&self) -> &[u8] {
        self.0.expose_secret()
    }

    fn totp(&self, issuer: &str, account: &str) -> Option<Totp> {
        totp_rs::Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS)
            .with_skew(SKEW_STEPS)
            .with_step_duration(STEP_SECONDS)
            .with_secret(Secret::from(self.expose_bytes().to_vec()))
            .with_issuer(Some(issuer))
            .with_account_name(account)
            .build()
            .ok()
    }

    /// The base32 secret, for typing into an app that cannot scan.
    pub fn base32(&self) -> SecretString {
        SecretString::from(Secret::from(self.expose_bytes().to_vec()).to_base32())
    }

    /// The `otpauth://totp/ISSUER:USER?secret=...` URI authenticator apps scan. It holds the secret.
    pub fn provisioning_uri(&self, issuer: &TotpIssuer, user: &UserName) -> Option<SecretString> {
        self.totp(issuer.as_str(), user.as_str())?
            .to_url()
            .ok()
            .map(SecretString::from)
    }

    /// The step whose code `code` is, within one step of `now`; compared in constant time.
    pub fn matching_step(&self, code: &TotpCode, now: OffsetDateTime) -> Option<u64> {
        self.totp("cooper", "user")?
            .check(code.expose(), unix_seconds(now))
    }

    /// The code for `at` (for tests, and for showing a code during enrollment checks).
    pub fn code_at(&self, at: OffsetDateTime) -> Option<TotpCode> {
        let token = self.totp("cooper", "user")?.generate(unix_seconds(at));
        TotpCode::parse(&token.to_string()).ok()
    }
}

/// The issuer shown in authenticator apps ("cooper", or the deployment's name). No colon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpIssuer(String);

impl TotpIssuer {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        if value.is_empty()
            || value.len() > 64
            || value.contains(':')
            || value.chars().any(char::is_control)
        {
            return Err(InvalidValue::new(
                "totp_issuer",
                "must be 1 to 64 characters, without ':'",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for TotpIssuer {
    fn default() -> Self {
        Self("cooper".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).unwrap()
    }

    #[test]
    fn an_issuer_is_1_to_64_characters_without_a_colon() {
        assert_eq!(
            TotpIssuer::parse("acme cooper").unwrap().as_str(),
            "acme cooper"
        );
        assert!(TotpIssuer::parse(&"a".repeat(64)).is_ok());
        for bad in [
            String::new(),
            "a".repeat(65),
            "acme:cooper".into(),
            "acme\ncooper".into(),
        ] {
            assert!(TotpIssuer::parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_secret_has_at_least_128_bits() {
        assert!(TotpSecret::from_bytes(vec![7; 15]).is_err());
        assert!(TotpSecret::from_bytes(vec![7; 16]).is_ok());
        assert!(TotpSecret::from_bytes(vec![7; 20]).is_ok());
    }

    /// RFC 6238 appendix B: the SHA-1 secret "12345678901234567890"; its 8-digit codes end in
    /// these 6 digits.
    #[test]
    fn rfc_6238_test_vectors() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec()).unwrap();
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(secret.code_at(at(time)).unwrap().expose(), code, "t={time}");
        }
    }

    #[test]
    fn one_step_of_skew_and_no_more() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec()).unwrap();
        let now = at(1_234_567_890);
        let step = step_of(now);
        let code_at_step = |s: u64| secret.code_at(at((s * STEP_SECONDS) as i64)).unwrap();
        assert_eq!(secret.matching_step(&code_at_step(step), now), Some(step));
        assert_eq!(
            secret.matching_step(&code_at_step(step - 1), now),
            Some(step - 1)
        );
        assert_eq!(
            secret.matching_step(&code_at_step(step + 1), now),
            Some(step + 1)
        );
        assert_eq!(secret.matching_step(&code_at_step(step - 2), now), None);
        assert_eq!(secret.matching_step(&code_at_step(step + 2), now), None);
    }

    #[test]
    fn the_provisioning_uri_names_issuer_and_user() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec()).unwrap();
        let uri = secret
            .provisioning_uri(
                &TotpIssuer::default(),
                &UserName::parse("alice@example.com").unwrap(),
            )
            .unwrap();
        let uri = uri.expose_secret();
        assert!(
            uri.starts_with("otpauth://totp/cooper:alice%40example.com?"),
            "{uri}"
        );
        assert!(
            uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
            "{uri}"
        );
        assert!(uri.contains("issuer=cooper"), "{uri}");
    }

    #[test]
    fn codes_are_six_digits_and_never_printed() {
        assert!(TotpCode::parse("123 456").is_ok());
        for bad in ["12345", "1234567", "12345a", ""] {
            assert!(TotpCode::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            format!("{:?}", TotpCode::parse("123456").unwrap()),
            "TotpCode(..)"
        );
        let secret = TotpSecret::from_bytes(vec![7; 20]).unwrap();
        assert_eq!(format!("{secret:?}"), "TotpSecret(..)");
    }

    #[test]
    fn generated_secrets_are_160_bits_and_differ() {
        let a = TotpSecret::generate(&crate::clock::OsEntropy).unwrap();
        let b = TotpSecret::generate(&crate::clock::OsEntropy).unwrap();
        assert_eq!(a.expose_bytes().len(), 20);
        assert_ne!(a.expose_bytes(), b.expose_bytes());
    }
}
