//! `cooper enroll`, `cooper login`, `cooper password`, `cooper approve`: second factors from the terminal.

use clap::Args;
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::client::{ClientArgs, SavedSession, ask, save_session, segment};
use crate::error::Error;

#[derive(Debug, Args)]
pub struct EnrollArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Enroll a first authenticator with the one-time enrollment code an admin gave you (asked
    /// for, so it stays out of shell history; or COOPER_ENROLLMENT_CODE). Without it, enrolling
    /// needs a signed-in session (`cooper login`), and replacing an authenticator its code.
    #[arg(long)]
    code: bool,
    /// With --code: do not set a password (for people who sign in with the identity provider).
    #[arg(long)]
    no_password: bool,
    /// Print the otpauth URI only, no QR code.
    #[arg(long)]
    no_qr: bool,
}

/// A new password, typed twice.
fn new_password() -> Result<secrecy::SecretString, Error> {
    let first = ask("New password (at least 12 characters): ", true)?;
    let second = ask("Again: ", true)?;
    if first.expose_secret() != second.expose_secret() {
        return Err(Error::PasswordsDiffer);
    }
    Ok(first)
}

/// Shows the QR code to scan, then asks for the app's first code to confirm it (and, with an
/// enrollment code, a first password).
pub async fn enroll(args: EnrollArgs) -> Result<(), Error> {
    let mut client_args = args.client.clone();
    if args.code {
        let code = match std::env::var("COOPER_ENROLLMENT_CODE") {
            Ok(code) if !code.trim().is_empty() => code,
            _ => ask("Enrollment code: ", true)?.expose_secret().to_owned(),
        };
        client_args.token = Some(code.trim().to_owned());
    }
    let client = crate::client::Client::new(&client_args)?;
    let started = match client
        .call(Method::POST, "/v1/totp/enrollment", Some(&json!({})))
        .await
    {
        Err(e) if e.code() == Some("totp_required") => {
            eprintln!(
                "You already have an authenticator: confirm with its current code to replace it."
            );
            let code = ask("Current code: ", false)?;
            client
                .call(
                    Method::POST,
                    "/v1/totp/enrollment",
                    Some(&json!({"totp": code.expose_secret()})),
                )
                .await?
        }
        other => other?,
    };
    let uri = started["otpauth_uri"].as_str().unwrap_or_default();
    if !args.no_qr
        && let Some(qr) = cooper_api::qr::text(uri)
    {
        println!("{qr}");
    }
    println!("Scan the code above with your authenticator app, or add this key by hand:");
    println!("  {}", started["secret"].as_str().unwrap_or_default());
    println!("otpauth URI: {uri}");
    let code = ask("Enter the 6-digit code the app shows: ", false)?;
    let mut confirm = json!({"totp": code.expose_secret()});
    if args.code && !args.no_password {
        confirm["password"] = json!(new_password()?.expose_secret());
    }
    client
        .call(Method::POST, "/v1/totp/enrollment/confirm", Some(&confirm))
        .await?;
    println!(
        "Enrolled: {} now signs in with this authenticator.",
        started["user"].as_str().unwrap_or_default()
    );
    Ok(())
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Your cooper user name (password and code sign-in).
    #[arg(long, env = "COOPER_USER")]
    user: Option<String>,
    /// Sign in with the company's identity provider instead.
    #[command(flatten)]
    oidc: crate::oidc_login::OidcArgs,
    /// Sign in with this SAML identity provider (its name in the deployment's configuration),
    /// in the browser; the session comes back to this terminal.
    #[arg(long, value_name = "PROVIDER")]
    saml: Option<String>,
}

/// Password and code (or the identity provider) for a session token, saved (0600) for the
/// other commands.
pub async fn login(args: LoginArgs) -> Result<(), Error> {
    let client = crate::client::Client::new(&args.client)?;
    let user = args.user.clone().or(client.settings.user.clone());
    let oidc = args.oidc.oidc || (user.is_none() && client.settings.oidc_issuer.is_some());
    if user.is_none() && !oidc && args.saml.is_none() {
        return Err(Error::NoLoginMethod);
    }
    let session = match &user {
        _ if args.saml.is_some() => {
            let provider = args.saml.as_deref().unwrap_or_default();
            crate::saml_login::session(&client, provider, &args.oidc).await?
        }
        Some(user) if !oidc => {
            let password = ask("Password: ", true)?;
            let code = ask("Code: ", false)?;
            client
                .anonymous(
                    Method::POST,
                    "/v1/sessions",
                    Some(&json!({"user": user, "password": password.expose_secret(), "totp": code.expose_secret()})),
                )
                .await?
        }
        _ => {
            let id_token = crate::oidc_login::id_token(&args.oidc, &client.settings).await?;
            client
                .anonymous(
                    Method::POST,
                    "/v1/sessions/oidc",
                    Some(&json!({"id_token": id_token.expose_secret()})),
                )
                .await?
        }
    };
    let saved = SavedSession {
        endpoint: client.endpoint().to_owned(),
        user: session["user"].as_str().unwrap_or_default().to_owned(),
        token: session["token"].as_str().unwrap_or_default().to_owned(),
        expires_at: session["expires_at"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    };
    let path = save_session(&client.profile, &saved)?;
    eprintln!(
        "Logged in as {} until {} (session kept in {}).",
        saved.user,
        saved.expires_at,
        path.display()
    );
    Ok(())
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    #[command(flatten)]
    client: ClientArgs,
}

/// Ends the saved session at cooper (a copy of its token stops working too), then forgets it.
/// A session the server no longer takes (expired, or revoked) is forgotten all the same.
pub async fn logout(args: LogoutArgs) -> Result<(), Error> {
    let client = crate::client::Client::new(&args.client)?;
    let ended = match client.call(Method::POST, "/v1/sessions/logout", None).await {
        Ok(_) => Ok(()),
        // Nothing to end at the server: no session, or one it refuses already.
        Err(Error::NotLoggedIn { .. }) => Ok(()),
        Err(e)
            if matches!(
                e.code(),
                Some("session_revoked" | "token_expired" | "invalid_token")
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    };
    let forgot = crate::client::forget_session(&client.profile)?;
    ended?;
    if forgot {
        eprintln!("Logged out.");
    } else {
        eprintln!("No saved session for this profile.");
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct PasswordArgs {
    #[command(flatten)]
    client: ClientArgs,
}

/// Sets or changes your password (you need your authenticator).
pub async fn password(args: PasswordArgs) -> Result<(), Error> {
    let client = crate::client::Client::new(&args.client)?;
    let first = new_password()?;
    let code = ask("Code: ", false)?;
    client
        .call(
            Method::PUT,
            "/v1/password",
            Some(&json!({"password": first.expose_secret(), "totp": code.expose_secret()})),
        )
        .await?;
    eprintln!("Password set.");
    Ok(())
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The approval request's id.
    id: String,
}

/// Shows a request, then approves it with your code.
pub async fn approve(args: ApproveArgs) -> Result<(), Error> {
    let client = crate::client::Client::new(&args.client)?;
    let path = format!("/v1/approvals/{}", segment(&args.id));
    let request: Value = client.call(Method::GET, &path, None).await?;
    eprintln!(
        "{} asks for {}: {:?} (status {}, expires {})",
        request["requester"].as_str().unwrap_or("?"),
        request["target"].as_str().unwrap_or("?"),
        request["reason"].as_str().unwrap_or(""),
        request["status"].as_str().unwrap_or("?"),
        request["expires_at"].as_str().unwrap_or("?"),
    );
    let code = ask("Your code to approve: ", false)?;
    let approved = client
        .call(
            Method::POST,
            &format!("{path}/approve"),
            Some(&json!({"totp": code.expose_secret()})),
        )
        .await?;
    println!(
        "Approved: {} may now use approval {}.",
        approved["requester"].as_str().unwrap_or("?"),
        args.id
    );
    Ok(())
}
