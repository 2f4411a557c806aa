//! `cooper encrypt`: seal a federated-user target's IAM-user keys with KMS.

use std::io::{BufRead, IsTerminal};

use clap::Args;
use cooper_aws::aws_sdk_kms;
use cooper_aws::kms::KmsVault;
use cooper_core::model::FederationKeys;
use cooper_core::names::{AccountId, TargetName};
use cooper_core::ports::FederationBinding;
use secrecy::{ExposeSecret, SecretString};

use crate::error::Error;

#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// The KMS key: id, ARN or alias (alias/cooper).
    #[arg(long, env = "COOPER_KMS_KEY")]
    kms_key: String,
    /// The account the keys are of, and whose target will carry them.
    #[arg(long)]
    account: String,
    /// The federated-user target that will carry them: the blob opens for it and no other.
    #[arg(long)]
    target: String,
    /// "ACCESS_KEY_ID|SECRET_ACCESS_KEY"; omit it (or give -) to read it from stdin and keep it
    /// out of the shell history.
    keys: Option<String>,
}

pub async fn run(args: EncryptArgs) -> Result<(), Error> {
    let plaintext = match args.keys.as_deref() {
        Some(keys) if keys != "-" => SecretString::from(keys.to_owned()),
        _ => {
            if std::io::stdin().is_terminal() {
                eprintln!("ACCESS_KEY_ID|SECRET_ACCESS_KEY:");
            }
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(Error::Terminal)?;
            SecretString::from(line)
        }
    };
    let keys = FederationKeys::parse(plaintext.expose_secret())?;
    let binding = FederationBinding {
        account: AccountId::parse(&args.account)?,
        target: TargetName::parse(&args.target)?,
    };
    let sdk = cooper_aws::load_sdk_config().await;
    let vault = KmsVault::new(aws_sdk_kms::Client::new(&sdk));
    let sealed = vault
        .seal_federation_keys(&args.kms_key, &keys, &binding)
        .await?;
    println!("{}", sealed.as_str());
    Ok(())
}
