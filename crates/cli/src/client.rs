//! Talking to a cooper deployment: the endpoint, the caller's bearer token, and errors a person
//! understands (the server's code and message, and the request id to quote).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;

#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// The cooper API (default: the profile's, else http://127.0.0.1:8080).
    #[arg(long, global = true, env = "COOPER_ENDPOINT")]
    pub endpoint: Option<String>,
    /// A bearer token (an API token or a session); by default, the session `cooper login` saved.
    #[arg(long, global = true, env = "COOPER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The profile (a deployment) in ~/.config/cooper/config.toml.
    #[arg(long, global = true, env = "COOPER_PROFILE")]
    pub profile: Option<String>,
}

impl ClientArgs {
    /// The profile in use and its settings: `--profile`, else the config's `default_profile`,
    /// else `default`.
    pub fn resolve(&self) -> Result<(String, Profile), Error> {
        let config = Config::load()?;
        let name = self
            .profile
            .clone()
            .or(config.default_profile.clone())
            .unwrap_or_else(|| "default".to_owned());
        if self.profile.is_some() && !config.profiles.contains_key(&name) {
            return Err(Error::UnknownProfile {
                name,
                path: Config::path_text(),
            });
        }
        let profile = config.profiles.get(&name).cloned().unwrap_or_default();
        Ok((name, profile))
    }
}

/// One deployment of cooper, as the CLI knows it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub endpoint: Option<String>,
    /// For `cooper login --oidc`.
    pub oidc_issuer: Option<String>,
    pub oidc_client_id: Option<String>,
    /// For `cooper login` with a password.
    pub user: Option<String>,
}

/// `~/.config/cooper/config.toml`:
///
/// ```toml
/// default_profile = "prod"
/// [profiles.prod]
/// endpoint = "https://abc123.execute-api.us-east-1.amazonaws.com"
/// oidc_issuer = "https://accounts.google.com"
/// oidc_client_id = "1234.apps.googleusercontent.com"
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub default_profile: Option<String>,
    #[serde(default)]
    pub profiles: std::collections::BTreeMap<String, Profile>,
}

impl Config {
    fn path() -> Option<PathBuf> {
        config_dir().map(|d| d.join("config.toml"))
    }

    fn path_text() -> String {
        Self::path().map_or_else(|| "config.toml".to_owned(), |p| p.display().to_string())
    }

    pub fn load() -> Result<Self, Error> {
        let Some(path) = Self::path() else {
            return Ok(Self::default());
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(Error::ReadFile { path, source }),
        }
    }

    /// The error names the line and what is wrong, but never repeats the file's text.
    fn parse(text: &str, path: &Path) -> Result<Self, Error> {
        toml::from_str(text).map_err(|e| Error::ConfigSyntax {
            path: path.to_owned(),
            line: e.span().map_or(1, |span| {
                text.get(..span.start)
                    .map_or(1, |before| before.matches('\n').count() + 1)
            }),
            message: e.message().to_owned(),
        })
    }
}

pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:8080";

/// A session saved by `cooper login`, for one endpoint.
#[derive(Serialize, Deserialize)]
pub struct SavedSession {
    pub endpoint: String,
    pub user: String,
    pub token: String,
    pub expires_at: String,
}

/// Where the CLI keeps its files: `COOPER_CONFIG_DIR`, else `$XDG_CONFIG_HOME/cooper`, else
/// `~/.config/cooper`.
pub fn config_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("COOPER_CONFIG_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME") {
        return Some(PathBuf::from(dir).join("cooper"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config/cooper"))
}

/// A profile's name as part of a file name: letters, digits, `-` and `_` only, so that no name
/// in the config file can lead a session or cache file out of its folder.
pub fn file_safe(profile: &str) -> String {
    profile
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Sessions are kept per profile: `sessions/<profile>.json`.
pub fn session_path(profile: &str) -> Option<PathBuf> {
    let safe = file_safe(profile);
    config_dir().map(|d| d.join("sessions").join(format!("{safe}.json")))
}

/// Writes `contents` readable by the owner only (0600), replacing the file atomically.
pub fn write_private(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(tmp, path)
}

pub fn save_session(profile: &str, session: &SavedSession) -> Result<PathBuf, Error> {
    let path = session_path(profile).ok_or(Error::NoHome)?;
    let json = serde_json::to_vec_pretty(session)?;
    match write_private(&path, &json) {
        Ok(()) => Ok(path),
        Err(source) => Err(Error::WriteFile { path, source }),
    }
}

/// Deletes the saved session of `profile`; whether there was one.
pub fn forget_session(profile: &str) -> Result<bool, Error> {
    let path = session_path(profile).ok_or(Error::NoHome)?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(Error::WriteFile { path, source }),
    }
}

/// The session `cooper login` saved for this profile and endpoint, if any.
pub fn saved_session(profile: &str, endpoint: &str) -> Option<SavedSession> {
    let text = std::fs::read(session_path(profile)?).ok()?;
    let session: SavedSession = serde_json::from_slice(&text).ok()?;
    (session.endpoint == endpoint).then_some(session)
}

fn saved_token(profile: &str, endpoint: &str) -> Option<SecretString> {
    saved_session(profile, endpoint).map(|s| SecretString::from(s.token))
}

pub struct Client {
    http: reqwest::Client,
    endpoint: String,
    token: Option<SecretString>,
    pub profile: String,
    pub settings: Profile,
}

impl Client {
    pub fn new(args: &ClientArgs) -> Result<Self, Error> {
        let (profile, settings) = args.resolve()?;
        let endpoint = args
            .endpoint
            .clone()
            .or(settings.endpoint.clone())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned())
            .trim_end_matches('/')
            .to_owned();
        let token = args
            .token
            .clone()
            .map(SecretString::from)
            .or_else(|| saved_token(&profile, &endpoint));
        let http = reqwest::Client::builder()
            .user_agent(concat!("cooper-cli/", env!("CARGO_PKG_VERSION")))
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(Error::HttpClient)?;
        Ok(Self {
            http,
            endpoint,
            token,
            profile,
            settings,
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Whether a bearer token is at hand (given, or a saved session of this endpoint).
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// Asks the endpoint for its API description, without credentials: the status, the
    /// server's `Date`, and how long the round trip took.
    pub async fn probe(
        &self,
    ) -> Result<(reqwest::StatusCode, Option<String>, std::time::Duration), Error> {
        let started = std::time::Instant::now();
        let response = self
            .http
            .get(format!("{}/v1/openapi.json", self.endpoint))
            .send()
            .await
            .map_err(|e| Error::Unreachable(e.without_url()))?;
        let date = response
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok((response.status(), date, started.elapsed()))
    }

    /// Who the requests are made as, for keying what is kept per identity (never the token
    /// itself): the saved session's user, and a digest of the bearer token.
    pub fn identity(&self) -> String {
        use sha2::{Digest, Sha256};
        let Some(token) = &self.token else {
            return "anonymous".to_owned();
        };
        let digest: String = Sha256::digest(token.expose_secret().as_bytes())
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect();
        match saved_session(&self.profile, &self.endpoint) {
            Some(s) if s.token == token.expose_secret() => format!("user:{}|{digest}", s.user),
            _ => format!("token:{digest}"),
        }
    }

    /// A request without a bearer token (login).
    pub async fn anonymous(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, Error> {
        self.send(method, path, body, None, &[])
            .await
            .map(|(value, _)| value)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, Error> {
        self.call_with(method, path, body, &[])
            .await
            .map(|(value, _)| value)
    }

    /// An authenticated request with extra headers; returns the body and the `ETag`, if any.
    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, String)],
    ) -> Result<(Value, Option<String>), Error> {
        let token = self.token.as_ref().ok_or_else(|| Error::NotLoggedIn {
            endpoint: self.endpoint.clone(),
        })?;
        self.send(method, path, body, Some(token), headers).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&SecretString>,
        headers: &[(&str, String)],
    ) -> Result<(Value, Option<String>), Error> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.endpoint));
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token.expose_secret());
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Error::Unreachable(e.without_url()))?;
        let status = response.status();
        let etag = response
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response
            .text()
            .await
            .map_err(|e| Error::Unreachable(e.without_url()))?;
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|_| Error::NotCooper { status })?
        };
        if status.is_success() {
            return Ok((value, etag));
        }
        let error = &value["error"];
        Err(Error::Server {
            status,
            code: error["code"].as_str().unwrap_or("unknown").to_owned(),
            message: error["message"]
                .as_str()
                .unwrap_or("the server refused the request")
                .to_owned(),
            request_id: error["request_id"].as_str().unwrap_or("-").to_owned(),
        })
    }
}

/// The characters a path segment keeps as they are (RFC 3986's unreserved ones); every other
/// byte is percent-encoded, `/` included, so that a name stays one segment.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `value` as one path segment: `/v1/admin/users/{segment}`.
pub fn segment(value: &str) -> percent_encoding::PercentEncode<'_> {
    percent_encoding::utf8_percent_encode(value, SEGMENT)
}

/// The pairs that have a value, as a query string (`?a=1&b=x+y`), or nothing.
pub fn query(pairs: &[(&str, Option<String>)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        if let Some(value) = value {
            query.append_pair(name, value);
        }
    }
    let query = query.finish();
    if query.is_empty() {
        query
    } else {
        format!("?{query}")
    }
}

/// Asks for a line: on a terminal with a prompt (hidden when `secret`), else read from stdin.
pub fn ask(prompt: &str, secret: bool) -> Result<SecretString, Error> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        if secret {
            return rpassword::prompt_password(prompt)
                .map(SecretString::from)
                .map_err(Error::Terminal);
        }
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line).map_err(Error::Terminal)?;
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    if line.is_empty() {
        return Err(Error::NothingGiven(
            prompt.trim().trim_end_matches(':').to_owned(),
        ));
    }
    Ok(SecretString::from(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_profile_name_leads_a_file_out_of_its_folder() {
        for name in [
            "../../.ssh/authorized_keys",
            "/etc/passwd",
            "a/b",
            "..",
            "prod eu",
        ] {
            let safe = file_safe(name);
            assert!(
                !safe.contains('/') && !safe.contains(".."),
                "{name} -> {safe}"
            );
            let path = session_path(name);
            if let (Some(path), Some(dir)) = (path, config_dir()) {
                assert_eq!(
                    path.parent(),
                    Some(dir.join("sessions").as_path()),
                    "{name}"
                );
            }
        }
        assert_eq!(file_safe("prod-eu_1"), "prod-eu_1");
    }

    #[test]
    fn a_bad_config_file_is_reported_by_line_without_its_text() {
        // GIVEN a config file with a secret where it does not belong
        let text = "default_profile = \"a\"\ntoken = \"cooper_secret_value\"\n";
        // WHEN it is read
        let Err(error) = Config::parse(text, Path::new("config.toml")) else {
            panic!("an unknown field is refused");
        };
        // THEN the message names the file, the line and the field, not the value
        let shown = crate::error::report(&error);
        assert!(shown.starts_with("config.toml:2: "), "{shown}");
        assert!(shown.contains("token"), "{shown}");
        assert!(!shown.contains("cooper_secret_value"), "{shown}");
        assert!(!format!("{error:?}").contains("cooper_secret_value"));
    }

    #[test]
    fn names_stay_one_segment_and_queries_keep_their_values() {
        assert_eq!(segment("alice").to_string(), "alice");
        assert_eq!(
            segment("a/b c?d#e%f.g~h_i-j").to_string(),
            "a%2Fb%20c%3Fd%23e%25f.g~h_i-j"
        );
        assert_eq!(segment("..").to_string(), "..");
        assert_eq!(segment("é").to_string(), "%C3%A9");
        assert_eq!(query(&[("a", None), ("b", None)]), "");
        let q = query(&[
            ("user", Some("a&b=c".into())),
            ("skip", None),
            ("cursor", Some("x y+z".into())),
        ]);
        assert_eq!(q, "?user=a%26b%3Dc&cursor=x+y%2Bz");
        let parsed: Vec<(String, String)> = form_urlencoded::parse(&q.as_bytes()[1..])
            .into_owned()
            .collect();
        assert_eq!(
            parsed,
            [
                ("user".to_owned(), "a&b=c".to_owned()),
                ("cursor".to_owned(), "x y+z".to_owned())
            ]
        );
    }

    #[test]
    fn a_good_config_file_names_its_profiles() {
        let text =
            "default_profile = \"local\"\n[profiles.local]\nendpoint = \"http://127.0.0.1:8080\"\n";
        let Ok(config) = Config::parse(text, Path::new("config.toml")) else {
            panic!("the config parses");
        };
        assert_eq!(config.default_profile.as_deref(), Some("local"));
        assert_eq!(
            config.profiles["local"].endpoint.as_deref(),
            Some("http://127.0.0.1:8080")
        );
    }
}
