//! `cooper exec` (a command with a target's credentials, in its environment or from a local
//! endpoint that renews them) and `cooper serve-credentials` (that endpoint, for a terminal).

use std::process::ExitCode;

use clap::Args;

use crate::client::{Client, ClientArgs};
use crate::credentials::{TargetArgs, env_pairs, fetch, shell_quote};
use crate::error::Error;

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    target: TargetArgs,
    /// Serve the credentials on a local endpoint the AWS SDKs and CLI ask on their own (the ECS
    /// container-credentials protocol), fetched again before they expire, instead of putting
    /// static keys in the command's environment: for commands that outlive one session.
    #[arg(long)]
    server: bool,
    /// With --server: fetch new credentials this many seconds before the old ones expire
    /// (default: 16 minutes, or a third of a shorter session).
    #[arg(long, requires = "server", value_name = "SECONDS")]
    refresh_before: Option<i64>,
    /// The command and its arguments (after --).
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// Variables that would give the command other credentials than the target's (some take
/// precedence over what cooper hands it), and cooper's own secrets: never passed on.
const WITHHELD: [&str; 14] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "COOPER_TOKEN",
    "COOPER_ENROLLMENT_CODE",
];

/// Runs the command with the target's credentials (in its environment, or from a local
/// endpoint with --server), passes on the signals cooper gets, and exits as it does.
pub async fn exec(args: ExecArgs) -> Result<ExitCode, Error> {
    let client = Client::new(&args.client)?;
    let (program, rest) = args.command.split_first().ok_or(Error::NoCommand)?;
    let mut command = tokio::process::Command::new(program);
    command.args(rest);
    for name in WITHHELD {
        command.env_remove(name);
    }
    if args.server {
        let running =
            crate::endpoint::start(client, args.target.clone(), args.refresh_before).await?;
        for (k, v) in running.env() {
            command.env(k, v);
        }
    } else {
        let c = fetch(&client, &args.target, true).await?;
        for (k, v) in env_pairs(&c) {
            command.env(k, v);
        }
    }
    command.env("COOPER_TARGET", &args.target.target);
    let mut child = command.spawn().map_err(|source| Error::Run {
        program: program.clone(),
        source,
    })?;
    let status = supervise(&mut child).await.map_err(|source| Error::Run {
        program: program.clone(),
        source,
    })?;
    Ok(ExitCode::from(exit_code(status)))
}

/// Waits for the child, sending it every signal cooper gets meanwhile (interrupt, terminate,
/// hang-up, quit, user 1 and 2). A terminal's Ctrl-C reaches both already: the child then sees
/// it twice, as with aws-vault; a signal sent to cooper alone reaches the child once.
async fn supervise(child: &mut tokio::process::Child) -> std::io::Result<std::process::ExitStatus> {
    use nix::sys::signal::Signal;
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut quit = signal(SignalKind::quit())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut usr2 = signal(SignalKind::user_defined2())?;
    loop {
        let got = tokio::select! {
            status = child.wait() => return status,
            _ = int.recv() => Signal::SIGINT,
            _ = term.recv() => Signal::SIGTERM,
            _ = hup.recv() => Signal::SIGHUP,
            _ = quit.recv() => Signal::SIGQUIT,
            _ = usr1.recv() => Signal::SIGUSR1,
            _ = usr2.recv() => Signal::SIGUSR2,
        };
        if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), got);
        }
    }
}

/// The child's exit code, or 128 + the signal that ended it (as a shell reports it).
fn exit_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(1),
        (None, None) => 1,
    }
}

#[derive(Debug, Args)]
pub struct ServeCredentialsArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    target: TargetArgs,
    /// Fetch new credentials this many seconds before the old ones expire.
    #[arg(long, value_name = "SECONDS")]
    refresh_before: Option<i64>,
}

/// Serves the target's credentials on a local endpoint until interrupted, and prints the two
/// variables to give the programs that should use it.
pub async fn serve_credentials(args: ServeCredentialsArgs) -> Result<(), Error> {
    let client = Client::new(&args.client)?;
    let running = crate::endpoint::start(client, args.target.clone(), args.refresh_before).await?;
    for (k, v) in running.env() {
        println!("export {k}={}", shell_quote(&v));
    }
    eprintln!(
        "# serving credentials for {} at {} until Ctrl-C; give the lines above to the programs that should use them (never static keys: they fetch again)",
        args.target.target, running.url
    );
    let _ = tokio::signal::ctrl_c().await;
    Ok(())
}
