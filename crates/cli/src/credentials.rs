//! Credentials where people use them: `cooper get` (shell exports, env, ini, JSON),
//! `cooper credential-process` (the AWS CLI and SDKs' `credential_process`, cached),
//! `cooper exec` (a command with the credentials in its environment), `cooper targets`, `cooper whoami`.

use std::path::PathBuf;

use clap::Args;
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::client::{Client, ClientArgs, ask, config_dir, write_private};
use crate::error::Error;

/// A cached `credential_process` answer is used until this close to its expiry.
const CACHE_MARGIN_SECONDS: i64 = 300;

#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// The target to become.
    pub target: String,
    /// Session length: seconds, or `90m`, `4h` (the target's limits apply).
    #[arg(long, value_parser = crate::access::seconds)]
    pub duration: Option<u64>,
    /// A fresh code, for a high-security target (asked for when needed on a terminal).
    #[arg(long)]
    pub totp: Option<String>,
    /// For a target that needs a second person: the approver, next to you, types their code
    /// when asked.
    #[arg(long, value_name = "USER", conflicts_with = "approval_id")]
    pub approver: Option<String>,
    /// For a target that needs a second person: a request they approved (`cooper approvals
    /// request`, then `cooper approve ID`), good once.
    #[arg(long, value_name = "ID")]
    pub approval_id: Option<String>,
}

impl TargetArgs {
    /// The request body, with what was given on the command line.
    pub(crate) fn body(&self) -> Value {
        let mut body = json!({ "target": self.target });
        if let Some(d) = self.duration {
            body["duration_seconds"] = json!(d);
        }
        if let Some(code) = &self.totp {
            body["totp"] = json!(code);
        }
        if let Some(id) = &self.approval_id {
            body["approval_id"] = json!(id);
        }
        body
    }
}

/// Asks cooper for `path` (credentials, or a console link) for the target. On a terminal
/// (`interactive`), what the target needs is asked for: the caller's code, a second person and
/// their code. Without one (credential_process), such a target fails at once with what to run
/// instead: nothing waits for an answer that cannot come.
pub async fn request(
    client: &Client,
    path: &str,
    target: &TargetArgs,
    mut body: Value,
    interactive: bool,
) -> Result<Value, Error> {
    if let Some(approver) = &target.approver {
        if !interactive {
            return Err(Error::NeedsApproval {
                target: target.target.clone(),
            });
        }
        let code = ask(
            &format!("Code of {approver} (the approver types it): "),
            false,
        )?;
        body["approver"] = json!(approver);
        body["approver_totp"] = json!(code.expose_secret());
    }
    // At most one of each question: a second refusal is the answer.
    let mut asked_code = false;
    let mut asked_approver = false;
    loop {
        match client.call(Method::POST, path, Some(&body)).await {
            Err(e) if e.code() == Some("totp_required") && !asked_code => {
                if !interactive {
                    return Err(Error::NeedsCode {
                        target: target.target.clone(),
                    });
                }
                let code = ask(&format!("Your code for {}: ", target.target), false)?;
                body["totp"] = json!(code.expose_secret());
                asked_code = true;
            }
            Err(e) if e.code() == Some("approval_required") && !asked_approver => {
                if !interactive {
                    return Err(Error::NeedsApproval {
                        target: target.target.clone(),
                    });
                }
                eprintln!(
                    "{} needs a second person: someone on its approver list types their code here \
                     (or ask with `cooper approvals request {} --reason ...`).",
                    target.target, target.target
                );
                let approver = ask("Approver (their user name): ", false)?;
                let code = ask("Approver's code: ", false)?;
                body["approver"] = json!(approver.expose_secret());
                body["approver_totp"] = json!(code.expose_secret());
                asked_approver = true;
            }
            other => return other,
        }
    }
}

/// Credentials for the target (see [`request`]).
pub(crate) async fn fetch(
    client: &Client,
    target: &TargetArgs,
    interactive: bool,
) -> Result<Value, Error> {
    let credentials = request(
        client,
        "/v1/credentials",
        target,
        target.body(),
        interactive,
    )
    .await?;
    has_keys(&credentials)?;
    Ok(credentials)
}

/// Empty keys would make the AWS tools fail later, with a less clear message.
fn has_keys(credentials: &Value) -> Result<(), Error> {
    for name in ["access_key_id", "secret_access_key", "session_token"] {
        if field(credentials, name).is_empty() {
            return Err(Error::IncompleteAnswer(name));
        }
    }
    Ok(())
}

fn field<'a>(c: &'a Value, name: &str) -> &'a str {
    c[name].as_str().unwrap_or_default()
}

fn process_json(c: &Value) -> Value {
    json!({
        "Version": 1,
        "AccessKeyId": field(c, "access_key_id"),
        "SecretAccessKey": field(c, "secret_access_key"),
        "SessionToken": field(c, "session_token"),
        "Expiration": field(c, "expiration"),
    })
}

pub(crate) fn env_pairs(c: &Value) -> [(&'static str, &str); 4] {
    [
        ("AWS_ACCESS_KEY_ID", field(c, "access_key_id")),
        ("AWS_SECRET_ACCESS_KEY", field(c, "secret_access_key")),
        ("AWS_SESSION_TOKEN", field(c, "session_token")),
        ("AWS_CREDENTIAL_EXPIRATION", field(c, "expiration")),
    ]
}

/// Single-quoted for POSIX shells.
pub(crate) fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    target: TargetArgs,
    /// export (shell lines), json, env (KEY=value), ini (a credentials-file section),
    /// credential_process (the AWS CLI's Version 1 JSON).
    #[arg(long, default_value = "export", value_parser = ["export", "json", "env", "ini", "credential_process"])]
    format: String,
}

pub async fn get(args: GetArgs) -> Result<(), Error> {
    let client = Client::new(&args.client)?;
    let c = fetch(&client, &args.target, true).await?;
    let out = match args.format.as_str() {
        "json" => serde_json::to_string_pretty(&c)?,
        "credential_process" => process_json(&c).to_string(),
        "env" => env_pairs(&c)
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("\n"),
        "ini" => format!(
            "[{}]\naws_access_key_id = {}\naws_secret_access_key = {}\naws_session_token = {}",
            args.target.target,
            field(&c, "access_key_id"),
            field(&c, "secret_access_key"),
            field(&c, "session_token")
        ),
        _ => env_pairs(&c)
            .iter()
            .map(|(k, v)| format!("export {k}={}", shell_quote(v)))
            .collect::<Vec<_>>()
            .join("\n"),
    };
    println!("{out}");
    eprintln!(
        "# {} in {} until {}",
        field(&c, "target"),
        field(&c, "account_id"),
        field(&c, "expiration")
    );
    Ok(())
}

#[derive(Debug, Args)]
pub struct ProcessArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    target: TargetArgs,
    /// Always ask cooper, ignoring (and replacing) the cache.
    #[arg(long)]
    no_cache: bool,
}

/// The cache file of one identity's credentials for one target: keyed by profile, endpoint and
/// who asks (the session's user and a digest of the bearer), so that two identities on one
/// machine never read each other's.
fn cache_path(client: &Client, target: &TargetArgs) -> Option<PathBuf> {
    let profile = client.profile.as_str();
    let key = format!(
        "{profile}|{}|{}|{}|{}",
        client.endpoint(),
        client.identity(),
        target.target,
        target.duration.unwrap_or(0)
    );
    let digest = hex_digest(&key);
    let name = crate::client::file_safe(profile);
    config_dir().map(|d| d.join("cache").join(format!("{name}-{digest}.json")))
}

fn hex_digest(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn still_good(cached: &Value, now: OffsetDateTime) -> bool {
    cached["Expiration"]
        .as_str()
        .and_then(|e| OffsetDateTime::parse(e, &Rfc3339).ok())
        .is_some_and(|exp| (exp - now).whole_seconds() > CACHE_MARGIN_SECONDS)
}

/// For `credential_process = cooper credential-process TARGET`: prints the Version 1 JSON,
/// from a 0600 cache file while it has more than five minutes left.
#[allow(clippy::disallowed_methods)] // the CLI compares a cached expiry with the wall clock
pub async fn credential_process(args: ProcessArgs) -> Result<(), Error> {
    let client = Client::new(&args.client)?;
    let cache = cache_path(&client, &args.target);
    if let (Some(path), false) = (&cache, args.no_cache)
        && let Ok(text) = std::fs::read(path)
        && let Ok(cached) = serde_json::from_slice::<Value>(&text)
        && still_good(&cached, OffsetDateTime::now_utc())
    {
        println!("{cached}");
        return Ok(());
    }
    let c = fetch(&client, &args.target, false).await?;
    let out = process_json(&c);
    if let Some(path) = cache
        && let Err(e) = write_private(&path, out.to_string().as_bytes())
    {
        eprintln!("cooper: could not cache the credentials: {e}");
    }
    println!("{out}");
    Ok(())
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Print the server's JSON.
    #[arg(long)]
    json: bool,
}

pub async fn targets(args: ListArgs) -> Result<(), Error> {
    let client = Client::new(&args.client)?;
    let answer = client.call(Method::GET, "/v1/targets", None).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    let targets = answer["targets"].as_array().cloned().unwrap_or_default();
    if targets.is_empty() {
        eprintln!("No targets: nothing is granted to you yet.");
    }
    for t in targets {
        let mut notes = Vec::new();
        if t["high_security"] == true {
            notes.push("needs a code");
        }
        if t["requires_approval"] == true {
            notes.push("needs approval");
        }
        println!(
            "{:<32} {:<14} {:<15} level {:<5} {}",
            field(&t, "name"),
            field(&t, "account_id"),
            field(&t, "kind"),
            t["level"],
            notes.join(", ")
        );
    }
    Ok(())
}

pub async fn whoami(args: ListArgs) -> Result<(), Error> {
    let client = Client::new(&args.client)?;
    let me = client.call(Method::GET, "/v1/whoami", None).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&me)?);
        return Ok(());
    }
    println!(
        "{} ({})",
        field(&me, "user"),
        field(&me, "authenticated_by")
    );
    let groups: Vec<&str> = me["groups"]
        .as_array()
        .map(|g| g.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    println!(
        "groups: {}",
        if groups.is_empty() {
            "none".to_owned()
        } else {
            groups.join(", ")
        }
    );
    if !me["admin"].is_null() {
        println!("admin: {}", me["admin"]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_without_keys_is_an_error_not_empty_exports() {
        let full =
            json!({"access_key_id": "ASIA1", "secret_access_key": "s", "session_token": "t"});
        assert!(has_keys(&full).is_ok());
        let mut partial = full.clone();
        partial["session_token"] = Value::Null;
        let Err(error) = has_keys(&partial) else {
            panic!("a missing session token is refused");
        };
        assert_eq!(
            error.to_string(),
            "the server's answer has no session_token"
        );
    }

    #[test]
    fn two_identities_never_share_a_cache_file() {
        let args = |token: &str| ClientArgs {
            endpoint: Some("http://127.0.0.1:8080".into()),
            token: Some(token.into()),
            profile: None,
        };
        let target = TargetArgs {
            target: "prod".into(),
            duration: None,
            totp: None,
            approver: None,
            approval_id: None,
        };
        let path = |token: &str| cache_path(&Client::new(&args(token)).unwrap(), &target);
        assert_eq!(path("cooper_alice"), path("cooper_alice"));
        assert_ne!(path("cooper_alice"), path("cooper_bob"));
        let named = path("cooper_alice").unwrap();
        assert!(!named.to_string_lossy().contains("alice"), "{named:?}");
    }
}
