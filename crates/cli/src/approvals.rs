//! `cooper approvals`: asking a second person for one use of a target that needs one, and the
//! requests you made. (`cooper approve ID` approves someone else's.)

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Client, ClientArgs, segment};
use crate::error::Error;

#[derive(Debug, Args)]
pub struct ApprovalsArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Print the API's JSON answer instead of lines for people.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, Subcommand)]
enum Verb {
    /// Ask for a second person's approval of one use of a target you hold.
    Request {
        target: String,
        /// Why: the approvers read it, and so does the audit trail.
        #[arg(long)]
        reason: String,
    },
    /// Your approval requests and where each stands, or (with --approver) the ones asking you.
    List {
        /// The requests asking you (of the last day), not the ones you made.
        #[arg(long)]
        approver: bool,
    },
    /// One request.
    Show { id: String },
}

fn text<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name].as_str().unwrap_or("")
}

pub async fn run(args: ApprovalsArgs) -> Result<(), Error> {
    let client = Client::new(&args.client)?;
    let answer = match &args.verb {
        Verb::Request { target, reason } => {
            let r = client
                .call(
                    Method::POST,
                    "/v1/approvals",
                    Some(&json!({"target": target, "reason": reason})),
                )
                .await?;
            if !args.json {
                println!(
                    "Asked: request {} for {} waits for an approver until {}.",
                    text(&r, "id"),
                    text(&r, "target"),
                    text(&r, "expires_at")
                );
                println!(
                    "An approver runs `cooper approve {}`; then use it once: `cooper get {target} --approval-id {}`.",
                    text(&r, "id"),
                    text(&r, "id")
                );
            }
            r
        }
        Verb::List { approver } => {
            let path = if *approver {
                "/v1/approvals?role=approver"
            } else {
                "/v1/approvals"
            };
            let r = client.call(Method::GET, path, None).await?;
            if !args.json {
                let items = r["items"].as_array().cloned().unwrap_or_default();
                if items.is_empty() {
                    eprintln!("No approval requests.");
                }
                for item in &items {
                    println!(
                        "{}  {:<9} {:<10} {:<28} approved by {:<12} expires {}",
                        text(item, "id"),
                        text(item, "status"),
                        text(item, "requester"),
                        text(item, "target"),
                        item["approved_by"].as_str().unwrap_or("-"),
                        text(item, "expires_at")
                    );
                }
            }
            r
        }
        Verb::Show { id } => {
            let r = client
                .call(Method::GET, &format!("/v1/approvals/{}", segment(id)), None)
                .await?;
            if !args.json {
                println!(
                    "{} asks for {}: {:?} ({}, expires {})",
                    text(&r, "requester"),
                    text(&r, "target"),
                    text(&r, "reason"),
                    text(&r, "status"),
                    text(&r, "expires_at")
                );
            }
            r
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    }
    Ok(())
}
