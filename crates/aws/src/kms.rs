//! KMS sealing: federated-user targets' IAM-user keys and users' TOTP secrets, each bound to its
//! purpose (and a TOTP secret to its user) by an encryption context.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cooper_core::model::{FederationKeys, Sealed};
use cooper_core::names::UserName;
use cooper_core::ports::{FederationBinding, KeyVault, Service, UpstreamError, UpstreamKind};
use cooper_core::totp::TotpSecret;
use secrecy::{ExposeSecret, SecretBox, SecretString};

use crate::error::{corrupt, upstream};

/// The encryption context every blob carries. A ciphertext made for one purpose (or one user)
/// will not decrypt for another, and CloudTrail shows what each Decrypt was for.
const PURPOSE: &str = "cooper:purpose";
const USER: &str = "cooper:user";
const ACCOUNT: &str = "cooper:account";
const TARGET: &str = "cooper:target";
const FEDERATION_KEYS: &str = "federation-keys";
const TOTP_SECRET: &str = "totp-secret";

/// Federation keys are sealed for one target of one account: a blob copied onto another target,
/// or into another account, does not open there.
fn federation_context(binding: &FederationBinding) -> HashMap<String, String> {
    HashMap::from([
        (PURPOSE.to_owned(), FEDERATION_KEYS.to_owned()),
        (ACCOUNT.to_owned(), binding.account.to_string()),
        (TARGET.to_owned(), binding.target.to_string()),
    ])
}

fn totp_context(user: &UserName) -> HashMap<String, String> {
    HashMap::from([
        (PURPOSE.to_owned(), TOTP_SECRET.to_owned()),
        (USER.to_owned(), user.as_str().to_owned()),
    ])
}

#[derive(Clone)]
pub struct KmsVault {
    client: Client,
    /// The key new secrets are sealed under (decryption needs none: the ciphertext names it).
    key_id: Option<String>,
}

impl KmsVault {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            key_id: None,
        }
    }

    pub fn with_key(mut self, key_id: impl Into<String>) -> Self {
        self.key_id = Some(key_id.into());
        self
    }

    async fn seal(
        &self,
        key_id: &str,
        plaintext: &[u8],
        context: HashMap<String, String>,
    ) -> Result<Sealed, UpstreamError> {
        let out = self
            .client
            .encrypt()
            .key_id(key_id)
            .plaintext(Blob::new(plaintext))
            .set_encryption_context(Some(context))
            .send()
            .await
            .map_err(|e| upstream(Service::Kms, e))?;
        let blob = out
            .ciphertext_blob
            .ok_or_else(|| corrupt(Service::Kms, "Encrypt returned no ciphertext"))?;
        Sealed::parse(&STANDARD.encode(blob.as_ref()))
            .map_err(|e| corrupt(Service::Kms, e.to_string()))
    }

    async fn open(
        &self,
        sealed: &Sealed,
        context: HashMap<String, String>,
        what: &str,
    ) -> Result<SecretBox<Vec<u8>>, UpstreamError> {
        let ciphertext = STANDARD
            .decode(sealed.as_str())
            .map_err(|_| corrupt(Service::Kms, format!("the sealed {what} are not base64")))?;
        let out = self
            .client
            .decrypt()
            .ciphertext_blob(Blob::new(ciphertext))
            .set_encryption_context(Some(context))
            .send()
            .await
            .map_err(|e| upstream(Service::Kms, e))?;
        let plaintext = out
            .plaintext
            .ok_or_else(|| corrupt(Service::Kms, "Decrypt returned no plaintext"))?;
        Ok(SecretBox::new(Box::new(plaintext.into_inner())))
    }

    fn sealing_key(&self) -> Result<&str, UpstreamError> {
        self.key_id.as_deref().ok_or_else(|| {
            UpstreamError::new(
                Service::Kms,
                UpstreamKind::Refused,
                "no KMS key is configured for sealing (COOPER_KMS_KEY)",
            )
        })
    }

    /// Encrypts the keys as `AKID|SECRET` under `key_id`, for storing on the federated-user
    /// target `binding` names (and no other).
    pub async fn seal_federation_keys(
        &self,
        key_id: &str,
        keys: &FederationKeys,
        binding: &FederationBinding,
    ) -> Result<Sealed, UpstreamError> {
        let plaintext = SecretString::from(format!(
            "{}|{}",
            keys.access_key_id,
            keys.secret_access_key.expose_secret()
        ));
        self.seal(
            key_id,
            plaintext.expose_secret().as_bytes(),
            federation_context(binding),
        )
        .await
    }
}

#[async_trait]
impl KeyVault for KmsVault {
    async fn open_federation_keys(
        &self,
        sealed: &Sealed,
        binding: &FederationBinding,
    ) -> Result<FederationKeys, UpstreamError> {
        let plaintext = self
            .open(sealed, federation_context(binding), "federation keys")
            .await?;
        let text = std::str::from_utf8(plaintext.expose_secret())
            .map_err(|_| corrupt(Service::Kms, "the target's keys are not text"))?;
        FederationKeys::parse(text).map_err(|e| corrupt(Service::Kms, e.to_string()))
    }

    async fn reseal_federation_keys(
        &self,
        keys: &FederationKeys,
        binding: &FederationBinding,
    ) -> Result<Sealed, UpstreamError> {
        self.seal_federation_keys(self.sealing_key()?, keys, binding)
            .await
    }

    async fn seal_totp_secret(
        &self,
        user: &UserName,
        secret: &TotpSecret,
    ) -> Result<Sealed, UpstreamError> {
        self.seal(
            self.sealing_key()?,
            secret.expose_bytes(),
            totp_context(user),
        )
        .await
    }

    async fn open_totp_secret(
        &self,
        user: &UserName,
        sealed: &Sealed,
    ) -> Result<TotpSecret, UpstreamError> {
        let plaintext = self.open(sealed, totp_context(user), "TOTP secret").await?;
        TotpSecret::from_bytes(plaintext.expose_secret().clone())
            .map_err(|e| corrupt(Service::Kms, e.to_string()))
    }
}
