//! The web console: server-rendered pages over the same use cases as the JSON API.
//!
//! A page is a view. It parses a form, calls the use case the API route calls (the same
//! `CredentialIssuer`, `LocalLogin`, `Enrollment`, `Approvals`, `Admin`), and renders the answer
//! or the refusal as HTML. Nothing here decides who may do what.
//!
//! The session is a cooper JWT for the audience `<audience>-console`, with its own (shorter)
//! lifetime, in an `HttpOnly; Secure; SameSite=Strict` cookie. The API never reads a cookie, and
//! it refuses a console token as a bearer (another audience), so a cross-site request cannot
//! reach it through the browser. Every form carries a CSRF token derived from the session, and
//! a cross-origin `Origin` is refused besides.

pub mod assets;
mod html;
pub(crate) mod pages;
mod session;
pub mod stand_in;

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use cooper_core::sessions::{LocalLogin, SessionExchange};

use crate::auth::Authenticator;
use crate::oidc::OidcVerifier;
use crate::saml::{SamlConfigError, SamlProviders};
use crate::settings::Settings;
use crate::state::{AdminState, EnrollState, IssueState, States, local_login};

pub use pages::{not_found_page, operations, page_routes, routes, saml_operations, saml_routes};

/// What the pages run on: every use case, and the console's own sessions.
#[derive(Clone)]
pub struct WebState {
    pub issue: IssueState,
    pub enroll: EnrollState,
    pub admin: AdminState,
    pub web: Arc<Web>,
}

/// The web console's own parts.
pub struct Web {
    /// Verifies console sessions (cooper JWTs for the console's audience, nothing else).
    pub sessions: Authenticator,
    /// Local sign-in, signing console sessions.
    pub login: LocalLogin,
    /// Sign-in with an identity provider (its ID token for a console session).
    pub exchange: SessionExchange,
    /// The identity providers, if any (those with a `console_client_id` get a button).
    pub oidc: Option<Arc<OidcVerifier>>,
    /// The SAML identity providers, if this process signs in with them (`cooper serve`, the
    /// saml-signin function): their certificates, checked.
    pub saml: Option<Arc<SamlProviders>>,
    /// A button per SAML identity provider on the sign-in page (the web-console function shows
    /// them without reading a SAML response, so without the providers' keys).
    pub saml_buttons: Vec<SamlButton>,
    pub lifetime: time::Duration,
    /// Local runs: the `Secure` cookie attribute is dropped for a loopback `Host` (a browser
    /// does not keep a Secure cookie from http://127.0.0.1).
    pub local: bool,
    /// The path the console is served under (`/prod`), or empty.
    pub base_path: String,
    /// The Content-Security-Policy of every page.
    pub csp: HeaderValue,
}

/// A SAML identity provider's button: its name (in `/v1/saml/<name>/login`) and what it says.
pub struct SamlButton {
    pub name: String,
    pub label: String,
}

/// The audience of console sessions, apart from the API's.
pub fn console_audience(api_audience: &str) -> String {
    format!("{api_audience}-console")
}

impl WebState {
    /// The console over `states`, SAML sign-in included (`cooper serve`, the saml-signin
    /// function). `local`: served by `cooper serve` on a loopback address. Refuses a SAML
    /// configuration that is not sound (no certificate, no public URL).
    pub fn new(states: States, settings: &Settings, local: bool) -> Result<Self, SamlConfigError> {
        let shared = &states.enroll.shared;
        let saml = SamlProviders::parse(
            &settings.saml_providers,
            settings.public_url.as_deref(),
            shared.jwt.clone(),
        )?
        .map(Arc::new);
        Self::with(states, settings, local, saml)
    }

    /// The pages alone (the web-console function): SAML sign-in is served by another function,
    /// so the providers are only read for their buttons and the XML signature stack is not
    /// linked in. A configuration that is not JSON of providers is refused all the same.
    pub fn pages(
        states: States,
        settings: &Settings,
        local: bool,
    ) -> Result<Self, SamlConfigError> {
        Self::with(states, settings, local, None)
    }

    fn with(
        states: States,
        settings: &Settings,
        local: bool,
        saml: Option<Arc<SamlProviders>>,
    ) -> Result<Self, SamlConfigError> {
        let saml_buttons = crate::saml::buttons(&settings.saml_providers)?
            .into_iter()
            .map(|(name, label)| SamlButton { name, label })
            .collect();
        let shared = &states.enroll.shared;
        let jwt = Arc::new(
            shared
                .jwt
                .for_audience(&console_audience(&settings.jwt_audience)),
        );
        let lifetime = time::Duration::minutes(i64::from(settings.web_session_minutes));
        let login = local_login(shared, settings, jwt.clone(), lifetime);
        let exchange = SessionExchange {
            directory: shared.directory.clone(),
            ledger: shared.ledger.clone(),
            signer: jwt.clone(),
            entropy: shared.entropy.clone(),
            clock: shared.clock.clone(),
            lifetime,
        };
        let oidc = shared.auth.oidc.clone();
        let sessions = Authenticator {
            jwt,
            directory: shared.directory.clone(),
            clock: shared.clock.clone(),
            oidc: None,
        };
        let csp = content_security_policy(settings.console_login_endpoint.as_deref());
        Ok(Self {
            web: Arc::new(Web {
                sessions,
                login,
                exchange,
                oidc,
                saml,
                saml_buttons,
                lifetime,
                local,
                base_path: settings.web_base_path.clone(),
                csp,
            }),
            issue: states.issue,
            enroll: states.enroll,
            admin: states.admin,
        })
    }
}

/// No inline script or style, nothing framed, forms posted only here or to an AWS sign-in host
/// (the console hand-off), images only from here or `data:` (the enrollment QR code).
fn content_security_policy(login_endpoint: Option<&str>) -> HeaderValue {
    let mut form_action = String::from(
        "'self' https://signin.aws.amazon.com https://signin.amazonaws-us-gov.com https://signin.amazonaws.cn",
    );
    if let Some(origin) = login_endpoint.and_then(origin_of) {
        form_action.push(' ');
        form_action.push_str(&origin);
    }
    let policy = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    );
    HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static(
        "default-src 'none'; frame-ancestors 'none'",
    ))
}

/// `scheme://host[:port]` of a URL, if it has one.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split('/').next()?;
    (!host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)))
    .then(|| format!("{scheme}://{host}"))
}

/// Every page's headers: the policy above, no referrer (a sign-in link must not leak through
/// `Referer`), no sniffing, no framing, and nothing kept by a cache unless it is an asset.
pub async fn security_headers(
    axum::extract::State(web): axum::extract::State<Arc<Web>>,
    req: Request,
    next: Next,
) -> Response {
    let is_asset = req.uri().path().contains("/assets/");
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, web.csp.clone());
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    );
    if !is_asset {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_no_inline_code_and_no_framing() {
        let csp = content_security_policy(None);
        let csp = csp.to_str().unwrap();
        assert!(csp.contains("script-src 'self';"));
        assert!(csp.contains("style-src 'self';"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe-inline"));
        assert!(!csp.contains("127.0.0.1"));
    }

    #[test]
    fn a_local_login_endpoint_may_take_the_console_hand_off() {
        let csp = content_security_policy(Some("http://127.0.0.1:8080/_local/signin"));
        assert!(
            csp.to_str()
                .unwrap()
                .contains("form-action 'self' https://signin.aws.amazon.com")
        );
        assert!(csp.to_str().unwrap().contains(" http://127.0.0.1:8080;"));
        assert_eq!(origin_of("not a url"), None);
        assert_eq!(origin_of("http://a b/"), None);
    }
}
