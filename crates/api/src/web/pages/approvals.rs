//! Asking for a second person, approving, and the requests a browser opened.

#[allow(clippy::wildcard_imports)]
use super::*;

async fn approvals_view(
    state: &WebState,
    ctx: &Ctx,
    error: Option<&FormError>,
    target: &str,
    reason: &str,
) -> Markup {
    // My requests, and the ones asking me that still wait, with their state now.
    let now = state.issue.shared.clock.now();
    let approvals = &state.issue.shared.approvals;
    let views = |found: Vec<cooper_core::model::approvals::ApprovalRequest>| {
        found
            .into_iter()
            .map(|r| ApprovalView::of(r, now))
            .collect::<Vec<_>>()
    };
    let (mine, asking) = tokio::join!(
        approvals.mine(ctx.identity()),
        approvals.asking(ctx.identity())
    );
    let mine = views(mine.unwrap_or_default());
    let waiting: Vec<ApprovalView> = views(asking.unwrap_or_default())
        .into_iter()
        .filter(|v| matches!(v.status, ApprovalState::Pending))
        .collect();
    let gated: Vec<String> = state
        .issue
        .catalog
        .reachable(ctx.identity())
        .await
        .map(|(_, r)| {
            r.into_iter()
                .filter(|t| t.target.requires_approval())
                .map(|t| t.target.name.to_string())
                .collect()
        })
        .unwrap_or_default();
    let base = &ctx.base;
    html! {
        @if !waiting.is_empty() {
            section aria-labelledby="waiting-h" {
                h2 #waiting-h { "Waiting for you" }
                table {
                    thead { tr { th { "Request" } th { "Asked by" } th { "Target" } th { "Why" } th { "Expires" } } }
                    tbody {
                        @for v in &waiting {
                            tr {
                                td { a href={ (base) "/approvals/" (v.id) } { code { (v.id) } } }
                                td { (v.requester) }
                                td { (v.target) }
                                td { (v.reason) }
                                td { (v.expires_at.format(&Rfc3339).unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="ask-h" {
            h2 #ask-h { "Ask for a second person's approval" }
            p.hint {
                "An approval is a second person for one use of a target you hold; for time-bound access to something you don't hold, "
                a href={ (base) "/access-requests" } { "ask for access" } "."
            }
            @if gated.is_empty() {
                p { "None of your targets needs a second person." }
            } @else {
                (html::form_alert(error, &["reason"]))
                form.panel method="post" action={ (base) "/approvals" } {
                    (csrf(&ctx.session.csrf))
                    div.field {
                        label for="f-target" { "Target" }
                        select #f-target name="target" {
                            @for name in &gated { option value=(name) selected[name == target] { (name) } }
                        }
                    }
                    (field("reason", "Why", Input { value: reason, required: true, hint: Some("The approvers see this, and so does the audit trail"), ..Input::default() }, error))
                    button type="submit" { "Ask" }
                }
                p.hint { "The approvers are told. Send them the request's page; once approved, use it within its hour." }
            }
        }
        @if !mine.is_empty() {
            section aria-labelledby="mine-h" {
                h2 #mine-h { "Your requests" }
                table {
                    thead { tr { th { "Request" } th { "Target" } th { "State" } th { "Expires" } } }
                    tbody {
                        @for v in &mine {
                            tr {
                                td { a href={ (base) "/approvals/" (v.id) } { code { (v.id) } } }
                                td { (v.target) }
                                td { (state_words(v.status)) }
                                td { (v.expires_at.format(&Rfc3339).unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="find-h" {
            h2 #find-h { "Open a request" }
            form.inline method="get" action={ (base) "/approvals" } {
                div.field {
                    label for="f-id" { "Request id" }
                    input #f-id name="id" autocomplete="off" required;
                }
                button.secondary type="submit" { "Open" }
            }
        }
    }
}

pub(super) async fn approvals_page(
    State(state): State<WebState>,
    ctx: Ctx,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(id) = query.get("id").map(|i| i.trim()).filter(|i| !i.is_empty()) {
        if let Ok(id) = ApprovalId::parse(id) {
            return see_other(&ctx.base, &format!("/approvals/{id}"), Vec::new());
        }
        let e = ApiError::from(cooper_core::approval::ApprovalError::NotFound);
        return error_page(&ctx, "Approvals", Nav::Approvals, e);
    }
    let body = approvals_view(&state, &ctx, None, "", "").await;
    ctx.page("Approvals", Nav::Approvals, body).into_response()
}

pub(super) async fn approvals_open(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (ctx, form) = match signed_in_form(&state, &headers, meta, &body).await {
        Ok(x) => x,
        Err(answer) => return answer,
    };
    let target = form.owned("target").unwrap_or_default();
    let reason = form.owned("reason").unwrap_or_default();
    let opened = match (TargetName::parse(&target), Reason::parse(&reason)) {
        (Ok(t), Ok(r)) => state
            .issue
            .shared
            .approvals
            .open(ctx.identity(), &t, &r, &ctx.meta)
            .await
            .map_err(ApiError::from),
        (Err(e), _) | (_, Err(e)) => Err(ApiError::from(e)),
    };
    match opened {
        Ok(request) => see_other(&ctx.base, &format!("/approvals/{}", request.id), Vec::new()),
        Err(e) => {
            let (status, error) = refusal(e, &ctx.meta);
            let body = approvals_view(&state, &ctx, Some(&error), &target, &reason).await;
            ctx.page("Approvals", Nav::Approvals, body)
                .status(status)
                .into_response()
        }
    }
}

fn state_words(state: ApprovalState) -> &'static str {
    match state {
        ApprovalState::Pending => "waiting for an approver",
        ApprovalState::Approved => "approved: the requester may use it once",
        ApprovalState::Used => "used",
        ApprovalState::Expired => "expired",
    }
}

fn approval_view(
    ctx: &Ctx,
    view: &ApprovalView,
    error: Option<&FormError>,
    notice: Option<&str>,
) -> Markup {
    let base = &ctx.base;
    let mine = view.requester == ctx.session.identity.user.as_str();
    let state = state_words(view.status);
    html! {
        @if let Some(n) = notice { div.notice role="status" { (n) } }
        dl {
            dt { "Request" } dd { code { (view.id) } }
            dt { "Target" } dd { (view.target) }
            dt { "Asked by" } dd { (view.requester) }
            dt { "Why" } dd { (view.reason) }
            dt { "State" } dd { strong { (state) } }
            dt { "Expires" } dd { (view.expires_at.format(&Rfc3339).unwrap_or_default()) }
            @if let Some(by) = &view.approved_by { dt { "Approved by" } dd { (by) } }
        }
        @if matches!(view.status, ApprovalState::Pending) && !mine {
            (html::form_alert(error, &["totp"]))
            form.panel method="post" action={ (base) "/approvals/" (view.id) "/approve" } {
                (csrf(&ctx.session.csrf))
                (code_field("totp", "Your code, to approve", true, error))
                button type="submit" { "Approve" }
            }
        } @else {
            // No form to put it under (approved meanwhile, expired, or the requester's own):
            // the refusal is said all the same.
            (html::form_alert(error, &[]))
        }
        @if matches!(view.status, ApprovalState::Approved) && mine {
            p { a.button href={ (base) "/targets/" (view.target) "?approval_id=" (view.id) } { "Use it: console or credentials" } }
        }
        @if matches!(view.status, ApprovalState::Pending) && mine {
            p.hint { "Send this page's address to an approver. Reload to see its state." }
        }
    }
}

pub(super) async fn approval_page(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Response {
    let viewed = match ApprovalId::parse(&id) {
        Ok(id) => state
            .issue
            .shared
            .approvals
            .view(&id, ctx.identity())
            .await
            .map_err(ApiError::from),
        Err(_) => Err(ApiError::from(
            cooper_core::approval::ApprovalError::NotFound,
        )),
    };
    match viewed {
        Ok(request) => {
            let view = ApprovalView::of(request, state.issue.shared.clock.now());
            ctx.page(
                "Approval request",
                Nav::Approvals,
                approval_view(&ctx, &view, None, None),
            )
            .into_response()
        }
        Err(e) => error_page(&ctx, "Approval request", Nav::Approvals, e),
    }
}

pub(super) async fn approval_approve(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (ctx, form) = match signed_in_form(&state, &headers, meta, &body).await {
        Ok(x) => x,
        Err(answer) => return answer,
    };
    let Ok(id) = ApprovalId::parse(&id) else {
        return error_page(
            &ctx,
            "Approval request",
            Nav::Approvals,
            ApiError::from(cooper_core::approval::ApprovalError::NotFound),
        );
    };
    let approvals = &state.issue.shared.approvals;
    let result = match TotpCode::parse(form.get("totp").unwrap_or_default()) {
        Ok(code) => approvals
            .approve(&id, ctx.identity(), &code, &ctx.meta)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(ApiError::from(e)),
    };
    let now = state.issue.shared.clock.now();
    match result {
        Ok(request) => {
            let view = ApprovalView::of(request, now);
            ctx.page(
                "Approval request",
                Nav::Approvals,
                approval_view(&ctx, &view, None, Some("Approved.")),
            )
            .into_response()
        }
        Err(e) => {
            let (status, error) = refusal(e, &ctx.meta);
            let body = match approvals.view(&id, ctx.identity()).await {
                Ok(request) => {
                    approval_view(&ctx, &ApprovalView::of(request, now), Some(&error), None)
                }
                Err(_) => html::form_alert(Some(&error), &[]),
            };
            ctx.page("Approval request", Nav::Approvals, body)
                .status(status)
                .into_response()
        }
    }
}
