//! `cooper access`: just-in-time access from the terminal. Ask for access you do not hold,
//! list your requests or the ones waiting for you, approve (with your code), deny, withdraw or
//! end access early.

use clap::{Args, Subcommand};
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::client::{Client, ClientArgs, ask, query, segment};
use crate::error::Error;

#[derive(Debug, Args)]
pub struct AccessArgs {
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
    /// Ask for a target (or, with --account and --level, an account's targets up to a level).
    Request {
        /// The target to ask for.
        #[arg(required_unless_present = "account", conflicts_with = "account")]
        target: Option<String>,
        /// The account whose targets up to --level you ask for.
        #[arg(long, requires = "level")]
        account: Option<String>,
        #[arg(long, requires = "account")]
        level: Option<u32>,
        /// How long you need it: `90m`, `4h`, `1h 30m` (default: an hour).
        #[arg(long, value_parser = seconds)]
        duration: Option<u64>,
        /// Why: the approvers read it, and so does the audit trail.
        #[arg(long)]
        reason: String,
    },
    /// Your requests, or (with --approver) the ones waiting for you.
    List {
        /// The requests asking you, not the ones you made.
        #[arg(long)]
        approver: bool,
        /// Only those in this state.
        #[arg(long, value_parser = ["pending", "approved", "denied", "cancelled", "expired", "ended"])]
        state: Option<String>,
    },
    /// One request.
    Show { id: String },
    /// Approve a request with your code (you are one of its approvers; never your own).
    Approve {
        id: String,
        /// Give less than asked: `30m`, `1h`.
        #[arg(long, value_parser = seconds)]
        duration: Option<u64>,
    },
    /// Turn a request down.
    Deny {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Withdraw your request, or end the access it gave now (yours, or one you approved).
    Cancel {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
}

/// A duration for people: `90m`, `4h`, `1h 30m`, `2d`, or plain seconds.
pub(crate) fn seconds(text: &str) -> Result<u64, String> {
    if let Ok(s) = text.trim().parse::<u64>() {
        return Ok(s);
    }
    humantime::parse_duration(text)
        .map(|d| d.as_secs())
        .map_err(|e| format!("{e} (try 90m, 4h or 1h 30m)"))
}

fn path(id: &str) -> String {
    format!("/v1/access-requests/{}", segment(id))
}

fn text<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name].as_str().unwrap_or("")
}

/// What a request asks for, in words.
fn what(r: &Value) -> String {
    match r["target"].as_str() {
        Some(t) => t.to_owned(),
        None => format!("{} up to level {}", text(r, "account_id"), r["level"]),
    }
}

fn hours(seconds: &Value) -> String {
    let s = seconds.as_u64().unwrap_or(0);
    match (s / 3600, (s % 3600) / 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

fn line(r: &Value) -> String {
    let status = text(r, "status");
    let when = match status {
        "approved" | "ended" => format!("until {}", text(r, "access_until")),
        "pending" => format!("lapses {}", text(r, "expires_at")),
        _ => String::new(),
    };
    format!(
        "{}  {:<9} {:<10} {:<28} {:<8} {}",
        text(r, "id"),
        status,
        text(r, "requester"),
        what(r),
        hours(&r["duration_seconds"]),
        when
    )
}

fn describe(r: &Value) -> String {
    let mut out = format!(
        "{} asks for {} for {}: {:?}\n  status {}, made {}",
        text(r, "requester"),
        what(r),
        hours(&r["duration_seconds"]),
        text(r, "reason"),
        text(r, "status"),
        text(r, "created_at"),
    );
    if let Some(by) = r["decided_by"].as_str() {
        out.push_str(&format!(", settled by {by}"));
    }
    if let Some(until) = r["access_until"].as_str() {
        out.push_str(&format!(", access until {until}"));
    }
    if let Some(note) = r["note"].as_str() {
        out.push_str(&format!("\n  note: {note:?}"));
    }
    out
}

pub async fn run(args: AccessArgs) -> Result<(), Error> {
    let client = Client::new(&args.client)?;
    let answer = match &args.verb {
        Verb::Request {
            target,
            account,
            level,
            duration,
            reason,
        } => {
            let mut body = json!({"reason": reason});
            match (target, account) {
                (Some(t), _) => body["target"] = json!(t),
                (None, Some(a)) => {
                    body["account_id"] = json!(a);
                    body["level"] = json!(level);
                }
                (None, None) => {}
            }
            if let Some(d) = duration {
                body["duration_seconds"] = json!(d);
            }
            let r = client
                .call(Method::POST, "/v1/access-requests", Some(&body))
                .await?;
            if !args.json {
                println!(
                    "Asked for {} for {}: request {} waits for an approver (until {}).",
                    what(&r),
                    hours(&r["duration_seconds"]),
                    text(&r, "id"),
                    text(&r, "expires_at")
                );
                println!(
                    "The approvers are told; `cooper access show {}` tells you where it stands.",
                    text(&r, "id")
                );
            }
            r
        }
        Verb::List { approver, state } => {
            let role = approver.then(|| "approver".to_owned());
            let q = query(&[("role", role), ("state", state.clone())]);
            let r = client
                .call(Method::GET, &format!("/v1/access-requests{q}"), None)
                .await?;
            if !args.json {
                let items = r["items"].as_array().cloned().unwrap_or_default();
                if items.is_empty() {
                    eprintln!("No requests.");
                }
                for item in &items {
                    println!("{}", line(item));
                }
            }
            r
        }
        Verb::Show { id } => {
            let r = client.call(Method::GET, &path(id), None).await?;
            if !args.json {
                println!("{}", describe(&r));
            }
            r
        }
        Verb::Approve { id, duration } => {
            let request = client.call(Method::GET, &path(id), None).await?;
            eprintln!("{}", describe(&request));
            let code = ask("Your code to approve: ", false)?;
            let mut body = json!({"totp": code.expose_secret()});
            if let Some(d) = duration {
                body["duration_seconds"] = json!(d);
            }
            let r = client
                .call(Method::POST, &format!("{}/approve", path(id)), Some(&body))
                .await?;
            if !args.json {
                println!(
                    "Approved: {} holds {} until {}.",
                    text(&r, "requester"),
                    what(&r),
                    text(&r, "access_until")
                );
            }
            r
        }
        Verb::Deny { id, reason } | Verb::Cancel { id, reason } => {
            let verb = if matches!(args.verb, Verb::Deny { .. }) {
                "deny"
            } else {
                "cancel"
            };
            let body = reason.as_ref().map(|r| json!({"reason": r}));
            let r = client
                .call(Method::POST, &format!("{}/{verb}", path(id)), body.as_ref())
                .await?;
            if !args.json {
                println!("Request {id} is {} now.", text(&r, "status"));
            }
            r
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(seconds("3600"), Ok(3600));
        assert_eq!(seconds("90m"), Ok(5400));
        assert_eq!(seconds("4h"), Ok(14_400));
        assert_eq!(seconds("1h 30m"), Ok(5400));
        assert!(seconds("soon").is_err());
    }

    #[test]
    fn a_request_reads_in_words() {
        let r = json!({"requester": "alice", "target": "prod", "duration_seconds": 5400, "reason": "x", "status": "pending", "created_at": "t"});
        assert_eq!(
            describe(&r),
            "alice asks for prod for 1 h 30 min: \"x\"\n  status pending, made t"
        );
        let a = json!({"account_id": "111111111111", "level": 50});
        assert_eq!(what(&a), "111111111111 up to level 50");
    }
}
