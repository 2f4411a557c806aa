//! `cooper doctor`: what stands between you and credentials, checked one by one: the config
//! file, the files the CLI keeps (owner-only), the endpoint, the clock against the server's,
//! and the session (valid, and for how long).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use clap::Args;
use reqwest::Method;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::{Rfc2822, Rfc3339};

use crate::client::{Client, ClientArgs, config_dir, saved_session, session_path};
use crate::error::Error;

/// More clock skew than this, and TOTP codes and token times start to fail.
const SKEW_WARN_SECONDS: i64 = 30;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Print the checks as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Serialize)]
struct Check {
    check: &'static str,
    status: Status,
    detail: String,
}

fn check(check: &'static str, status: Status, detail: impl Into<String>) -> Check {
    Check {
        check,
        status,
        detail: detail.into(),
    }
}

/// Owner-only: nothing the CLI keeps may be readable (or writable) by others.
fn private(path: &Path) -> Option<String> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "{} is {mode:o}: others may read it; chmod go-rwx it",
            path.display()
        )
    })
}

fn files(checks: &mut Vec<Check>, profile: &str) {
    let Some(dir) = config_dir() else {
        checks.push(check(
            "files",
            Status::Warn,
            "no home directory: nothing is kept",
        ));
        return;
    };
    let config = dir.join("config.toml");
    checks.push(match crate::client::Config::load() {
        Ok(_) if config.exists() => check("config", Status::Ok, config.display().to_string()),
        Ok(_) => check(
            "config",
            Status::Ok,
            format!("no {} (defaults apply)", config.display()),
        ),
        Err(e) => check("config", Status::Fail, crate::error::report(&e)),
    });
    if let Ok(mode) = std::fs::metadata(&config).map(|m| m.permissions().mode() & 0o777)
        && mode & 0o022 != 0
    {
        checks.push(check(
            "config",
            Status::Warn,
            format!(
                "{} is {mode:o}: others may change where you send your token",
                config.display()
            ),
        ));
    }
    let mut open = Vec::new();
    for sub in ["sessions", "cache"] {
        let sub = dir.join(sub);
        // The folders may be listable; what is in them may not be readable.
        if let Ok(entries) = std::fs::read_dir(&sub) {
            for entry in entries.flatten() {
                open.extend(private(&entry.path()));
            }
        }
    }
    if let Some(session) = session_path(profile) {
        open.extend(private(&session));
    }
    open.dedup();
    checks.push(if open.is_empty() {
        check(
            "kept files",
            Status::Ok,
            format!("owner-only under {}", dir.display()),
        )
    } else {
        check("kept files", Status::Fail, open.join("; "))
    });
}

#[allow(clippy::disallowed_methods)] // the CLI's own clock, compared with the server's
fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

async fn endpoint(checks: &mut Vec<Check>, client: &Client) -> bool {
    match client.probe().await {
        Ok((status, date, took)) if status.is_success() => {
            checks.push(check(
                "endpoint",
                Status::Ok,
                format!("{} answers ({} ms)", client.endpoint(), took.as_millis()),
            ));
            let server = date.and_then(|d| OffsetDateTime::parse(&d, &Rfc2822).ok());
            checks.push(match server {
                Some(server) => {
                    let skew = (now() - server).whole_seconds();
                    let status = if skew.abs() > SKEW_WARN_SECONDS {
                        Status::Warn
                    } else {
                        Status::Ok
                    };
                    check(
                        "clock",
                        status,
                        format!("{skew:+} s against the server's (codes allow 30 s)"),
                    )
                }
                None => check("clock", Status::Warn, "the server sent no Date"),
            });
            true
        }
        Ok((status, _, _)) => {
            checks.push(check(
                "endpoint",
                Status::Fail,
                format!("{} answers HTTP {status}: is it cooper?", client.endpoint()),
            ));
            false
        }
        Err(e) => {
            checks.push(check("endpoint", Status::Fail, crate::error::report(&e)));
            false
        }
    }
}

async fn session(checks: &mut Vec<Check>, client: &Client) {
    if !client.has_token() {
        checks.push(check(
            "session",
            Status::Warn,
            "none: `cooper login` (or --token / COOPER_TOKEN for a script)",
        ));
        return;
    }
    if let Some(saved) = saved_session(&client.profile, client.endpoint())
        && let Ok(until) = OffsetDateTime::parse(&saved.expires_at, &Rfc3339)
    {
        let left = (until - now()).whole_minutes();
        checks.push(if left > 0 {
            check(
                "saved session",
                Status::Ok,
                format!(
                    "{} until {} ({left} min left)",
                    saved.user, saved.expires_at
                ),
            )
        } else {
            check(
                "saved session",
                Status::Fail,
                format!(
                    "{}'s session ended at {}: `cooper login`",
                    saved.user, saved.expires_at
                ),
            )
        });
    }
    checks.push(match client.call(Method::GET, "/v1/whoami", None).await {
        Ok(me) => check(
            "session",
            Status::Ok,
            format!(
                "cooper takes it: {} ({})",
                me["user"].as_str().unwrap_or("?"),
                me["authenticated_by"].as_str().unwrap_or("?")
            ),
        ),
        Err(e) => check("session", Status::Fail, crate::error::report(&e)),
    });
}

pub async fn run(args: DoctorArgs) -> Result<(), Error> {
    let client = Client::new(&args.client)?;
    let mut checks = Vec::new();
    files(&mut checks, &client.profile);
    if endpoint(&mut checks, &client).await {
        session(&mut checks, &client).await;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&checks)?);
    } else {
        for c in &checks {
            let mark = match c.status {
                Status::Ok => "ok  ",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
            };
            println!("{mark}  {:<14} {}", c.check, c.detail);
        }
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    if failed > 0 {
        return Err(Error::Unhealthy(failed));
    }
    Ok(())
}
