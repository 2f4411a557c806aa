//! Signing in (password and code, or an identity provider), out, and a first enrollment.

use super::factors::enrollment_steps;
#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) async fn home(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let to = if session::signed_in(&state.web, &headers).await.is_some() {
        "/targets"
    } else {
        "/signin"
    };
    see_other(&state.web.base_path, to, Vec::new())
}

/// A "Sign in with <provider>" button: where it goes, what it says.
struct SignInButton {
    href: String,
    name: String,
}

fn signin_form(
    base: &str,
    token: &str,
    user: &str,
    providers: &[SignInButton],
    error: Option<&FormError>,
) -> Markup {
    html! {
        (html::form_alert(error, &["totp"]))
        @if !providers.is_empty() {
            div.actions.panel {
                @for p in providers {
                    a.button href=(p.href) { "Sign in with " (p.name) }
                }
            }
            p.muted { "Or with your cooper password and a code:" }
        }
        form method="post" action={ (base) "/signin" } {
            (csrf(token))
            (field("user", "User name", Input { value: user, autocomplete: "username", required: true, ..Input::default() }, error))
            (field("password", "Password", Input { kind: "password", autocomplete: "current-password", required: true, ..Input::default() }, error))
            (code_field("totp", "Code", true, error))
            button type="submit" { "Sign in" }
        }
        p { "New here? " a href={ (base) "/enroll" } { "Enroll with the code your admin gave you" } "." }
    }
}

fn signin_frame(base: &str) -> Frame<'_> {
    Frame {
        base,
        title: "Sign in",
        user: None,
        admin: false,
        nav: Nav::None,
    }
}

pub(super) async fn signin_page(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let base = &state.web.base_path;
    if session::signed_in(&state.web, &headers).await.is_some() {
        return see_other(base, "/targets", Vec::new());
    }
    let (token, cookie) = session::presession(&state.web, &headers);
    Answer::ok(html::layout(
        &signin_frame(base),
        signin_form(base, &token, "", &console_providers(&state), None),
    ))
    .cookie(cookie)
    .into_response()
}

/// A button for each OpenID provider the console may use, then each SAML provider.
fn console_providers(state: &WebState) -> Vec<SignInButton> {
    let base = &state.web.base_path;
    let oidc = state
        .web
        .oidc
        .iter()
        .flat_map(|o| o.console_providers())
        .map(|p| SignInButton {
            href: format!("{base}/signin/oidc/{}", p.index),
            name: p.name,
        });
    let saml = state.web.saml_buttons.iter().map(|b| SignInButton {
        // The API's path, under the same stage as the console.
        href: format!("{base}/v1/saml/{}/login", b.name),
        name: b.label.clone(),
    });
    oidc.chain(saml).collect()
}

/// The sign-in page again, with a refusal.
pub(super) fn signin_refused(
    state: &WebState,
    headers: &HeaderMap,
    status: StatusCode,
    error: FormError,
) -> Response {
    let base = &state.web.base_path;
    let (token, cookie) = session::presession(&state.web, headers);
    let providers = console_providers(state);
    Answer::ok(html::layout(
        &signin_frame(base),
        signin_form(base, &token, "", &providers, Some(&error)),
    ))
    .status(status)
    .cookie(cookie)
    .into_response()
}

fn redirect_uri(state: &WebState, headers: &HeaderMap) -> String {
    format!(
        "{}{}/signin/oidc/callback",
        session::origin(&state.web, headers),
        state.web.base_path
    )
}

fn oidc_refusal(e: crate::oidc::OidcError) -> ApiError {
    ApiError::from(crate::auth::AuthError::Oidc(e))
}

/// Starts the authorization code flow with PKCE at a provider: state, nonce and verifier are
/// made here and kept in an HttpOnly cookie of this browser, to be checked on its way back.
pub(super) async fn oidc_start(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Path(provider): Path<String>,
) -> Response {
    let started = async {
        let oidc = state.web.oidc.as_ref().ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "oidc_not_configured",
                "this deployment has no identity provider for the console",
            )
        })?;
        let index: usize = provider
            .parse()
            .map_err(|_| oidc_refusal(crate::oidc::OidcError::UnknownIssuer))?;
        let code_flow = oidc.code_flow(index).await.map_err(oidc_refusal)?;
        let unavailable = || {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "no randomness to start a sign-in with",
            )
        };
        let flow = session::Flow {
            provider: index,
            state: session::random().ok_or_else(unavailable)?,
            nonce: session::random().ok_or_else(unavailable)?,
            verifier: session::random().ok_or_else(unavailable)?,
        };
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &code_flow.client_id)
            .append_pair("redirect_uri", &redirect_uri(&state, &headers))
            .append_pair("scope", "openid email groups")
            .append_pair("state", &flow.state)
            .append_pair("nonce", &flow.nonce)
            .append_pair("code_challenge", &session::challenge(&flow.verifier))
            .append_pair("code_challenge_method", "S256")
            .finish();
        let separator = if code_flow.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        Ok::<_, ApiError>((
            format!("{}{separator}{query}", code_flow.authorization_endpoint),
            flow,
        ))
    };
    match started.await {
        Ok((location, flow)) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            if let Ok(location) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            if let Some(cookie) = session::flow_cookie(&state.web, &headers, &flow) {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(e) => {
            let (status, error) = refusal(e, &meta);
            signin_refused(&state, &headers, status, error)
        }
    }
}

/// The provider's redirect back: the state must be this browser's, the code is redeemed with
/// the verifier, the ID token verified as any other (issuer, keys, audience, times, domains)
/// and its nonce this flow's; then the same exchange as `POST /v1/sessions/oidc`, for a
/// console session.
pub(super) async fn oidc_callback(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let web = &state.web;
    let signed = async {
        let refused =
            |message: &str| ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", message);
        let flow = session::flow(web, &headers).ok_or_else(|| {
            refused("this sign-in was not started in this browser, or took too long: start again")
        })?;
        if let Some(error) = query.get("error") {
            tracing::info!(%error, "the identity provider refused the sign-in");
            return Err(refused("the identity provider did not sign you in"));
        }
        let presented = query.get("state").map(String::as_str);
        if !session::csrf_matches(&flow.state, presented) {
            return Err(refused(
                "this sign-in was not started in this browser: start again",
            ));
        }
        let code = query
            .get("code")
            .ok_or_else(|| refused("the provider sent no code"))?;
        let oidc = web
            .oidc
            .as_ref()
            .ok_or_else(|| refused("no identity provider is configured"))?;
        let code_flow = oidc.code_flow(flow.provider).await.map_err(oidc_refusal)?;
        let id_token = oidc
            .redeem(
                &code_flow,
                code,
                &redirect_uri(&state, &headers),
                &flow.verifier,
            )
            .await
            .map_err(oidc_refusal)?;
        let identity = oidc.verify(&id_token).await.map_err(oidc_refusal)?;
        let nonce = crate::oidc::nonce_of(&id_token);
        let same_provider = matches!(
            &identity.method,
            cooper_core::access::AuthMethod::IdToken(issuer) if *issuer == code_flow.issuer
        );
        if !same_provider || !session::csrf_matches(&flow.nonce, nonce.as_deref()) {
            return Err(refused("the ID token is not this sign-in's"));
        }
        Ok::<_, ApiError>(web.exchange.exchange(identity, &meta).await?)
    };
    match signed.await {
        Ok(signed) => {
            let mut response = signed_in_page(&state, &headers, &signed);
            if let Some(cookie) = session::clear_flow(web, &headers) {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(e) => {
            let (status, error) = refusal(e, &meta);
            let mut response = signin_refused(&state, &headers, status, error);
            if let Some(cookie) = session::clear_flow(web, &headers) {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            response
        }
    }
}

/// Signed in through an identity provider: the session cookie, and a page that goes on to the
/// targets. A page, not a redirect: the navigation to the targets then starts here, so the
/// SameSite=Strict session cookie goes with it (after a cross-site redirect chain it would not).
pub(super) fn signed_in_page(
    state: &WebState,
    headers: &HeaderMap,
    signed: &cooper_core::sessions::Session,
) -> Response {
    let web = &state.web;
    let base = &web.base_path;
    let body = html! {
        meta http-equiv="refresh" content={ "0;url=" (base) "/targets" };
        p { "Signed in as " strong { (signed.user) } ". " a href={ (base) "/targets" } { "Continue to my targets" } }
    };
    Answer::ok(html::layout(&signin_frame(base), body))
        .cookie(session::session_cookie(web, headers, &signed.token))
        .into_response()
}

pub(super) async fn signin(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let base = &state.web.base_path;
    let form = Form::parse(&headers, &body);
    let expected = session::presession_token(&state.web, &headers);
    let genuine = session::same_origin(&headers)
        && expected
            .as_deref()
            .is_some_and(|t| session::csrf_matches(t, form.as_ref().and_then(|f| f.get("csrf"))));
    let (token, cookie) = session::presession(&state.web, &headers);
    let user_value = form
        .as_ref()
        .and_then(|f| f.owned("user"))
        .unwrap_or_default();
    let render = |status: StatusCode, error: FormError| {
        Answer::ok(html::layout(
            &signin_frame(base),
            signin_form(
                base,
                &token,
                &user_value,
                &console_providers(&state),
                Some(&error),
            ),
        ))
        .status(status)
        .cookie(cookie.clone())
        .into_response()
    };
    let Some(form) = form.filter(|_| genuine) else {
        return render(StatusCode::FORBIDDEN, forged(&meta));
    };
    // A malformed name or code is refused like a wrong one, after the same wait.
    let user = UserName::parse(form.get("user").unwrap_or_default());
    let code = TotpCode::parse(form.get("totp").unwrap_or_default());
    let password = SecretString::from(form.0.get("password").cloned().unwrap_or_default());
    let result = match (user, code) {
        (Ok(user), Ok(code)) => state
            .web
            .login
            .login(&user, &password, &code, &meta)
            .await
            .map_err(ApiError::from),
        _ => Err(ApiError::from(FactorError::InvalidCredentials)),
    };
    match result {
        Ok(signed) => see_other(
            base,
            "/targets",
            session::session_cookie(&state.web, &headers, &signed.token)
                .into_iter()
                .collect(),
        ),
        Err(e) => {
            let (status, mut error) = refusal(e, &meta);
            // Every sign-in refusal is one message: it does not say which part was wrong.
            if error.field == Some("totp") && error.code != "locked_out" {
                error.field = None;
            }
            render(status, error)
        }
    }
}

pub(super) async fn signout(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let web = &state.web;
    // Signing out needs the session's own token too: another site cannot sign anyone out.
    let genuine = session::signed_in(web, &headers).await.filter(|s| {
        session::same_origin(&headers)
            && Form::parse(&headers, &body)
                .is_some_and(|f| session::csrf_matches(&s.csrf, f.get("csrf")))
    });
    let Some(signed) = genuine else {
        return see_other(&web.base_path, "/", Vec::new());
    };
    // The session ends for good, not only in this browser: a copied cookie stops working too.
    if let Err(error) = state
        .enroll
        .shared
        .signout
        .sign_out(&signed.identity, &meta)
        .await
    {
        tracing::warn!(%error, "a console session could not be ended; its cookie is cleared");
    }
    see_other(
        &web.base_path,
        "/signin",
        session::clear_session(web, &headers).into_iter().collect(),
    )
}

// ---------------------------------------------------------------------------------------------
// A first enrollment, with the one-time code an admin issued: an authenticator and a password.

fn enroll_frame(base: &str) -> Frame<'_> {
    Frame {
        base,
        title: "Enroll",
        user: None,
        admin: false,
        nav: Nav::None,
    }
}

fn enroll_form(base: &str, token: &str, error: Option<&FormError>) -> Markup {
    html! {
        p { "Your admin gave you a one-time enrollment code. With it you set up an authenticator app and a password, then sign in." }
        (html::form_alert(error, &["code"]))
        form method="post" action={ (base) "/enroll" } {
            (csrf(token))
            (field("code", "Enrollment code", Input { kind: "password", required: true, hint: Some("It starts with cooper_enroll_"), ..Input::default() }, error))
            button type="submit" { "Continue" }
        }
    }
}

/// The pre-session CSRF check of the pages a browser uses before signing in.
fn genuine_presession(state: &WebState, headers: &HeaderMap, form: Option<&Form>) -> bool {
    let expected = session::presession_token(&state.web, headers);
    session::same_origin(headers)
        && expected
            .as_deref()
            .is_some_and(|t| session::csrf_matches(t, form.and_then(|f| f.get("csrf"))))
}

pub(super) async fn enroll_page(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let base = &state.web.base_path;
    let (token, cookie) = session::presession(&state.web, &headers);
    Answer::ok(html::layout(
        &enroll_frame(base),
        enroll_form(base, &token, None),
    ))
    .cookie(cookie)
    .into_response()
}

/// The identity an enrollment code stands for, as the API's enrollment routes take it.
async fn code_identity(state: &WebState, code: &str) -> Result<Identity, ApiError> {
    if !cooper_core::token::EnrollmentCode::looks_like(code) {
        return Err(ApiError::from(crate::auth::AuthError::Invalid));
    }
    Ok(state
        .enroll
        .shared
        .auth
        .authenticate(Some(&format!("Bearer {code}")))
        .await?)
}

fn enroll_confirm_form(base: &str, token: &str, error: Option<&FormError>) -> Markup {
    html! {
        (html::form_alert(error, &["totp", "password"]))
        form.panel method="post" action={ (base) "/enroll/confirm" } {
            (csrf(token))
            (code_field("totp", "The first code your app shows", true, error))
            (field("password", "A new password", Input { kind: "password", autocomplete: "new-password", required: true, hint: Some("At least 12 characters; not your user name"), ..Input::default() }, error))
            button type="submit" { "Enroll" }
        }
    }
}

pub(super) async fn enroll_start(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let base = &state.web.base_path;
    let form = Form::parse(&headers, &body);
    let (token, cookie) = session::presession(&state.web, &headers);
    let refused = |status: StatusCode, error: FormError| {
        Answer::ok(html::layout(
            &enroll_frame(base),
            enroll_form(base, &token, Some(&error)),
        ))
        .status(status)
        .cookie(cookie.clone())
        .into_response()
    };
    if !genuine_presession(&state, &headers, form.as_ref()) {
        return refused(StatusCode::FORBIDDEN, forged(&meta));
    }
    let code = form
        .as_ref()
        .and_then(|f| f.owned("code"))
        .unwrap_or_default();
    let started = match code_identity(&state, &code).await {
        Ok(identity) => state
            .enroll
            .enrollment
            .start(&identity, None, &meta)
            .await
            .map(|s| (identity, s))
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let (identity, started) = match started {
        Ok(x) => x,
        Err(e) => {
            let (status, mut error) = refusal(e, &meta);
            error.field = Some("code");
            return refused(status, error);
        }
    };
    let body = html! {
        p { "Enrolling " strong { (identity.user) } "." }
        (enrollment_steps(&started))
        (enroll_confirm_form(base, &token, None))
    };
    Answer::ok(html::layout(&enroll_frame(base), body))
        .cookie(cookie)
        .cookie(session::enrolling_cookie(&state.web, &headers, &code))
        .into_response()
}

pub(super) async fn enroll_confirm(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let base = &state.web.base_path;
    let form = Form::parse(&headers, &body);
    let (token, cookie) = session::presession(&state.web, &headers);
    let refused = |status: StatusCode, error: FormError| {
        Answer::ok(html::layout(
            &enroll_frame(base),
            enroll_confirm_form(base, &token, Some(&error)),
        ))
        .status(status)
        .cookie(cookie.clone())
        .into_response()
    };
    if !genuine_presession(&state, &headers, form.as_ref()) {
        return refused(StatusCode::FORBIDDEN, forged(&meta));
    }
    let Some(code) = session::enrolling(&state.web, &headers) else {
        let body = html! { p { "This enrollment has expired. " a href={ (base) "/enroll" } { "Start again" } "." } };
        return Answer::ok(html::layout(&enroll_frame(base), body))
            .status(StatusCode::CONFLICT)
            .into_response();
    };
    let form = form.unwrap_or(Form(HashMap::new()));
    let result = async {
        let identity = code_identity(&state, &code).await?;
        let totp = TotpCode::parse(form.get("totp").unwrap_or_default())?;
        let password = cooper_core::password::NewPassword::parse(
            SecretString::from(form.0.get("password").cloned().unwrap_or_default()),
            &identity.user,
        )?;
        state
            .enroll
            .enrollment
            .confirm(&identity, &totp, Some(&password), &meta)
            .await?;
        Ok::<_, ApiError>(identity.user)
    };
    match result.await {
        Ok(user) => {
            let body = html! {
                div.notice role="status" { "You are enrolled, " (user) ". Sign in with your password and a code." }
                p { a.button href={ (base) "/signin" } { "Sign in" } }
            };
            Answer::ok(html::layout(&enroll_frame(base), body))
                .cookie(session::clear_enrolling(&state.web, &headers))
                .into_response()
        }
        Err(e) => {
            let (status, mut error) = refusal(e, &meta);
            if error.code == "invalid_request" {
                error.field = Some("password");
            }
            refused(status, error)
        }
    }
}
