//! `cooper`: set up a deployment, seal federation keys, and serve the API locally.

mod deployment;
mod encrypt;
mod serve;
mod setup;
mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cooper",
    version,
    about = "cooper: short-lived AWS credentials, brokered and audited"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create what cooper needs (tables, KMS key, SSM parameters, broker user) and a demo directory.
    Setup(setup::SetupArgs),
    /// Encrypt a federated-user target's IAM-user keys ("AKID|SECRET") with KMS; prints the blob to store.
    Encrypt(encrypt::EncryptArgs),
    /// Serve every cooper API on a local address (the same routers the Lambda functions serve).
    Serve(serve::ServeArgs),
    /// Issue, list and revoke users' API tokens (operators, with AWS access to the directory).
    Token(token::TokenArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    cooper_api::telemetry::init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup(args) => setup::run(args).await,
        Command::Encrypt(args) => encrypt::run(args).await,
        Command::Serve(args) => serve::run(args).await,
        Command::Token(args) => token::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cooper: {error}");
            ExitCode::FAILURE
        }
    }
}
