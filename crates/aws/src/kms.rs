//! KMS sealing of federated-user targets' IAM-user keys, bound to their purpose by an encryption context.

use async_trait::async_trait;
use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cooper_core::model::{FederationKeys, SealedKeys};
use cooper_core::ports::{KeyVault, Service, UpstreamError};
use secrecy::{ExposeSecret, SecretString};

use crate::error::{corrupt, upstream};

/// The encryption context every federation-key blob carries: a ciphertext made for anything else
/// (a TOTP secret, say) will not decrypt as federation keys, and CloudTrail shows the purpose.
const CONTEXT_KEY: &str = "cooper:purpose";
const CONTEXT_FEDERATION_KEYS: &str = "federation-keys";

#[derive(Clone)]
pub struct KmsVault {
    client: Client,
}

impl KmsVault {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// Encrypts the keys as `AKID|SECRET` under `key_id`, for storing on a federated-user target.
    pub async fn seal_federation_keys(
        &self,
        key_id: &str,
        keys: &FederationKeys,
    ) -> Result<SealedKeys, UpstreamError> {
        let plaintext = SecretString::from(format!(
            "{}|{}",
            keys.access_key_id,
            keys.secret_access_key.expose_secret()
        ));
        let out = self
            .client
            .encrypt()
            .key_id(key_id)
            .plaintext(Blob::new(plaintext.expose_secret().as_bytes()))
            .encryption_context(CONTEXT_KEY, CONTEXT_FEDERATION_KEYS)
            .send()
            .await
            .map_err(|e| upstream(Service::Kms, e))?;
        let blob = out
            .ciphertext_blob
            .ok_or_else(|| corrupt(Service::Kms, "Encrypt returned no ciphertext"))?;
        SealedKeys::parse(&STANDARD.encode(blob.as_ref()))
            .map_err(|e| corrupt(Service::Kms, e.to_string()))
    }
}

#[async_trait]
impl KeyVault for KmsVault {
    async fn open_federation_keys(
        &self,
        sealed: &SealedKeys,
    ) -> Result<FederationKeys, UpstreamError> {
        let ciphertext = STANDARD
            .decode(sealed.as_str())
            .map_err(|_| corrupt(Service::Kms, "the target's sealed keys are not base64"))?;
        let out = self
            .client
            .decrypt()
            .ciphertext_blob(Blob::new(ciphertext))
            .encryption_context(CONTEXT_KEY, CONTEXT_FEDERATION_KEYS)
            .send()
            .await
            .map_err(|e| upstream(Service::Kms, e))?;
        let plaintext = out
            .plaintext
            .ok_or_else(|| corrupt(Service::Kms, "Decrypt returned no plaintext"))?;
        let text = SecretString::from(
            String::from_utf8(plaintext.into_inner())
                .map_err(|_| corrupt(Service::Kms, "the target's keys are not text"))?,
        );
        FederationKeys::parse(text.expose_secret())
            .map_err(|e| corrupt(Service::Kms, e.to_string()))
    }
}
