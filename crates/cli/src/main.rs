//! `cooper`: set up a deployment, seal federation keys, and serve the API locally.

mod access;
mod admin;
mod approvals;
mod client;
mod console;
mod credentials;
mod deployment;
mod doctor;
mod encrypt;
mod endpoint;
mod error;
mod exec;
mod factors;
mod oidc_login;
mod operator;
mod rotate;
mod saml_login;
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
    /// Credentials for a target, as shell exports (or --format json|env|ini|credential_process).
    Get(credentials::GetArgs),
    /// For the AWS CLI and SDKs: `credential_process = cooper credential-process TARGET` (cached).
    CredentialProcess(credentials::ProcessArgs),
    /// Run a command with a target's credentials: `cooper exec TARGET -- aws ...` (--server: from
    /// a local endpoint its SDK asks again, so they never go stale).
    Exec(exec::ExecArgs),
    /// Serve a target's credentials on a local endpoint the AWS SDKs ask (ECS protocol), fetched
    /// again before they expire, until Ctrl-C.
    ServeCredentials(exec::ServeCredentialsArgs),
    /// The targets you may become.
    Targets(credentials::ListArgs),
    /// Who cooper thinks you are.
    Whoami(credentials::ListArgs),
    /// Create what cooper needs (tables, KMS key, SSM parameters, broker user) and a demo directory.
    Setup(setup::SetupArgs),
    /// Encrypt a federated-user target's IAM-user keys ("AKID|SECRET") with KMS; prints the blob to store.
    Encrypt(encrypt::EncryptArgs),
    /// Serve every cooper API on a local address (the same routers the Lambda functions serve).
    Serve(serve::ServeArgs),
    /// Rotate the broker's IAM-user key now (operators, with AWS access; the rotate-keys function
    /// does it on its schedule).
    RotateKeys(rotate::RotateArgs),
    /// Issue, list and revoke users' API tokens (operators, with AWS access to the directory).
    Token(token::TokenArgs),
    /// Enroll an authenticator app: shows a QR code, then asks for its first code.
    Enroll(factors::EnrollArgs),
    /// Sign in with password and code; the session is saved for the other commands.
    Login(factors::LoginArgs),
    /// Sign out: end the saved session (on the server too) and forget it.
    Logout(factors::LogoutArgs),
    /// Set or change your password (needs your authenticator).
    Password(factors::PasswordArgs),
    /// Approve someone's request for a target that needs a second person.
    Approve(factors::ApproveArgs),
    /// Ask a second person to approve one use of a target that needs one; list your requests.
    Approvals(approvals::ApprovalsArgs),
    /// Just-in-time access: ask for access you do not hold, and approve, deny or end requests.
    Access(access::AccessArgs),
    /// Open the AWS console as a target (or print the sign-in link with --print).
    Console(console::ConsoleArgs),
    /// Administer accounts, targets, users, groups, grants and admins; search the audit trail.
    Admin(admin::AdminArgs),
    /// Check what stands between you and credentials: config, kept files, endpoint, clock, session.
    Doctor(doctor::DoctorArgs),
    /// Shell completion: `cooper completion bash > /etc/bash_completion.d/cooper` (or zsh, fish).
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    cooper_api::telemetry::init();
    let cli = Cli::parse();
    let result = match cli.command {
        // exec exits as its command does.
        Command::Exec(args) => {
            return exec::exec(args).await.unwrap_or_else(|error| fail(&error));
        }
        Command::Get(args) => credentials::get(args).await,
        Command::ServeCredentials(args) => exec::serve_credentials(args).await,
        Command::CredentialProcess(args) => credentials::credential_process(args).await,
        Command::Targets(args) => credentials::targets(args).await,
        Command::Whoami(args) => credentials::whoami(args).await,
        Command::Setup(args) => setup::run(args).await,
        Command::Encrypt(args) => encrypt::run(args).await,
        Command::Serve(args) => serve::run(args).await,
        Command::Token(args) => token::run(args).await,
        Command::RotateKeys(args) => rotate::run(args).await,
        Command::Enroll(args) => factors::enroll(args).await,
        Command::Login(args) => factors::login(args).await,
        Command::Logout(args) => factors::logout(args).await,
        Command::Password(args) => factors::password(args).await,
        Command::Approve(args) => factors::approve(args).await,
        Command::Approvals(args) => approvals::run(args).await,
        Command::Access(args) => access::run(args).await,
        Command::Admin(args) => admin::run(args).await,
        Command::Doctor(args) => doctor::run(args).await,
        Command::Completion { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "cooper", &mut std::io::stdout());
            Ok(())
        }
        Command::Console(args) => console::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}

/// The error and its causes, for people (never `Debug`: no variant's message holds a secret).
fn fail(error: &error::Error) -> ExitCode {
    eprintln!("cooper: {}", error::report(error));
    ExitCode::FAILURE
}
