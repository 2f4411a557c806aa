//! `cooper console TARGET`: opens the AWS console as the target (or prints the sign-in link).

use clap::Args;
use reqwest::Method;
use serde_json::json;

use crate::client::{Client, ClientArgs, ask};
use crate::error::Error;

#[derive(Debug, Args)]
pub struct ConsoleArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The target to become.
    target: String,
    /// Print the sign-in link instead of opening a browser (it is a secret: do not paste it around).
    #[arg(long)]
    print: bool,
    /// Where the console opens (an https URL on the target partition's console).
    #[arg(long)]
    destination: Option<String>,
    /// Session length, in seconds.
    #[arg(long)]
    duration: Option<u64>,
    /// A fresh code, for a high-security target (asked for when needed otherwise).
    #[arg(long)]
    totp: Option<String>,
}

pub async fn run(args: ConsoleArgs) -> Result<(), Error> {
    let client = Client::new(&args.client)?;
    let mut body = json!({ "target": args.target });
    if let Some(d) = &args.destination {
        body["destination"] = json!(d);
    }
    if let Some(d) = args.duration {
        body["duration_seconds"] = json!(d);
    }
    if let Some(code) = &args.totp {
        body["totp"] = json!(code);
    }
    let answer = match client.call(Method::POST, "/v1/console", Some(&body)).await {
        Err(e) if e.code() == Some("totp_required") => {
            let code = ask("Your code: ", false)?;
            body["totp"] = json!(secrecy::ExposeSecret::expose_secret(&code));
            client
                .call(Method::POST, "/v1/console", Some(&body))
                .await?
        }
        other => other?,
    };
    let url = answer["console_url"]
        .as_str()
        .ok_or(Error::IncompleteAnswer("console_url"))?;
    if args.print {
        println!("{url}");
    } else {
        open::that_detached(url).map_err(|e| Error::Browser(e.kind()))?;
        eprintln!(
            "Opened the console as {} (until {}).",
            args.target,
            answer["expiration"].as_str().unwrap_or("?")
        );
    }
    Ok(())
}
