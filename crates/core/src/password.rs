//! Local passwords: argon2id (OWASP's parameters: 19 MiB, 2 passes), stored as a PHC string.

use std::fmt;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::clock::{Entropy, EntropyUnavailable};
use crate::names::{InvalidValue, UserName};

pub const MIN_CHARS: usize = 12;
/// Hashing cost grows with length; a cap keeps one request from buying a lot of CPU.
pub const MAX_CHARS: usize = 256;

/// A password a user wants to set, checked against the policy. Never printed.
pub struct NewPassword(SecretString);

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(..)")
    }
}

impl NewPassword {
    pub fn parse(value: SecretString, user: &UserName) -> Result<Self, InvalidValue> {
        let text = value.expose_secret();
        let n = text.chars().count();
        if n < MIN_CHARS {
            return Err(InvalidValue::new(
                "password",
                format!("must be at least {MIN_CHARS} characters"),
            ));
        }
        if n > MAX_CHARS {
            return Err(InvalidValue::new(
                "password",
                format!("must be at most {MAX_CHARS} characters"),
            ));
        }
        if text.eq_ignore_ascii_case(user.as_str()) {
            return Err(InvalidValue::new("password", "must not be the user name"));
        }
        Ok(Self(value))
    }
}

/// An argon2id hash in PHC form (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordHash(String);

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error(transparent)]
    Entropy(#[from] EntropyUnavailable),
    #[error("the password could not be hashed")]
    Hashing,
}

/// A hash of nothing anyone knows, verified against when a user has no password, so that a
/// missing user or password takes as long to refuse as a wrong one.
const DECOY: &str = "$argon2id$v=19$m=19456,t=2,p=1$Y29vcGVyLWRlY295LXNhbHQ$Z7Y0p2uAZD3m7kqJf5pXr3b1mY2Q8S7eVq0nQ3mV9bA";

impl PasswordHash {
    pub fn create(password: &NewPassword, entropy: &dyn Entropy) -> Result<Self, PasswordError> {
        let mut salt = [0u8; 16];
        entropy.fill(&mut salt)?;
        let hash = Argon2::default()
            .hash_password_with_salt(password.0.expose_secret().as_bytes(), &salt)
            .map_err(|_| PasswordError::Hashing)?;
        Ok(Self(hash.to_string()))
    }

    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `password` is the one hashed. With no hash, a decoy is checked so that timing
    /// does not tell "no such password" from "wrong password".
    pub fn verify(stored: Option<&Self>, password: &SecretString) -> bool {
        let hash = stored.map_or(DECOY, |h| h.0.as_str());
        let candidate = password.expose_secret();
        if candidate.len() > MAX_CHARS * 4 {
            return false;
        }
        let ok = Argon2::default()
            .verify_password(candidate.as_bytes(), hash)
            .is_ok();
        ok && stored.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::OsEntropy;

    fn user() -> UserName {
        UserName::parse("alice").unwrap()
    }

    #[test]
    fn a_hashed_password_verifies_and_others_do_not() {
        let pw = NewPassword::parse(SecretString::from("correct horse battery"), &user()).unwrap();
        let hash = PasswordHash::create(&pw, &OsEntropy).unwrap();
        assert!(hash.as_str().starts_with("$argon2id$"));
        assert!(!hash.as_str().contains("correct horse"));
        assert!(PasswordHash::verify(
            Some(&hash),
            &SecretString::from("correct horse battery")
        ));
        assert!(!PasswordHash::verify(
            Some(&hash),
            &SecretString::from("correct horse battery!")
        ));
        assert!(!PasswordHash::verify(
            None,
            &SecretString::from("correct horse battery")
        ));
    }

    #[test]
    fn the_policy_refuses_short_long_and_user_name_passwords() {
        assert!(NewPassword::parse(SecretString::from("short"), &user()).is_err());
        assert!(NewPassword::parse(SecretString::from("x".repeat(257)), &user()).is_err());
        let long_name = UserName::parse("alice.longname").unwrap();
        assert!(NewPassword::parse(SecretString::from("ALICE.LONGNAME"), &long_name).is_err());
        let err = NewPassword::parse(SecretString::from("short"), &user()).unwrap_err();
        assert!(
            !err.to_string().contains("short"),
            "the error never repeats the password"
        );
    }

    #[test]
    fn the_decoy_is_a_valid_hash() {
        // If the decoy did not parse, a missing password would be refused faster than a wrong one.
        assert!(argon2::PasswordHash::new(DECOY).is_ok());
    }
}
