//! The authenticator: enroll, re-enroll.

#[allow(clippy::wildcard_imports)]
use super::*;

async fn authenticator_view(state: &WebState, ctx: &Ctx, error: Option<&FormError>) -> Markup {
    let enrolled = state
        .enroll
        .shared
        .second_factor
        .store
        .factors(&ctx.session.identity.user)
        .await
        .map(|f| f.totp.is_some());
    let base = &ctx.base;
    html! {
        @match enrolled {
            Ok(true) => p { "Your authenticator is enrolled. To move to a new one, enroll again with a code from the current one." },
            Ok(false) => p { "You have no authenticator yet. Enroll one to sign in and to use targets that need a code." },
            Err(_) => p.muted { "Whether you have an authenticator could not be read just now." },
        }
        (html::form_alert(error, &["totp"]))
        form.panel method="post" action={ (base) "/authenticator" } {
            (csrf(&ctx.session.csrf))
            @if matches!(enrolled, Ok(true)) {
                (code_field("totp", "A code from your current authenticator", true, error))
            }
            button type="submit" { @if matches!(enrolled, Ok(true)) { "Enroll a new authenticator" } @else { "Enroll an authenticator" } }
        }
    }
}

pub(super) async fn authenticator_page(State(state): State<WebState>, ctx: Ctx) -> Response {
    let body = authenticator_view(&state, &ctx, None).await;
    ctx.page("Authenticator", Nav::Authenticator, body)
        .into_response()
}

fn confirm_form(ctx: &Ctx, error: Option<&FormError>) -> Markup {
    html! {
        (html::form_alert(error, &["totp"]))
        form.panel method="post" action={ (ctx.base) "/authenticator/confirm" } {
            (csrf(&ctx.session.csrf))
            (code_field("totp", "The first code your app shows", true, error))
            button type="submit" { "Confirm" }
        }
    }
}

pub(super) async fn authenticator_start(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (ctx, form) = match signed_in_form(&state, &headers, meta, &body).await {
        Ok(x) => x,
        Err(answer) => return answer,
    };
    let code = match form.get("totp").map(TotpCode::parse).transpose() {
        Ok(code) => code,
        Err(e) => return authenticator_refused(&state, &ctx, ApiError::from(e)).await,
    };
    let started = match state
        .enroll
        .enrollment
        .start(&ctx.session.identity, code.as_ref(), &ctx.meta)
        .await
    {
        Ok(s) => s,
        Err(e) => return authenticator_refused(&state, &ctx, ApiError::from(e)).await,
    };
    let body = html! {
        (enrollment_steps(&started))
        (confirm_form(&ctx, None))
    };
    ctx.page("Enroll an authenticator", Nav::Authenticator, body)
        .into_response()
}

/// The new secret, as a QR code and as text to type, and what to do with it.
pub(super) fn enrollment_steps(started: &cooper_core::factors::StartedEnrollment) -> Markup {
    let uri = started.provisioning_uri.expose_secret();
    let secret = started.secret_base32.expose_secret();
    let grouped: Vec<String> = secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let qr = qr::png(uri).map(|png| format!("data:image/png;base64,{}", STANDARD.encode(png)));
    html! {
        ol {
            li {
                "Scan this code with your authenticator app"
                @if let Some(src) = &qr { br; img.qr src=(src) alt="QR code of the new authenticator secret" width="192" height="192"; }
            }
            li {
                "Or type this secret into it (time-based, 6 digits, 30 seconds): "
                br; span.secret #secret { (grouped.join(" ")) }
            }
            li { "Then enter the first code it shows." }
        }
        p.hint { "This secret waits for its first code until " (started.expires_at.format(&Rfc3339).unwrap_or_default()) "." }
    }
}

async fn authenticator_refused(state: &WebState, ctx: &Ctx, e: ApiError) -> Response {
    let (status, error) = refusal(e, &ctx.meta);
    let body = authenticator_view(state, ctx, Some(&error)).await;
    ctx.page("Authenticator", Nav::Authenticator, body)
        .status(status)
        .into_response()
}

pub(super) async fn authenticator_confirm(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (ctx, form) = match signed_in_form(&state, &headers, meta, &body).await {
        Ok(x) => x,
        Err(answer) => return answer,
    };
    let result = match TotpCode::parse(form.get("totp").unwrap_or_default()) {
        Ok(code) => state
            .enroll
            .enrollment
            .confirm(&ctx.session.identity, &code, None, &ctx.meta)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(ApiError::from(e)),
    };
    match result {
        Ok(()) => {
            let body = html! {
                div.notice role="status" { "Your authenticator is enrolled." }
                p { a href={ (ctx.base) "/targets" } { "Go to my targets" } }
            };
            ctx.page("Authenticator", Nav::Authenticator, body)
                .into_response()
        }
        Err(e) => {
            let (status, error) = refusal(e, &ctx.meta);
            ctx.page(
                "Enroll an authenticator",
                Nav::Authenticator,
                confirm_form(&ctx, Some(&error)),
            )
            .status(status)
            .into_response()
        }
    }
}
