//! The console's cookies: the session, the sign-in form's pre-session value, the targets used
//! recently; CSRF tokens and the `Origin` check.

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cooper_core::access::Identity;
use cooper_core::names::TargetName;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Web;

/// The session cookie (`__Host-` when Secure: no Domain, Path=/, never set over http).
const SESSION: &str = "cooper_session";
/// A random value the sign-in form's CSRF token is derived from, before there is a session.
const PRESESSION: &str = "cooper_signin";
/// The targets used recently, newest first (names only: nothing secret). `__Host-` when Secure,
/// like the others, so a sibling subdomain cannot plant a list.
const RECENT: &str = "cooper_recent";
/// A first enrollment's one-time code, between its two steps (kept out of the page).
const ENROLLING: &str = "cooper_enrolling";
/// At most this many recent targets are remembered.
pub const RECENT_MAX: usize = 8;

/// A signed-in browser: who, and the CSRF token its forms carry.
pub struct Session {
    pub identity: Identity,
    pub csrf: String,
}

/// Whether the browser reached us on a loopback address (a local run).
fn loopback(headers: &HeaderMap) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let name = host.rsplit_once(':').map_or(host, |(name, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            name
        } else {
            host
        }
    });
    matches!(name, "127.0.0.1" | "localhost" | "[::1]")
}

/// Whether cookies get `Secure` (always, but for a local run reached on loopback).
pub fn secure(web: &Web, headers: &HeaderMap) -> bool {
    !(web.local && loopback(headers))
}

fn cookie_name(base: &str, secure: bool) -> String {
    if secure {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

/// Text made safe for HTML (the stand-in page writes its few lines by hand).
pub fn escape_html(text: &str) -> String {
    maud::html! { (text) }.into_string()
}

/// The value of cookie `name`, if the request carries it.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Path=/, Secure unless local.
fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .ok()
}

fn digest(label: &str, secret: &str) -> String {
    let hash = Sha256::new()
        .chain_update(label)
        .chain_update([0])
        .chain_update(secret)
        .finalize();
    URL_SAFE_NO_PAD.encode(hash)
}

/// The CSRF token of a session: a hash of the session token, which no other site can read
/// (the cookie is HttpOnly and the page is same-origin), so no other site can compute it.
fn csrf_of(token: &str) -> String {
    digest("cooper-console-csrf", token)
}

/// Compares a form's token with the expected one, in constant time.
pub fn csrf_matches(expected: &str, presented: Option<&str>) -> bool {
    !expected.is_empty()
        && presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(expected.as_bytes())))
}

/// The signed-in browser, if its session cookie holds a live console session.
pub async fn signed_in(web: &Web, headers: &HeaderMap) -> Option<Session> {
    let token = cookie(headers, &cookie_name(SESSION, secure(web, headers)))?;
    let identity = web.sessions.session(token).await.ok()?;
    Some(Session {
        identity,
        csrf: csrf_of(token),
    })
}

/// The cookie that signs a browser in with `token`.
pub fn session_cookie(web: &Web, headers: &HeaderMap, token: &SecretString) -> Option<HeaderValue> {
    let secure = secure(web, headers);
    set_cookie(
        &cookie_name(SESSION, secure),
        token.expose_secret(),
        web.lifetime.whole_seconds(),
        secure,
    )
}

/// The cookie that signs a browser out.
pub fn clear_session(web: &Web, headers: &HeaderMap) -> Option<HeaderValue> {
    let secure = secure(web, headers);
    set_cookie(&cookie_name(SESSION, secure), "", 0, secure)
}

/// The sign-in form's CSRF token, and the cookie to set when the browser has none yet.
pub fn presession(web: &Web, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    let secure = secure(web, headers);
    let name = cookie_name(PRESESSION, secure);
    if let Some(value) = cookie(headers, &name).filter(|v| v.len() >= 32) {
        return (digest("cooper-console-signin", value), None);
    }
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        // No randomness, no sign-in form that could be checked: an empty token never matches.
        return (String::new(), None);
    }
    let value = URL_SAFE_NO_PAD.encode(bytes);
    let token = digest("cooper-console-signin", &value);
    (token, set_cookie(&name, &value, 3600, secure))
}

/// The sign-in form's expected CSRF token, from the pre-session cookie.
pub fn presession_token(web: &Web, headers: &HeaderMap) -> Option<String> {
    let name = cookie_name(PRESESSION, secure(web, headers));
    cookie(headers, &name)
        .filter(|v| v.len() >= 32)
        .map(|v| digest("cooper-console-signin", v))
}

/// Whether a state-changing request may come from where it says (the CSRF token is checked
/// besides). A browser's `Sec-Fetch-Site` (which no page can set) must be `same-origin`. Its
/// `Origin` must be ours, or `null`, which is what a browser sends for a same-origin form under
/// `Referrer-Policy: no-referrer`, and is accepted only with `Sec-Fetch-Site: same-origin`.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let site = headers
        .get("sec-fetch-site")
        .map(|v| v.to_str().unwrap_or_default());
    let origin = headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or_default());
    let ours = |origin: &str| origin.split_once("://").map(|(_, h)| h) == host && host.is_some();
    match (site, origin) {
        (Some("same-origin"), None | Some("null")) => true,
        (Some("same-origin") | None, Some(origin)) => ours(origin),
        (None, None) => true,
        (Some(_), _) => false,
    }
}

/// The cookie that holds an enrollment code between starting and confirming (15 minutes).
pub fn enrolling_cookie(web: &Web, headers: &HeaderMap, code: &str) -> Option<HeaderValue> {
    let secure = secure(web, headers);
    set_cookie(&cookie_name(ENROLLING, secure), code, 900, secure)
}

/// The enrollment code this browser is enrolling with, if any.
pub fn enrolling(web: &Web, headers: &HeaderMap) -> Option<String> {
    cookie(headers, &cookie_name(ENROLLING, secure(web, headers))).map(str::to_owned)
}

/// The cookie that forgets the enrollment code.
pub fn clear_enrolling(web: &Web, headers: &HeaderMap) -> Option<HeaderValue> {
    let secure = secure(web, headers);
    set_cookie(&cookie_name(ENROLLING, secure), "", 0, secure)
}

/// An identity provider sign-in under way: which provider, and its state, nonce and PKCE
/// verifier. `SameSite=Lax`: it must come back on the provider's redirect (a cross-site
/// navigation), and it is good for ten minutes.
const SIGNING_IN: &str = "cooper_oidc";

pub struct Flow {
    pub provider: usize,
    pub state: String,
    pub nonce: String,
    pub verifier: String,
}

/// 32 random bytes, base64url.
pub fn random() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

/// The PKCE challenge of a verifier (S256).
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

pub fn flow_cookie(web: &Web, headers: &HeaderMap, flow: &Flow) -> Option<HeaderValue> {
    let secure = secure(web, headers);
    let value = format!(
        "{}.{}.{}.{}",
        flow.provider, flow.state, flow.nonce, flow.verifier
    );
    let secure_attr = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}={value}; Path=/; Max-Age=600; HttpOnly; SameSite=Lax{secure_attr}",
        cookie_name(SIGNING_IN, secure)
    ))
    .ok()
}

pub fn flow(web: &Web, headers: &HeaderMap) -> Option<Flow> {
    let value = cookie(headers, &cookie_name(SIGNING_IN, secure(web, headers)))?;
    let mut parts = value.split('.');
    let flow = Flow {
        provider: parts.next()?.parse().ok()?,
        state: parts.next()?.to_owned(),
        nonce: parts.next()?.to_owned(),
        verifier: parts.next()?.to_owned(),
    };
    parts.next().is_none().then_some(flow)
}

pub fn clear_flow(web: &Web, headers: &HeaderMap) -> Option<HeaderValue> {
    let secure = secure(web, headers);
    set_cookie(&cookie_name(SIGNING_IN, secure), "", 0, secure)
}

/// A SAML sign-in's browser binding: a random value whose digest its RelayState carries. The
/// IdP answers by a cross-site POST, which takes only `SameSite=None` cookies (so `Secure`);
/// a local run is reached on http, where the IdP on loopback is the same site and `Lax` does.
const SAML_FLOW: &str = "cooper_saml";

pub fn saml_flow_cookie(web: &Web, headers: &HeaderMap, value: &str) -> Option<HeaderValue> {
    let secure = secure(web, headers);
    let same_site = if secure { "None; Secure" } else { "Lax" };
    HeaderValue::from_str(&format!(
        "{}={value}; Path=/; Max-Age=600; HttpOnly; SameSite={same_site}",
        cookie_name(SAML_FLOW, secure)
    ))
    .ok()
}

pub fn saml_flow(web: &Web, headers: &HeaderMap) -> Option<String> {
    cookie(headers, &cookie_name(SAML_FLOW, secure(web, headers))).map(str::to_owned)
}

pub fn clear_saml_flow(web: &Web, headers: &HeaderMap) -> Option<HeaderValue> {
    let secure = secure(web, headers);
    set_cookie(&cookie_name(SAML_FLOW, secure), "", 0, secure)
}

/// Where this console is reached, as the browser sees it (for the provider's redirect URI).
pub fn origin(web: &Web, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        Some("http") => "http",
        Some(_) => "https",
        None if !secure(web, headers) => "http",
        None => "https",
    };
    format!("{scheme}://{host}")
}

/// The targets this browser used recently, newest first.
pub fn recent(web: &Web, headers: &HeaderMap) -> Vec<TargetName> {
    recent_in(headers, secure(web, headers))
}

fn recent_in(headers: &HeaderMap, secure: bool) -> Vec<TargetName> {
    cookie(headers, &cookie_name(RECENT, secure))
        .unwrap_or_default()
        .split('|')
        .filter_map(|n| TargetName::parse(n).ok())
        .take(RECENT_MAX)
        .collect()
}

/// The recent-targets cookie with `used` in front.
pub fn remember(web: &Web, headers: &HeaderMap, used: &TargetName) -> Option<HeaderValue> {
    let mut names = vec![used.clone()];
    names.extend(recent(web, headers).into_iter().filter(|n| n != used));
    names.truncate(RECENT_MAX);
    let value: Vec<&str> = names.iter().map(TargetName::as_str).collect();
    let secure = secure(web, headers);
    set_cookie(
        &cookie_name(RECENT, secure),
        &value.join("|"),
        90 * 24 * 3600,
        secure,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    #[test]
    fn a_cross_site_origin_is_refused_and_our_own_is_not() {
        assert!(same_origin(&headers(&[("host", "cooper.example.com")])));
        assert!(same_origin(&headers(&[
            ("host", "cooper.example.com"),
            ("origin", "https://cooper.example.com"),
            ("sec-fetch-site", "same-origin"),
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "cooper.example.com"),
            ("origin", "https://evil.example.net"),
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "cooper.example.com"),
            ("origin", "null"),
        ])));
        // What a browser sends for our own form under Referrer-Policy: no-referrer.
        assert!(same_origin(&headers(&[
            ("host", "cooper.example.com"),
            ("origin", "null"),
            ("sec-fetch-site", "same-origin"),
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "cooper.example.com"),
            ("origin", "https://evil.example.net"),
            ("sec-fetch-site", "same-origin"),
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "cooper.example.com"),
            ("origin", "null"),
            ("sec-fetch-site", "same-site"),
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "cooper.example.com"),
            ("sec-fetch-site", "cross-site"),
        ])));
    }

    #[test]
    fn csrf_tokens_differ_per_session_and_compare_whole() {
        let a = csrf_of("session-a");
        assert_ne!(a, csrf_of("session-b"));
        assert!(csrf_matches(&a, Some(&a)));
        assert!(!csrf_matches(&a, Some(&a[..a.len() - 1])));
        assert!(!csrf_matches(&a, None));
        assert!(!csrf_matches("", Some("x")));
    }

    #[test]
    fn cookies_are_read_by_exact_name_and_recent_targets_are_bounded() {
        let h = headers(&[(
            "cookie",
            "xcooper_recent=evil; cooper_recent=a|b|NOT VALID|c",
        )]);
        let names: Vec<String> = recent_in(&h, false)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
        // Served over https, only the `__Host-` cookie counts: a list a sibling subdomain set
        // for the parent domain is not read.
        assert!(recent_in(&h, true).is_empty());
        let host = headers(&[("cookie", "cooper_recent=evil; __Host-cooper_recent=d")]);
        let names: Vec<String> = recent_in(&host, true)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(names, ["d"]);
        assert!(loopback(&headers(&[("host", "127.0.0.1:8080")])));
        assert!(!loopback(&headers(&[("host", "127.0.0.1.evil.com")])));
    }
}
