//! SAML sign-in's three endpoints: the SP metadata, the SP-initiated start (HTTP-Redirect),
//! and the assertion consumer (HTTP-POST). A browser that signs in gets a console session;
//! every refusal is audited and shown on the sign-in page (JSON to a client that does not ask
//! for HTML).

use cooper_core::audit::{AuditEvent, AuditRecord};
use cooper_core::ledger::{Change, record_refusal};
use cooper_core::sessions::SessionError;

use super::signin::{signed_in_page, signin_refused};
#[allow(clippy::wildcard_imports)]
use super::*;
use crate::saml::{Destination, Relay, SamlError, SamlProviders, binding_of};

/// The largest form the assertion consumer reads (a SAML response is larger than API bodies).
pub(super) const ACS_BODY_LIMIT: usize = 256 * 1024;

fn providers(state: &WebState) -> Result<&SamlProviders, SamlError> {
    state.web.saml.as_deref().ok_or(SamlError::NotConfigured)
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// A refusal: the sign-in page for a browser, the JSON error for anything else.
fn refused(state: &WebState, headers: &HeaderMap, meta: &RequestMeta, error: ApiError) -> Response {
    if wants_html(headers) {
        let (status, error) = refusal(error, meta);
        signin_refused(state, headers, status, error)
    } else {
        error.into_response()
    }
}

/// The SP metadata of one provider
///
/// What to register at the identity provider: cooper's entity id for it, its assertion
/// consumer (HTTP-POST), the NameID format it asks for, and that assertions must be signed.
#[cfg_attr(feature = "openapi", utoipa::path(
    get, path = "/v1/saml/{provider}/metadata", operation_id = "getSamlMetadata", tag = "sessions", security(),
    params(("provider" = String, Path, description = "The provider's name in COOPER_SAML_PROVIDERS.")),
    responses((status = 200, description = "SAML 2.0 metadata (an EntityDescriptor).", content_type = "application/samlmetadata+xml", body = String)),
))]
pub(crate) async fn metadata(
    State(state): State<WebState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let saml = providers(&state)?;
    let provider = saml.provider(&name)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/samlmetadata+xml"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        saml.metadata(provider),
    )
        .into_response())
}

/// Query of `GET /v1/saml/{provider}/login` (read as a map, so that a bad one is a JSON error).
#[cfg(feature = "openapi")]
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code, reason = "it describes the query; the handler reads a map")]
pub struct LoginQuery {
    /// For `cooper login --saml`: the loopback port its listener waits on.
    #[param(minimum = 1024, maximum = 65535)]
    pub cli_port: Option<u16>,
    /// For `cooper login --saml`: the S256 challenge of the verifier it redeems the code with.
    pub code_challenge: Option<String>,
}

/// Start a SAML sign-in
///
/// Redirects (303) to the identity provider with an AuthnRequest (HTTP-Redirect binding). Its
/// RelayState binds the answer to this browser (a cookie) or to the CLI that asked (its code
/// challenge), and is good for ten minutes.
#[cfg_attr(feature = "openapi", utoipa::path(
    get, path = "/v1/saml/{provider}/login", operation_id = "startSamlLogin", tag = "sessions", security(),
    params(("provider" = String, Path, description = "The provider's name in COOPER_SAML_PROVIDERS."), LoginQuery),
    responses((status = 303, description = "To the identity provider's sign-in page.", headers(("Location" = String)))),
))]
pub(crate) async fn login(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let started = (|| {
        let saml = providers(&state)?;
        let provider = saml.provider(&name)?;
        let unavailable = || {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "no randomness to start a sign-in with",
            )
        };
        let invalid =
            |message: &str| ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message);
        if let Some(unknown) = query
            .keys()
            .find(|k| !matches!(k.as_str(), "cli_port" | "code_challenge"))
        {
            return Err(invalid(&format!("unknown query parameter {unknown}")));
        }
        let now = state.enroll.shared.clock.now();
        let (relay, cookie) = match (query.get("cli_port"), query.get("code_challenge")) {
            (None, None) => {
                let secret = session::random().ok_or_else(unavailable)?;
                let relay = Relay {
                    destination: Destination::Console,
                    binding: binding_of(&secret),
                };
                (
                    relay,
                    session::saml_flow_cookie(&state.web, &headers, &secret),
                )
            }
            (Some(port), Some(challenge)) => {
                let port: u16 = port
                    .parse()
                    .ok()
                    .filter(|p| *p >= 1024)
                    .ok_or_else(|| invalid("cli_port must be a port number from 1024"))?;
                let well_formed = challenge.len() == 43
                    && challenge
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                if !well_formed {
                    return Err(invalid(
                        "code_challenge must be an S256 challenge (43 base64url characters)",
                    ));
                }
                let relay = Relay {
                    destination: Destination::Cli(port),
                    binding: binding_of(challenge),
                };
                (relay, None)
            }
            _ => return Err(invalid("give both cli_port and code_challenge, or neither")),
        };
        let random = session::random().ok_or_else(unavailable)?;
        let location = saml
            .login_url(provider, &relay, now, &random)
            .map_err(ApiError::from)?;
        Ok::<_, ApiError>((location, cookie))
    })();
    match started {
        Ok((location, cookie)) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            if let Ok(location) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            if let Some(cookie) = cookie {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(e) => refused(&state, &headers, &meta, e),
    }
}

/// The form an identity provider posts (HTTP-POST binding; read as a form map, so that a bad
/// one is refused with a SAML code).
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(as = SamlResponseForm)]
#[allow(dead_code, reason = "it describes the form; the handler reads a map")]
pub struct AcsForm {
    /// The Response, base64.
    #[serde(rename = "SAMLResponse")]
    pub saml_response: String,
    /// What cooper's request carried (absent for an IdP-initiated sign-in).
    #[serde(rename = "RelayState")]
    pub relay_state: Option<String>,
}

/// The assertion consumer
///
/// Verifies the identity provider's Response (signature by a configured key with SHA-256 or
/// stronger, only the signed assertion read, audience, recipient, destination, times, the
/// request it answers, used once) and signs the browser in to the console. Every refusal is a
/// 401 with its own code, audited.
#[cfg_attr(feature = "openapi", utoipa::path(
    post, path = "/v1/saml/{provider}/acs", operation_id = "consumeSamlAssertion", tag = "sessions", security(),
    params(("provider" = String, Path, description = "The provider's name in COOPER_SAML_PROVIDERS.")),
    request_body(content = AcsForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Signed in: a page that goes on to the console, with the session cookie.", content_type = "text/html", body = String)),
))]
pub(crate) async fn acs(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let web = &state.web;
    let shared = &state.enroll.shared;
    let now = shared.clock.now();
    let mut actor = String::from("unknown");
    let result = async {
        let saml = providers(&state)?;
        let provider = saml.provider(&name)?;
        let form = Form::parse(&headers, &body).ok_or_else(|| {
            SamlError::Malformed("send the form the identity provider posts".into())
        })?;
        let response = form
            .get("SAMLResponse")
            .ok_or_else(|| SamlError::Malformed("the form has no SAMLResponse".into()))?;
        let asserted = saml.verify(provider, response, now)?;
        actor = asserted.name_id.chars().take(128).collect();
        let mut marks = vec![Change::Mark {
            key: format!(
                "saml:{name}:assertion:{}",
                binding_of(&asserted.assertion_id)
            ),
            until: asserted.valid_until + time::Duration::seconds(crate::saml::SKEW_SECONDS),
            now,
            payload: None,
        }];
        let relay = match &asserted.in_response_to {
            Some(id) => {
                let relay_state = form.get("RelayState").unwrap_or_default();
                let (relay, expires) = saml.relay(provider, id, relay_state, now)?;
                marks.push(Change::Mark {
                    key: format!("saml:{name}:request:{}", binding_of(id)),
                    until: expires,
                    now,
                    payload: None,
                });
                Some(relay)
            }
            None if provider.config.allow_idp_initiated => None,
            None => return Err(SamlError::Unsolicited),
        };
        // The console's sign-in must come back to the browser that started it; the CLI's is
        // bound to its verifier, checked when the code is redeemed.
        if let Some(Relay {
            destination: Destination::Console,
            binding,
        }) = &relay
        {
            let bound = session::saml_flow(web, &headers).is_some_and(|secret| {
                bool::from(binding_of(&secret).as_bytes().ct_eq(binding.as_bytes()))
            });
            if !bound {
                return Err(SamlError::WrongBrowser);
            }
        }
        let identity = saml.identity(provider, &asserted)?;
        Ok::<_, SamlError>((identity, marks, relay))
    }
    .await;
    let (identity, marks, relay) = match result {
        Ok(ok) => ok,
        Err(e) => {
            if !matches!(e, SamlError::NotConfigured) {
                audit_refusal(&state, &meta, &actor, &format!("saml:{name}"), e.code()).await;
            }
            tracing::info!(code = e.code(), provider = %name, "a SAML sign-in was refused");
            let mut response = refused(&state, &headers, &meta, ApiError::from(e));
            if let Some(cookie) = session::clear_saml_flow(web, &headers) {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            return response;
        }
    };
    if let Some(Relay {
        destination: Destination::Cli(port),
        binding,
    }) = relay
    {
        return hand_to_cli(&state, &meta, identity, marks, port, binding).await;
    }
    match web.exchange.exchange_with(identity, &meta, marks).await {
        // The flow cookie is left to expire: a response posted again by this browser then
        // meets its one-time mark (`saml_replayed`), not a missing cookie.
        Ok(signed) => signed_in_page(&state, &headers, &signed),
        Err(SessionError::Factor(FactorError::Replayed)) => {
            let code = SamlError::Replayed.code();
            audit_refusal(&state, &meta, &actor, &format!("saml:{name}"), code).await;
            refused(&state, &headers, &meta, ApiError::from(SamlError::Replayed))
        }
        Err(e) => refused(&state, &headers, &meta, ApiError::from(e)),
    }
}

/// Audits a refused SAML sign-in: `by` is who the assertion named once its signature verified.
async fn audit_refusal(state: &WebState, meta: &RequestMeta, by: &str, auth: &str, code: &str) {
    let shared = &state.enroll.shared;
    let record = AuditRecord::new(
        meta,
        shared.clock.now(),
        AuditEvent::SessionRefused,
        by,
        auth,
    )
    .refused(AuditEvent::SessionRefused, code);
    record_refusal(shared.ledger.as_ref(), &record).await;
}

/// How long the CLI has to redeem the code it was handed.
const HANDOFF_SECONDS: i64 = 120;

fn handoff_key(code: &str) -> String {
    format!("saml:handoff:{}", binding_of(code))
}

/// What a handed-off sign-in keeps until the CLI redeems it (no token: the session is signed
/// when the code is redeemed, by the directory's say then).
#[derive(serde::Serialize, serde::Deserialize)]
struct HandedOff {
    user: String,
    idp: String,
    groups: Vec<String>,
    binding: String,
}

/// The CLI's sign-in: its one-time code kept (by digest) with the marks, audited, and the
/// browser sent on to the CLI's loopback listener with the code (never a token in a URL).
async fn hand_to_cli(
    state: &WebState,
    meta: &RequestMeta,
    identity: cooper_core::access::Identity,
    mut marks: Vec<Change>,
    port: u16,
    binding: String,
) -> Response {
    let shared = &state.enroll.shared;
    let now = shared.clock.now();
    let Some(code) = session::random() else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "no randomness to hand the sign-in over with",
        )
        .into_response();
    };
    let handed = HandedOff {
        user: identity.user.to_string(),
        idp: identity.method.idp().unwrap_or_default().to_owned(),
        groups: identity
            .asserted_groups
            .iter()
            .map(ToString::to_string)
            .collect(),
        binding,
    };
    let Ok(payload) = serde_json::to_string(&handed) else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "internal",
            "cannot keep the sign-in",
        )
        .into_response();
    };
    marks.push(Change::Mark {
        key: handoff_key(&code),
        until: now + time::Duration::seconds(HANDOFF_SECONDS),
        now,
        payload: Some(payload),
    });
    let record = AuditRecord::by(&identity, meta, now, AuditEvent::SessionHandedOff);
    match shared.ledger.commit(&marks, &record).await {
        Ok(()) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            let location = format!("http://127.0.0.1:{port}/callback?code={code}");
            if let Ok(location) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
        Err(e) => match FactorError::from_commit(e, &marks, now) {
            FactorError::Replayed => {
                let record = record.refused(AuditEvent::SessionRefused, SamlError::Replayed.code());
                record_refusal(shared.ledger.as_ref(), &record).await;
                ApiError::from(SamlError::Replayed).into_response()
            }
            other => ApiError::from(other).into_response(),
        },
    }
}

/// The CLI's one-time code and the verifier whose challenge started its sign-in.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = SamlSessionRequest))]
pub struct RedeemBody {
    /// The code the assertion consumer sent to the CLI's loopback address.
    pub code: String,
    /// The PKCE-style verifier (its S256 challenge was given to `login`).
    pub code_verifier: String,
}

/// Redeem a SAML sign-in handed to the CLI
///
/// `cooper login --saml` started the sign-in with a code challenge and received a one-time
/// code on its loopback address; with the verifier, the code gives a session token, once,
/// within two minutes. 401 `invalid_grant` otherwise.
#[cfg_attr(feature = "openapi", utoipa::path(
    post, path = "/v1/sessions/saml", operation_id = "createSamlSession", tag = "sessions", security(),
    request_body(content = RedeemBody, example = json!({"code": "w2Qm3...", "code_verifier": "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"})),
    responses((status = 200, description = "A session token that keeps the provider's groups.", body = crate::routes::factors::SessionView, headers(("Cache-Control" = crate::schema::NoStore)))),
))]
pub(crate) async fn redeem(
    State(state): State<WebState>,
    Meta(meta): Meta,
    crate::json::SecretJsonBody(body): crate::json::SecretJsonBody<RedeemBody>,
) -> Result<Response, ApiError> {
    let shared = &state.enroll.shared;
    let now = shared.clock.now();
    let refused = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
            "this code is not one cooper handed out, was used, or is too old: sign in again",
        )
    };
    let taken = shared
        .ledger
        .take_mark(&handoff_key(&body.code), now)
        .await?;
    let handed: Option<HandedOff> = taken.and_then(|p| serde_json::from_str(&p).ok());
    let expected = binding_of(&session::challenge(&body.code_verifier));
    let Some(handed) =
        handed.filter(|h| bool::from(h.binding.as_bytes().ct_eq(expected.as_bytes())))
    else {
        audit_refusal(&state, &meta, "unknown", "saml", "invalid_grant").await;
        return Err(refused());
    };
    let user = cooper_core::names::UserName::parse(&handed.user).map_err(|_| refused())?;
    let mut identity = cooper_core::access::Identity::new(
        user,
        cooper_core::access::AuthMethod::SamlAssertion(handed.idp),
    );
    identity.asserted_groups = handed
        .groups
        .iter()
        .filter_map(|g| cooper_core::names::GroupName::parse(g).ok())
        .collect();
    let session = state.enroll.exchange.exchange(identity, &meta).await?;
    Ok(crate::routes::factors::session_response(&session))
}
