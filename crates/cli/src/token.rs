//! `cooper token`: API tokens for scripts and CI, managed by an operator with AWS access through
//! the same use cases the admin API runs (and audited the same way, as the operator).

use clap::{Args, Subcommand};
use cooper_core::names::{TokenLabel, UserName};
use cooper_core::token::TokenId;
use secrecy::ExposeSecret;
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use crate::deployment::DeploymentArgs;
use crate::operator::Operator;

use crate::error::Error;

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
    #[command(flatten)]
    deployment: DeploymentArgs,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Issue a new token for a user; it is printed once and stored only as a hash.
    Issue {
        #[arg(long)]
        user: String,
        /// Days until it expires (1 to 365).
        #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u16).range(1..=365))]
        days: u16,
        /// What the token is for, shown when listing.
        #[arg(long)]
        label: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List a user's tokens (ids, dates, labels).
    List {
        #[arg(long)]
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id: it stops working at once.
    Revoke { id: String },
}

pub async fn run(args: TokenArgs) -> Result<(), Error> {
    let settings = args.deployment.settings()?;
    let sdk = cooper_aws::load_sdk_config().await;
    let operator = Operator::new(&sdk, &settings).await?;
    let admin = &operator.admin;
    match args.command {
        TokenCommand::Issue {
            user,
            days,
            label,
            json,
        } => {
            let user = UserName::parse(&user)?;
            let label = label.as_deref().map(TokenLabel::parse).transpose()?;
            let (token, record) = admin
                .issue_token(&operator.context(), &user, label, Some(i64::from(days)))
                .await?;
            let expires_at = record.expires_at.format(&Rfc3339)?;
            if json {
                println!(
                    "{}",
                    json!({"id": record.id.as_str(), "user": record.user.as_str(), "token": token.reveal().expose_secret(), "expires_at": expires_at})
                );
            } else {
                println!("{}", token.reveal().expose_secret());
                eprintln!(
                    "token {} for {} (expires {expires_at}); it is not shown again",
                    record.id, record.user
                );
            }
        }
        TokenCommand::List { user, json } => {
            let user = UserName::parse(&user)?;
            let mut tokens = admin.tokens(&operator.context(), &user).await?;
            tokens.sort_by_key(|t| t.created_at);
            let rows: Vec<_> = tokens
                .iter()
                .map(|t| {
                    json!({
                        "id": t.id.as_str(),
                        "created_at": t.created_at.format(&Rfc3339).unwrap_or_default(),
                        "expires_at": t.expires_at.format(&Rfc3339).unwrap_or_default(),
                        "revoked": t.revoked,
                        "label": t.label,
                    })
                })
                .collect();
            if json {
                println!("{}", serde_json::Value::Array(rows));
            } else {
                for row in rows {
                    println!(
                        "{}  created {}  expires {}{}  {}",
                        row["id"].as_str().unwrap_or_default(),
                        row["created_at"].as_str().unwrap_or_default(),
                        row["expires_at"].as_str().unwrap_or_default(),
                        if row["revoked"] == true {
                            "  REVOKED"
                        } else {
                            ""
                        },
                        row["label"].as_str().unwrap_or_default(),
                    );
                }
            }
        }
        TokenCommand::Revoke { id } => {
            let id = TokenId::parse(&id)?;
            admin.revoke_token(&operator.context(), &id).await?;
            eprintln!("token {id} revoked");
        }
    }
    Ok(())
}
