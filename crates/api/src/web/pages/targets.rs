//! My targets, a target's page, the console hand-off and credentials.

#[allow(clippy::wildcard_imports)]
use super::*;

struct Listed {
    view: TargetView,
    recent: Option<usize>,
}

async fn my_targets(
    state: &WebState,
    ctx: &Ctx,
    headers: &HeaderMap,
) -> Result<Vec<Listed>, ApiError> {
    let (_, reachable): (_, Vec<ReachableTarget>) =
        state.issue.catalog.reachable(ctx.identity()).await?;
    let accounts = state.issue.catalog.accounts_of(&reachable).await?;
    let recent = session::recent(&state.web, headers);
    let mut listed: Vec<Listed> = reachable
        .into_iter()
        .map(|r| {
            let position = recent.iter().position(|n| *n == r.target.name);
            Listed {
                view: TargetView::of(r, &accounts),
                recent: position,
            }
        })
        .collect();
    // The ones used recently first (most recent on top), then by name.
    listed.sort_by(|a, b| {
        (a.recent.is_none(), a.recent, &a.view.name).cmp(&(
            b.recent.is_none(),
            b.recent,
            &b.view.name,
        ))
    });
    Ok(listed)
}

fn needs(view: &TargetView) -> Markup {
    html! {
        span.tags {
            @if view.high_security { span { "code needed" } }
            @if view.requires_approval { span { "second person needed" } }
            @if !view.high_security && !view.requires_approval { span { "no extra step" } }
        }
    }
}

fn account_label(view: &TargetView) -> Markup {
    html! {
        @if let Some(name) = &view.account_name { (name) br; }
        code { (view.account_id) }
    }
}

fn search_text(view: &TargetView) -> String {
    format!(
        "{} {} {} {} {}",
        view.name,
        view.account_id,
        view.account_name.as_deref().unwrap_or_default(),
        view.partition,
        view.description.as_deref().unwrap_or_default()
    )
    .to_lowercase()
}

pub(super) async fn targets_page(
    State(state): State<WebState>,
    ctx: Ctx,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let listed = match my_targets(&state, &ctx, &headers).await {
        Ok(listed) => listed,
        Err(e) => return error_page(&ctx, "My targets", Nav::Targets, e),
    };
    let q = query
        .get("q")
        .map(|q| q.trim().to_lowercase())
        .unwrap_or_default();
    let words: Vec<&str> = q.split_whitespace().collect();
    let shown: Vec<&Listed> = listed
        .iter()
        .filter(|l| {
            let text = search_text(&l.view);
            words.iter().all(|w| text.contains(w))
        })
        .collect();
    let base = &ctx.base;
    let body = html! {
        form.inline role="search" method="get" action={ (base) "/targets" } {
            div.field {
                label for="q" { "Search" }
                input #q type="search" name="q" value=(q) autocomplete="off";
            }
            button.secondary type="submit" { "Search" }
        }
        @if listed.is_empty() {
            p { "No target is granted to you yet. Ask an admin for a grant." }
        } @else if shown.is_empty() {
            p { "None of your targets matches “" (q) "”." }
        } @else {
            table.targets {
                caption.muted { (shown.len()) " of " (listed.len()) " targets; recently used first" }
                thead { tr { th { "Target" } th { "Account" } th { "Partition" } th { "Level" } th { "Needs" } th { "Open" } } }
                tbody {
                    @for l in &shown {
                        @let v = &l.view;
                        tr data-search=(search_text(v)) {
                            td {
                                a href={ (base) "/targets/" (v.name) } { strong { (v.name) } }
                                @if let Some(d) = &v.description { br; span.muted { (d) } }
                                @if l.recent.is_some() { br; span.muted { "used recently" } }
                            }
                            td data-label="Account" { (account_label(v)) }
                            td data-label="Partition" { (v.partition) }
                            td data-label="Level" { (v.level) }
                            td data-label="Needs" { (needs(v)) }
                            td {
                                div.actions {
                                    @if v.requires_approval {
                                        a.button href={ (base) "/targets/" (v.name) } { "Console or credentials…" }
                                    } @else {
                                        form method="post" action={ (base) "/console" } target="_blank" {
                                            (csrf(&ctx.session.csrf))
                                            input type="hidden" name="target" value=(v.name);
                                            @if v.high_security {
                                                div.inline {
                                                    div.field {
                                                        label for={ "code-" (v.name) } { "Code" }
                                                        input id={ "code-" (v.name) } name="totp" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" autocomplete="one-time-code" required;
                                                    }
                                                    button type="submit" { "Open console" }
                                                }
                                            } @else {
                                                button type="submit" { "Open console" }
                                            }
                                        }
                                        a href={ (base) "/targets/" (v.name) } { "Credentials…" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        p.hint { "Need something you don't have? " a href={ (base) "/access-requests" } { "Ask for access" } "." }
    };
    ctx.page("My targets", Nav::Targets, body).into_response()
}

/// The destinations offered for a target's partition (the console's home first).
fn destinations(partition: Partition) -> Vec<(String, &'static str)> {
    let domain = partition.console_domain();
    [
        ("console/home", "Console home"),
        ("ec2/home", "EC2"),
        ("s3/home", "S3"),
        ("iam/home", "IAM"),
        ("cloudwatch/home", "CloudWatch"),
        ("lambda/home", "Lambda"),
        ("cloudformation/home", "CloudFormation"),
        ("billing/home", "Billing"),
    ]
    .into_iter()
    .map(|(path, label)| (format!("https://{domain}/{path}"), label))
    .collect()
}

/// The fields a target's forms ask for, beyond the target: a code, a second person.
fn proof_fields(
    scope: &str,
    view: &TargetView,
    approval_id: &str,
    error: Option<&FormError>,
) -> Markup {
    html! {
        @if view.high_security {
            (scoped_code_field(scope, "totp", "Your code", true, error))
        }
        @if view.requires_approval {
            fieldset {
                legend { "A second person's approval" }
                p.hint { "Either an approved request's id, or an approver next to you with their code." }
                (field("approval_id", "Approved request id", Input { value: approval_id, scope, ..Input::default() }, error))
                (field("approver", "Or: approver's user name", Input { scope, ..Input::default() }, error))
                (scoped_code_field(scope, "approver_totp", "Approver's code", false, error))
                @if !view.approvers.is_empty() {
                    p.hint { "Who may approve: " (view.approvers.join(", ")) }
                }
            }
        }
    }
}

fn durations(max: u32) -> Vec<(u32, &'static str)> {
    [
        (900, "15 minutes"),
        (3600, "1 hour"),
        (4 * 3600, "4 hours"),
        (8 * 3600, "8 hours"),
        (12 * 3600, "12 hours"),
    ]
    .into_iter()
    .filter(|(s, _)| *s <= max)
    .collect()
}

fn target_forms(
    ctx: &Ctx,
    view: &TargetView,
    approval_id: &str,
    error: Option<&FormError>,
    which: &str,
) -> Markup {
    let base = &ctx.base;
    let partition = Partition::parse(&view.partition).unwrap_or_default();
    let in_console = which == "console";
    html! {
        dl {
            dt { "Account" } dd { (account_label(view)) }
            dt { "Partition" } dd { (view.partition) }
            dt { "Level" } dd { (view.level) }
            @if let Some(arn) = &view.role_arn { dt { "Role" } dd { code { (arn) } } }
            dt { "Needs" } dd { (needs(view)) }
            dt { "Granted by" } dd { (view.granted_by.join(", ")) }
        }
        section aria-labelledby="console-h" {
            h2 #console-h { "Open the AWS console" }
            @if in_console { (html::form_alert(error, &["totp", "approver", "approver_totp", "approval_id"])) }
            form.panel method="post" action={ (base) "/console" } {
                (csrf(&ctx.session.csrf))
                input type="hidden" name="target" value=(view.name);
                div.field {
                    label for="f-destination" { "Open at" }
                    select #f-destination name="destination" {
                        @for (url, label) in destinations(partition) { option value=(url) { (label) } }
                    }
                }
                (field("destination_url", "Or a console URL", Input { hint: Some("Any page on the partition's console"), ..Input::default() }, if in_console { error } else { None }))
                (proof_fields("console-", view, approval_id, if in_console { error } else { None }))
                button type="submit" { "Open console" }
            }
        }
        section aria-labelledby="credentials-h" {
            h2 #credentials-h { "Get credentials" }
            @if !in_console { (html::form_alert(error, &["totp", "approver", "approver_totp", "approval_id", "duration"])) }
            form.panel method="post" action={ (base) "/credentials" } {
                (csrf(&ctx.session.csrf))
                input type="hidden" name="target" value=(view.name);
                div.field {
                    label for="f-duration" { "For" }
                    select #f-duration name="duration" {
                        @for (seconds, label) in durations(view.max_duration_seconds) {
                            option value=(seconds) selected[seconds == 3600] { (label) }
                        }
                    }
                    p.hint { "At most " (view.max_duration_seconds / 60) " minutes for this target." }
                }
                (proof_fields("credentials-", view, approval_id, if in_console { None } else { error }))
                button type="submit" { "Get credentials" }
            }
        }
    }
}

async fn find_target(
    state: &WebState,
    ctx: &Ctx,
    headers: &HeaderMap,
    name: &str,
) -> Result<Option<TargetView>, ApiError> {
    Ok(my_targets(state, ctx, headers)
        .await?
        .into_iter()
        .map(|l| l.view)
        .find(|v| v.name == name))
}

fn not_yours(ctx: &Ctx, name: &str) -> Response {
    let body = html! {
        p { "“" (name) "” is not one of your targets." }
        p { a href={ (ctx.base) "/targets" } { "Your targets" } }
    };
    ctx.page("Not found", Nav::Targets, body)
        .status(StatusCode::NOT_FOUND)
        .into_response()
}

pub(super) async fn target_page(
    State(state): State<WebState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    match find_target(&state, &ctx, &headers, &name).await {
        Ok(Some(view)) => {
            let approval_id = query
                .get("approval_id")
                .map(String::as_str)
                .unwrap_or_default();
            let body = target_forms(&ctx, &view, approval_id, None, "");
            ctx.page(&view.name, Nav::Targets, body).into_response()
        }
        Ok(None) => not_yours(&ctx, &name),
        Err(e) => error_page(&ctx, "Target", Nav::Targets, e),
    }
}

/// The JSON route's request body, from a form: the same parsing, the same checks.
fn request_body(form: &Form, console: bool) -> CredentialsBody {
    CredentialsBody {
        target: form.owned("target").unwrap_or_default(),
        duration_seconds: form.get("duration").and_then(|d| d.parse().ok()),
        totp: form.owned("totp"),
        approver: form.owned("approver"),
        approver_totp: form.owned("approver_totp"),
        approval_id: form.owned("approval_id"),
        console,
        destination: if console {
            form.owned("destination_url")
                .or_else(|| form.owned("destination"))
        } else {
            None
        },
    }
}

/// Issues for a form (console or credentials); on a refusal, the target's page with the words.
async fn issue(
    state: &WebState,
    ctx: &Ctx,
    headers: &HeaderMap,
    form: &Form,
    console: bool,
) -> Result<Issuance, Response> {
    let name = form.owned("target").unwrap_or_default();
    let issued = match request_body(form, console).parse() {
        Ok(request) => {
            crate::metrics::note_target(&request.target);
            state
                .issue
                .issuer
                .issue(ctx.identity(), &request, &ctx.meta)
                .await
                .map_err(ApiError::from)
        }
        Err(e) => Err(e),
    };
    match issued {
        Ok(issuance) => {
            crate::metrics::count(crate::metrics::Counter::Issuances);
            tracing::info!(user = %ctx.session.identity.user, target = %issuance.target.name, access_key_id = %issuance.credentials.access_key_id, console, "issued through the web console");
            Ok(issuance)
        }
        Err(e) => {
            let (status, error) = refusal(e, &ctx.meta);
            let view = find_target(state, ctx, headers, &name).await.ok().flatten();
            let which = if console { "console" } else { "credentials" };
            let body = match &view {
                Some(view) => target_forms(
                    ctx,
                    view,
                    form.get("approval_id").unwrap_or_default(),
                    Some(&error),
                    which,
                ),
                None => html::form_alert(Some(&error), &[]),
            };
            Err(ctx
                .page(
                    view.as_ref().map_or("Target", |v| v.name.as_str()),
                    Nav::Targets,
                    body,
                )
                .status(status)
                .into_response())
        }
    }
}

pub(super) async fn console(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (ctx, form) = match signed_in_form(&state, &headers, meta, &body).await {
        Ok(x) => x,
        Err(answer) => return answer,
    };
    let issuance = match issue(&state, &ctx, &headers, &form, true).await {
        Ok(i) => i,
        Err(answer) => return answer,
    };
    let link = issuance
        .console_url
        .as_ref()
        .map(|u| u.expose_secret())
        .unwrap_or_default();
    // The link is posted, not followed: its sign-in token never sits in the address bar, the
    // history or a Referer.
    let Some((action, fields)) = split_link(link) else {
        return error_page(
            &ctx,
            "Console",
            Nav::Targets,
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "upstream_invalid",
                "the sign-in link could not be read",
            ),
        );
    };
    let body = html! {
        p { "Opening the AWS console as " strong { (issuance.target.name) } " in account " code { (issuance.target.account) } "…" }
        form method="post" action=(action) data-autosubmit {
            @for (name, value) in &fields { input type="hidden" name=(name) value=(value); }
            button type="submit" { "Continue to the AWS console" }
        }
        p.hint { "The sign-in link works once, within 15 minutes." }
    };
    ctx.page("Opening the console", Nav::Targets, body)
        .cookie(session::remember(
            &state.web,
            &headers,
            &issuance.target.name,
        ))
        .into_response()
}

/// A sign-in link's address without its query, and the query's fields.
fn split_link(link: &str) -> Option<(String, Vec<(String, String)>)> {
    let (action, query) = link.split_once('?')?;
    if !(action.starts_with("https://") || action.starts_with("http://")) {
        return None;
    }
    Some((
        action.to_owned(),
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect(),
    ))
}

pub(super) async fn credentials(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (ctx, form) = match signed_in_form(&state, &headers, meta, &body).await {
        Ok(x) => x,
        Err(answer) => return answer,
    };
    let issuance = match issue(&state, &ctx, &headers, &form, false).await {
        Ok(i) => i,
        Err(answer) => return answer,
    };
    let c = &issuance.credentials;
    let name = issuance.target.name.as_str();
    let secret = c.secret_access_key.expose_secret();
    let token = c.session_token.expose_secret();
    let expiration = c.expiration.format(&Rfc3339).unwrap_or_default();
    let exports = format!(
        "export AWS_ACCESS_KEY_ID={}\nexport AWS_SECRET_ACCESS_KEY={secret}\nexport AWS_SESSION_TOKEN={token}",
        c.access_key_id
    );
    let ini = format!(
        "[{name}]\naws_access_key_id = {}\naws_secret_access_key = {secret}\naws_session_token = {token}",
        c.access_key_id
    );
    let process =
        format!("[profile {name}]\ncredential_process = cooper credential-process {name}");
    let body = html! {
        div.notice role="status" {
            "Credentials for " strong { (name) } " in account " code { (issuance.target.account) }
            ", valid until " time datetime=(expiration) { (expiration) } "."
            @if let Some(approver) = &issuance.approved_by { " Approved by " (approver) "." }
        }
        p { strong { "Shown once." } " They are not kept by cooper nor by this page: copy them now." }
        dl {
            dt { "Principal" } dd { code { (c.principal_arn) } }
            dt { "Access key id" } dd { code #akid { (c.access_key_id) } }
        }
        (copyable("exports", "Shell (bash, zsh)", &exports))
        (copyable("ini", "~/.aws/credentials", &ini))
        (copyable("process", "Or let the AWS CLI ask cooper each time (~/.aws/config)", &process))
        p { a href={ (ctx.base) "/targets" } { "Back to my targets" } }
    };
    ctx.page("Credentials", Nav::Targets, body)
        .cookie(session::remember(
            &state.web,
            &headers,
            &issuance.target.name,
        ))
        .into_response()
}
