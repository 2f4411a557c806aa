//! Credentials where people use them: `cooper get` (shell exports, env, ini, JSON),
//! `cooper credential-process` (the AWS CLI and SDKs' `credential_process`, cached),
//! `cooper exec` (a command with the credentials in its environment), `cooper targets`, `cooper whoami`.

use std::path::PathBuf;
use std::process::ExitCode;

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

#[derive(Debug, Args)]
pub struct TargetArgs {
    /// The target to become.
    pub target: String,
    /// Session length, in seconds (the target's limits apply).
    #[arg(long)]
    pub duration: Option<u64>,
    /// A fresh code, for a high-security target (asked for when needed on a terminal).
    #[arg(long)]
    pub totp: Option<String>,
}

/// Asks cooper for credentials; a high-security target on a terminal gets asked for a code.
async fn fetch(client: &Client, target: &TargetArgs, interactive: bool) -> Result<Value, Error> {
    let mut body = json!({ "target": target.target });
    if let Some(d) = target.duration {
        body["duration_seconds"] = json!(d);
    }
    if let Some(code) = &target.totp {
        body["totp"] = json!(code);
    }
    let credentials = match client
        .call(Method::POST, "/v1/credentials", Some(&body))
        .await
    {
        Err(e) if e.code() == Some("totp_required") && interactive => {
            let code = ask(&format!("Code for {}: ", target.target), false)?;
            body["totp"] = json!(code.expose_secret());
            client
                .call(Method::POST, "/v1/credentials", Some(&body))
                .await?
        }
        other => other?,
    };
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

fn env_pairs(c: &Value) -> [(&'static str, &str); 4] {
    [
        ("AWS_ACCESS_KEY_ID", field(c, "access_key_id")),
        ("AWS_SECRET_ACCESS_KEY", field(c, "secret_access_key")),
        ("AWS_SESSION_TOKEN", field(c, "session_token")),
        ("AWS_CREDENTIAL_EXPIRATION", field(c, "expiration")),
    ]
}

/// Single-quoted for POSIX shells.
fn shell_quote(value: &str) -> String {
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

fn cache_path(profile: &str, endpoint: &str, target: &TargetArgs) -> Option<PathBuf> {
    let key = format!(
        "{profile}|{endpoint}|{}|{}",
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
    let cache = cache_path(&client.profile, client.endpoint(), &args.target);
    if let (Some(path), false) = (&cache, args.no_cache)
        && let Ok(text) = std::fs::read(path)
        && let Ok(cached) = serde_json::from_slice::<Value>(&text)
        && still_good(&cached, OffsetDateTime::now_utc())
    {
        println!("{cached}");
        return Ok(());
    }
    let c = fetch(&client, &args.target, false)
        .await
        .map_err(|e| match e.code() {
            Some("totp_required") => Error::NeedsCode {
                target: args.target.target.clone(),
            },
            _ => e,
        })?;
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
pub struct ExecArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    target: TargetArgs,
    /// The command and its arguments (after --).
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// Runs the command with the target's credentials in its environment, and exits as it does.
pub async fn exec(args: ExecArgs) -> Result<ExitCode, Error> {
    let client = Client::new(&args.client)?;
    let c = fetch(&client, &args.target, true).await?;
    let (program, rest) = args.command.split_first().ok_or(Error::NoCommand)?;
    let mut command = std::process::Command::new(program);
    command.args(rest);
    // Other credentials in the environment would take precedence in some tools: remove them.
    // The child gets the target's credentials and nothing of cooper's own: not the bearer
    // token that fetched them, nor an enrollment code.
    for name in [
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SECURITY_TOKEN",
        "COOPER_TOKEN",
        "COOPER_ENROLLMENT_CODE",
    ] {
        command.env_remove(name);
    }
    for (k, v) in env_pairs(&c) {
        command.env(k, v);
    }
    command.env("COOPER_TARGET", &args.target.target);
    let status = command.status().map_err(|source| Error::Run {
        program: program.clone(),
        source,
    })?;
    Ok(ExitCode::from(
        status
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .unwrap_or(1),
    ))
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
}
