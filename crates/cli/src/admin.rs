//! `cooper admin`: the admin API from the terminal. Answers are printed as JSON; an update
//! sends the version it read (`--if-match`, or the current one, fetched first); a sensitive
//! operation asks for your code when the server wants one (or takes `--totp`).

use clap::{Args, Subcommand};
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::client::{Client, ClientArgs, ask, query, segment};
use crate::error::Error;

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// A fresh TOTP code, for sensitive operations (otherwise asked for when needed).
    #[arg(long, global = true)]
    totp: Option<String>,
    #[command(subcommand)]
    resource: Resource,
}

/// A JSON body: inline, or `@file`.
#[derive(Debug, Args)]
struct Body {
    /// The JSON body, or @FILE to read it from a file.
    #[arg(long = "json", value_name = "JSON|@FILE")]
    json: String,
}

impl Body {
    fn value(&self) -> Result<Value, Error> {
        let text = match self.json.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
                path: path.into(),
                source,
            })?,
            None => self.json.clone(),
        };
        serde_json::from_str(&text).map_err(Error::BadJson)
    }
}

#[derive(Debug, Subcommand)]
enum Crud {
    /// List them (a page at a time: --limit, --cursor).
    List {
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        limit: Option<u16>,
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show one, with its version.
    Get { id: String },
    /// Create one from a JSON body.
    Create(Body),
    /// Replace one with a JSON body; the version is --if-match or the current one.
    Update {
        id: String,
        #[command(flatten)]
        body: Body,
        #[arg(long)]
        if_match: Option<String>,
    },
    /// Delete one; --cascade also removes what depends on it.
    Delete {
        id: String,
        #[arg(long)]
        cascade: bool,
    },
}

#[derive(Debug, Subcommand)]
enum Resource {
    /// AWS accounts.
    Accounts {
        #[command(subcommand)]
        verb: Crud,
    },
    /// Targets (roles and federated users).
    Targets {
        #[command(subcommand)]
        verb: Crud,
    },
    /// Users; also `reset-totp`, `enrollment-code`, `tokens`, `issue-token`.
    Users {
        #[command(subcommand)]
        verb: UserVerb,
    },
    /// Groups; also `add-member`, `remove-member`.
    Groups {
        #[command(subcommand)]
        verb: GroupVerb,
    },
    /// Grants: to a user or group, of a target or of an account up to a level.
    Grants {
        #[command(subcommand)]
        verb: GrantVerb,
    },
    /// Admin grants: universal, or per account.
    Admins {
        #[command(subcommand)]
        verb: GrantVerb,
    },
    /// Revoke an API token by id.
    RevokeToken { id: String },
    /// End the AWS sessions cooper issued a person (all, or on one account or target): a
    /// `cooper-revocations` policy denies their sessions issued until now.
    RevokeSessions {
        user: String,
        #[arg(long, conflicts_with = "target")]
        account: Option<String>,
        #[arg(long)]
        target: Option<String>,
        /// Also end the person's cooper sessions (they sign in again).
        #[arg(long)]
        cooper_sessions: bool,
    },
    /// Search the audit trail: who holds a key, what a user did, what happened in an account.
    Audit {
        #[arg(long, conflicts_with_all = ["user", "account"])]
        access_key_id: Option<String>,
        #[arg(long, conflicts_with = "account")]
        user: Option<String>,
        #[arg(long)]
        account: Option<String>,
        /// Newest first.
        #[arg(long)]
        desc: bool,
        #[arg(long)]
        limit: Option<u16>,
        #[arg(long)]
        cursor: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum UserVerb {
    #[command(flatten)]
    Crud(Crud),
    /// Remove a user's authenticator so they can enroll again.
    ResetTotp { name: String },
    /// Disable a user; with --revoke-sessions, also end their cooper sessions and every AWS
    /// session cooper issued them ("they left": one command).
    Disable {
        name: String,
        #[arg(long)]
        revoke_sessions: bool,
    },
    /// End a user's cooper sessions (they sign in again).
    EndSessions { name: String },
    /// List a user's API tokens.
    Tokens { name: String },
    /// Issue a one-time code with which the user enrolls a first authenticator (printed once).
    EnrollmentCode {
        name: String,
        /// How long it stays good (1 to 336 hours; default 72).
        #[arg(long)]
        hours: Option<i64>,
    },
    /// Issue an API token for a user (printed once).
    IssueToken {
        name: String,
        #[arg(long)]
        label: Option<String>,
        #[arg(long)]
        days: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
enum GroupVerb {
    #[command(flatten)]
    Crud(Crud),
    AddMember {
        group: String,
        user: String,
    },
    RemoveMember {
        group: String,
        user: String,
    },
}

#[derive(Debug, Subcommand)]
enum GrantVerb {
    /// By --account, or by --user / --group.
    List {
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        group: Option<String>,
    },
    Create(Body),
    /// Name the grant: --user or --group, and --target or --account.
    Delete {
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        group: Option<String>,
        #[arg(long)]
        target: Option<String>,
        #[arg(long)]
        account: Option<String>,
    },
}

struct Session<'a> {
    client: Client,
    totp: Option<String>,
    _args: &'a AdminArgs,
}

impl Session<'_> {
    /// Sends a request; if the server wants a fresh code, asks for one and sends it again.
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        mut headers: Vec<(&str, String)>,
    ) -> Result<(Value, Option<String>), Error> {
        if let Some(code) = &self.totp {
            headers.push(("x-cooper-totp", code.clone()));
        }
        match self
            .client
            .call_with(method.clone(), path, body, &headers)
            .await
        {
            Err(e) if e.code() == Some("totp_required") && self.totp.is_none() => {
                eprintln!("{e}");
                let code = ask("Your code: ", false)?;
                self.totp = Some(code.expose_secret().to_owned());
                headers.push(("x-cooper-totp", code.expose_secret().to_owned()));
                self.client.call_with(method, path, body, &headers).await
            }
            other => other,
        }
    }

    async fn crud(&mut self, base: &str, verb: &Crud) -> Result<Value, Error> {
        Ok(match verb {
            Crud::List {
                account,
                limit,
                cursor,
            } => {
                let q = query(&[
                    ("account", account.clone()),
                    ("limit", limit.map(|l| l.to_string())),
                    ("cursor", cursor.clone()),
                ]);
                self.send(Method::GET, &format!("{base}{q}"), None, vec![])
                    .await?
                    .0
            }
            Crud::Get { id } => {
                self.send(
                    Method::GET,
                    &format!("{base}/{}", segment(id)),
                    None,
                    vec![],
                )
                .await?
                .0
            }
            Crud::Create(body) => {
                self.send(Method::POST, base, Some(&body.value()?), vec![])
                    .await?
                    .0
            }
            Crud::Update { id, body, if_match } => {
                let path = format!("{base}/{}", segment(id));
                let version = match if_match {
                    Some(v) => format!("\"{}\"", v.trim_matches('"')),
                    None => self
                        .send(Method::GET, &path, None, vec![])
                        .await?
                        .1
                        .ok_or(Error::NoVersion)?,
                };
                self.send(
                    Method::PUT,
                    &path,
                    Some(&body.value()?),
                    vec![("if-match", version)],
                )
                .await?
                .0
            }
            Crud::Delete { id, cascade } => {
                let q = if *cascade { "?cascade=true" } else { "" };
                self.send(
                    Method::DELETE,
                    &format!("{base}/{}{q}", segment(id)),
                    None,
                    vec![],
                )
                .await?
                .0
            }
        })
    }

    async fn grants(&mut self, base: &str, verb: &GrantVerb) -> Result<Value, Error> {
        Ok(match verb {
            GrantVerb::List {
                account,
                user,
                group,
            } => {
                let q = query(&[
                    ("account", account.clone()),
                    ("user", user.clone()),
                    ("group", group.clone()),
                ]);
                self.send(Method::GET, &format!("{base}{q}"), None, vec![])
                    .await?
                    .0
            }
            GrantVerb::Create(body) => {
                self.send(Method::POST, base, Some(&body.value()?), vec![])
                    .await?
                    .0
            }
            GrantVerb::Delete {
                user,
                group,
                target,
                account,
            } => {
                let q = query(&[
                    ("user", user.clone()),
                    ("group", group.clone()),
                    ("target", target.clone()),
                    ("account", account.clone()),
                ]);
                self.send(Method::DELETE, &format!("{base}{q}"), None, vec![])
                    .await?
                    .0
            }
        })
    }
}

pub async fn run(args: AdminArgs) -> Result<(), Error> {
    let mut s = Session {
        client: Client::new(&args.client)?,
        totp: args.totp.clone(),
        _args: &args,
    };
    let out = match &args.resource {
        Resource::Accounts { verb } => s.crud("/v1/admin/accounts", verb).await?,
        Resource::Targets { verb } => s.crud("/v1/admin/targets", verb).await?,
        Resource::Users { verb } => match verb {
            UserVerb::Crud(c) => s.crud("/v1/admin/users", c).await?,
            UserVerb::ResetTotp { name } => {
                s.send(
                    Method::POST,
                    &format!("/v1/admin/users/{}/totp/reset", segment(name)),
                    None,
                    vec![],
                )
                .await?
                .0
            }
            UserVerb::Disable {
                name,
                revoke_sessions,
            } => {
                let path = format!("/v1/admin/users/{}", segment(name));
                let (current, etag) = s.send(Method::GET, &path, None, vec![]).await?;
                // The user as it is (the fields an update takes), disabled.
                let mut user = json!({});
                for field in ["name", "expires_at", "display_name"] {
                    user[field] = current[field].clone();
                }
                user["enabled"] = json!(false);
                let q = if *revoke_sessions {
                    "?revoke_sessions=true"
                } else {
                    ""
                };
                let headers = etag.into_iter().map(|e| ("if-match", e)).collect();
                let out = s
                    .send(Method::PUT, &format!("{path}{q}"), Some(&user), headers)
                    .await?
                    .0;
                complete(out, &["revocation"])?
            }
            UserVerb::EndSessions { name } => {
                s.send(
                    Method::POST,
                    &format!("/v1/admin/users/{}/sessions/revoke", segment(name)),
                    None,
                    vec![],
                )
                .await?
                .0
            }
            UserVerb::Tokens { name } => {
                s.send(
                    Method::GET,
                    &format!("/v1/admin/users/{}/tokens", segment(name)),
                    None,
                    vec![],
                )
                .await?
                .0
            }
            UserVerb::EnrollmentCode { name, hours } => {
                s.send(
                    Method::POST,
                    &format!("/v1/admin/users/{}/enrollment-code", segment(name)),
                    Some(&json!({ "hours": hours })),
                    vec![],
                )
                .await?
                .0
            }
            UserVerb::IssueToken { name, label, days } => {
                let body = json!({"label": label, "days": days});
                s.send(
                    Method::POST,
                    &format!("/v1/admin/users/{}/tokens", segment(name)),
                    Some(&body),
                    vec![],
                )
                .await?
                .0
            }
        },
        Resource::Groups { verb } => match verb {
            GroupVerb::Crud(c) => s.crud("/v1/admin/groups", c).await?,
            GroupVerb::AddMember { group, user } => {
                s.send(
                    Method::PUT,
                    &format!(
                        "/v1/admin/groups/{}/members/{}",
                        segment(group),
                        segment(user)
                    ),
                    None,
                    vec![],
                )
                .await?
                .0
            }
            GroupVerb::RemoveMember { group, user } => {
                s.send(
                    Method::DELETE,
                    &format!(
                        "/v1/admin/groups/{}/members/{}",
                        segment(group),
                        segment(user)
                    ),
                    None,
                    vec![],
                )
                .await?
                .0
            }
        },
        Resource::Grants { verb } => s.grants("/v1/admin/grants", verb).await?,
        Resource::Admins { verb } => s.grants("/v1/admin/admins", verb).await?,
        Resource::RevokeToken { id } => {
            s.send(
                Method::DELETE,
                &format!("/v1/admin/tokens/{}", segment(id)),
                None,
                vec![],
            )
            .await?
            .0
        }
        Resource::RevokeSessions {
            user,
            account,
            target,
            cooper_sessions,
        } => {
            if *cooper_sessions {
                s.send(
                    Method::POST,
                    &format!("/v1/admin/users/{}/sessions/revoke", segment(user)),
                    None,
                    vec![],
                )
                .await?;
            }
            let body = json!({"user": user, "account": account, "target": target});
            let out = s
                .send(Method::POST, "/v1/admin/revocations", Some(&body), vec![])
                .await?
                .0;
            complete(out, &[])?
        }
        Resource::Audit {
            access_key_id,
            user,
            account,
            desc,
            limit,
            cursor,
        } => {
            let q = query(&[
                ("access_key_id", access_key_id.clone()),
                ("user", user.clone()),
                ("account", account.clone()),
                ("order", desc.then(|| "desc".to_owned())),
                ("limit", limit.map(|l| l.to_string())),
                ("cursor", cursor.clone()),
            ]);
            s.send(Method::GET, &format!("/v1/admin/audit{q}"), None, vec![])
                .await?
                .0
        }
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// Prints a revocation's answer and fails when it is not written everywhere (scripts see it).
fn complete(out: Value, at: &[&str]) -> Result<Value, Error> {
    let revocation = at.iter().try_fold(&out, |v, key| v.get(*key));
    if revocation.is_some_and(|r| r["complete"] == json!(false)) {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Err(Error::RevocationIncomplete);
    }
    Ok(out)
}
