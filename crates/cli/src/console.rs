//! `cooper console TARGET`: opens the AWS console as the target (or prints the sign-in link).

use clap::Args;
use serde_json::json;

use crate::client::{Client, ClientArgs};
use crate::error::Error;

#[derive(Debug, Args)]
pub struct ConsoleArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    target: crate::credentials::TargetArgs,
    /// Print the sign-in link instead of opening a browser (it is a secret: do not paste it around).
    #[arg(long)]
    print: bool,
    /// Where the console opens (an https URL on the target partition's console).
    #[arg(long)]
    destination: Option<String>,
}

pub async fn run(args: ConsoleArgs) -> Result<(), Error> {
    let client = Client::new(&args.client)?;
    let mut body = args.target.body();
    if let Some(d) = &args.destination {
        body["destination"] = json!(d);
    }
    let answer =
        crate::credentials::request(&client, "/v1/console", &args.target, body, true).await?;
    let url = answer["console_url"]
        .as_str()
        .ok_or(Error::IncompleteAnswer("console_url"))?;
    if args.print {
        println!("{url}");
    } else {
        open::that_detached(url).map_err(|e| Error::Browser(e.kind()))?;
        eprintln!(
            "Opened the console as {} (until {}).",
            args.target.target,
            answer["expiration"].as_str().unwrap_or("?")
        );
    }
    Ok(())
}
