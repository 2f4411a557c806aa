//! The CLI's one error type: what went wrong, in words a person acts on, with the typed cause
//! kept as its source. No variant holds a secret (tokens, passwords, codes, keys, links).

use std::net::SocketAddr;
use std::path::PathBuf;

use cooper_api::state::StartupError;
use cooper_aws::directory::WriteError;
use cooper_aws::provisioning::ProvisionError;
use cooper_core::admin::AdminError;
use cooper_core::clock::EntropyUnavailable;
use cooper_core::names::InvalidValue;
use cooper_core::ports::UpstreamError;
use reqwest::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // cooper's API
    /// The server answered with its error: its code and the request id to quote.
    #[error("{message} ({code}, HTTP {}, request {request_id})", status.as_u16())]
    Server {
        status: StatusCode,
        code: String,
        message: String,
        request_id: String,
    },
    /// The request did not get an answer (the error carries no URL).
    #[error("cannot reach cooper")]
    Unreachable(#[source] reqwest::Error),
    #[error("HTTP {status}: not a cooper answer")]
    NotCooper { status: StatusCode },
    #[error("the server's answer has no {0}")]
    IncompleteAnswer(&'static str),
    #[error("the server sent no version to update against")]
    NoVersion,
    #[error("no token for {endpoint}: run `cooper login`, or pass --token / COOPER_TOKEN")]
    NotLoggedIn { endpoint: String },
    #[error("cannot set up an HTTP client")]
    HttpClient(#[source] reqwest::Error),

    // The CLI's own files and settings
    #[error("no profile {name} in {path}")]
    UnknownProfile { name: String, path: String },
    /// The config file does not parse: the parser's message and the line, never the text of the
    /// file (`toml::de::Error` keeps the whole document, so it is not kept here).
    #[error("{}:{line}: {message}", path.display())]
    ConfigSyntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("cannot read {}", path.display())]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}", path.display())]
    WriteFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no home directory to keep the session in")]
    NoHome,

    // What the person typed
    #[error("cannot read from the terminal")]
    Terminal(#[source] std::io::Error),
    #[error("nothing given for {0}")]
    NothingGiven(String),
    #[error("the two passwords differ")]
    PasswordsDiffer,
    #[error("give --user (password and code), --oidc or --saml PROVIDER (your identity provider)")]
    NoLoginMethod,
    #[error(
        "the revocation is not written on every holder (see `written: false` above); run it again"
    )]
    RevocationIncomplete,
    #[error("--json is not JSON")]
    BadJson(#[source] serde_json::Error),
    #[error(
        "{target} needs a fresh code each time, which credential_process cannot ask for: use `cooper exec {target} -- ...` or `cooper get {target}` on a terminal"
    )]
    NeedsCode { target: String },
    #[error(
        "{target} needs a second person's approval, which credential_process cannot ask for: run `cooper approvals request {target} --reason ...`, then, once approved, `cooper exec {target} --approval-id ID -- ...` (or `--approver USER` with them next to you)"
    )]
    NeedsApproval { target: String },
    #[error("give the command to run after --")]
    NoCommand,
    #[error("{0} check(s) failed")]
    Unhealthy(usize),
    #[error("key rotation failed: {0}")]
    Rotation(String),
    #[error("cannot serve credentials on 127.0.0.1")]
    Endpoint(#[source] std::io::Error),
    #[error("the operating system gave no randomness")]
    NoRandomness,
    #[error("cannot run {program}")]
    Run {
        program: String,
        source: std::io::Error,
    },
    /// Only the kind: the launcher's error names its command line, which holds the sign-in
    /// link (a secret).
    #[error("cannot open a browser ({0}): --print shows the link instead")]
    Browser(std::io::ErrorKind),
    #[error(transparent)]
    Invalid(#[from] InvalidValue),

    // The deployment, for the operator commands
    /// An admin use case said no (the operator commands run them).
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error(transparent)]
    Saml(#[from] cooper_api::saml::SamlConfigError),
    #[error(transparent)]
    Entropy(#[from] EntropyUnavailable),
    #[error("cannot format a date")]
    TimeFormat(#[from] time::error::Format),
    #[error("cannot write JSON")]
    Json(#[from] serde_json::Error),
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the local server stopped")]
    Serve(#[source] std::io::Error),

    // The identity provider, for `cooper login --oidc`
    #[error("no client id: give --client-id, or oidc_client_id in the profile")]
    NoClientId,
    #[error("no identity provider: give --issuer, or oidc_issuer in the profile")]
    NoIssuer,
    #[error("cannot reach the identity provider")]
    ProviderUnreachable(#[source] reqwest::Error),
    #[error("{issuer} has no usable OpenID configuration: {reason}")]
    Discovery { issuer: String, reason: String },
    #[error("{issuer} has no usable OpenID configuration: it is not JSON")]
    DiscoveryJson {
        issuer: String,
        source: serde_json::Error,
    },
    #[error("the {what} is not a URL")]
    BadUrl {
        what: &'static str,
        source: oauth2::url::ParseError,
    },
    #[error("the provider offers no device authorization")]
    NoDeviceFlow,
    /// The provider's OAuth error code, and its description when it gave one.
    #[error("the provider refused the sign-in: {error}{}", description.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    ProviderRefused {
        error: String,
        description: Option<String>,
    },
    /// An answer that is not what OAuth specifies; the answer itself is not kept (it may hold
    /// tokens).
    #[error("the identity provider's answer is unusable: {0}")]
    ProviderAnswer(String),
    #[error("cannot listen on 127.0.0.1 for the provider's redirect")]
    Loopback(#[source] std::io::Error),
    #[error("the sign-in was not completed in time")]
    SignInTimedOut,
    #[error("the sign-in came back with another state: refused")]
    StateMismatch,
    #[error("the provider's ID token is not for this sign-in (its nonce differs): refused")]
    NonceMismatch,
    #[error("the provider sent no code")]
    NoCode,
    #[error("the provider answered without an ID token (is the openid scope allowed?)")]
    NoIdToken,
}

impl Error {
    /// The server's error code, when cooper answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Server { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// The error and its causes on one line, for people: `cannot reach cooper: error sending
/// request: ...`. A cause whose text the line already holds is not repeated.
pub fn report(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let text = e.to_string();
        if !text.is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = e.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_names_the_causes_once() {
        // GIVEN an error whose source is an I/O error
        let error = Error::ReadFile {
            path: PathBuf::from("/tmp/body.json"),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        };
        // WHEN it is reported THEN the line names the file and the cause
        assert_eq!(report(&error), "cannot read /tmp/body.json: no such file");

        // GIVEN a transparent variant THEN its message is not repeated by its source
        let error = Error::from(InvalidValue::new("level", "must be 0 to 1000"));
        assert_eq!(report(&error), "level: must be 0 to 1000");
    }

    #[test]
    fn server_errors_carry_the_code_and_the_request_id() {
        let error = Error::Server {
            status: StatusCode::FORBIDDEN,
            code: "not_granted".into(),
            message: "nothing grants you this target".into(),
            request_id: "r-1".into(),
        };
        assert_eq!(error.code(), Some("not_granted"));
        assert_eq!(
            report(&error),
            "nothing grants you this target (not_granted, HTTP 403, request r-1)"
        );
    }
}
