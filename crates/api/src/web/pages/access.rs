//! Just-in-time access: the requests waiting for me, asking for access I do not hold, my
//! requests, and a request's page with the actions that apply to whoever views it.

#[allow(clippy::wildcard_imports)]
use super::*;

use cooper_core::model::requests::{AccessRequest, RequestStatus};
use cooper_core::requests::{AccessAsk, RequestRole};

use crate::routes::access_requests::{AccessRequestView, OpenBody, request_id};

const TITLE: &str = "Access requests";
const REQUEST_TITLE: &str = "Access request";

/// How long to ask for: the common choices (anything else, in seconds, in its own field).
const ASK_FOR: [(u32, &str); 4] = [
    (3600, "1 hour"),
    (2 * 3600, "2 hours"),
    (4 * 3600, "4 hours"),
    (8 * 3600, "8 hours"),
];

/// Shorter than asked, for an approver who gives less.
const GIVE_AT_MOST: [u32; 6] = [900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600];

fn status_words(status: RequestStatus) -> &'static str {
    match status {
        RequestStatus::Pending => "waiting for an approver",
        RequestStatus::Approved => "approved: the access is live",
        RequestStatus::Denied => "denied",
        RequestStatus::Cancelled => "withdrawn",
        RequestStatus::Expired => "lapsed: nobody acted in time",
        RequestStatus::Ended => "ended",
    }
}

fn seconds_words(seconds: u32) -> String {
    let plural = |n: u32, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
    if seconds.is_multiple_of(3600) {
        plural(seconds / 3600, "hour")
    } else if seconds.is_multiple_of(60) {
        plural(seconds / 60, "minute")
    } else {
        plural(seconds, "second")
    }
}

/// A moment, to the second.
fn when(at: time::OffsetDateTime) -> Markup {
    let at = at.replace_nanosecond(0).unwrap_or(at);
    let text = at.format(&Rfc3339).unwrap_or_default();
    html! { time datetime=(text) { (text) } }
}

/// What a request asks for, in words.
fn what(view: &AccessRequestView) -> Markup {
    html! {
        @match (&view.target, view.level) {
            (Some(target), _) => { "target " strong { (target) } " in account " code { (view.account_id) } }
            (None, level) => {
                "account " code { (view.account_id) } "'s targets up to level " (level.unwrap_or_default())
            }
        }
    }
}

/// The error, if it is on `name` (for inputs `field` does not draw).
fn error_on<'a>(error: Option<&'a FormError>, name: &str) -> Option<&'a FormError> {
    error.filter(|e| e.field == Some(name))
}

/// A labelled select with its refusal under it, as `field` draws an input.
fn select(
    id: &str,
    name: &str,
    label: &str,
    options: &[(String, String)],
    selected: &str,
    hint: Option<&str>,
    error: Option<&FormError>,
) -> Markup {
    let invalid = error_on(error, name);
    let hint_id = format!("{id}-hint");
    let error_id = format!("{id}-error");
    let described: Vec<&str> = [
        hint.map(|_| hint_id.as_str()),
        invalid.map(|_| error_id.as_str()),
    ]
    .into_iter()
    .flatten()
    .collect();
    let described = (!described.is_empty()).then(|| described.join(" "));
    html! {
        div.field {
            label for=(id) { (label) }
            select id=(id) name=(name) aria-invalid=[invalid.map(|_| "true")]
                aria-describedby=[described.as_deref()] {
                @for (value, text) in options { option value=(value) selected[value == selected] { (text) } }
            }
            @if let Some(hint) = hint { p.hint id=(hint_id) { (hint) } }
            @if let Some(e) = invalid {
                p.error id=(error_id) {
                    (e.message) " "
                    span.muted { "(code " code { (e.code) } ", request " code { (e.request_id) } ")" }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The list and the form to ask

/// What the ask form holds (as typed, for showing it again with a refusal).
#[derive(Default)]
struct Asked {
    target: String,
    account_id: String,
    level: String,
    duration: String,
    duration_seconds: String,
    reason: String,
}

impl Asked {
    fn of(form: &Form) -> Self {
        let get = |name: &str| form.owned(name).unwrap_or_default();
        Self {
            target: get("target"),
            account_id: get("account_id"),
            level: get("level"),
            duration: get("duration"),
            duration_seconds: get("duration_seconds"),
            reason: get("reason"),
        }
    }

    fn by_account(&self) -> bool {
        self.target.is_empty() && !self.account_id.is_empty()
    }

    /// The seconds asked for: the typed number if there is one, else the choice.
    fn seconds(&self) -> Result<Option<u64>, ApiError> {
        let raw = if self.duration_seconds.is_empty() {
            &self.duration
        } else {
            &self.duration_seconds
        };
        if raw.is_empty() {
            return Ok(None);
        }
        raw.parse().map(Some).map_err(|_| {
            ApiError::bad_request(
                "invalid_duration",
                "the duration must be a number of seconds",
            )
        })
    }

    /// The JSON route's body, from the form: the same parsing, the same checks.
    fn ask(&self) -> Result<AccessAsk, (ApiError, Option<&'static str>)> {
        let duration_seconds = self
            .seconds()
            .map_err(|e| (e, Some(self.duration_field())))?;
        let level = if self.level.is_empty() {
            None
        } else {
            let level = self.level.parse().map_err(|_| {
                (
                    ApiError::bad_request("invalid_request", "level must be a number from 0"),
                    Some("level"),
                )
            })?;
            Some(level)
        };
        let body = OpenBody {
            target: (!self.target.is_empty()).then(|| self.target.clone()),
            account_id: (!self.account_id.is_empty()).then(|| self.account_id.clone()),
            level,
            duration_seconds,
            reason: self.reason.clone(),
        };
        AccessAsk::try_from(body).map_err(|e| {
            let field = match e.field {
                "target" if self.by_account() => "account_id",
                "target" => "target",
                "account_id" => "account_id",
                "level" => "level",
                _ => "reason",
            };
            (ApiError::from(e), Some(field))
        })
    }

    fn duration_field(&self) -> &'static str {
        if self.duration_seconds.is_empty() {
            "duration"
        } else {
            "duration_seconds"
        }
    }

    /// The field of the form a refusal of the use case is about.
    fn field_of(&self, code: &str) -> Option<&'static str> {
        match code {
            "not_requestable" | "already_granted" | "request_pending" | "invalid_target" => {
                Some(if self.by_account() {
                    "account_id"
                } else {
                    "target"
                })
            }
            "invalid_duration" => Some(self.duration_field()),
            "invalid_reason" => Some("reason"),
            other => field_of(other),
        }
    }
}

fn ask_form(ctx: &Ctx, asked: &Asked, error: Option<&FormError>) -> Markup {
    let base = &ctx.base;
    let choices: Vec<(String, String)> = ASK_FOR
        .iter()
        .map(|(s, label)| (s.to_string(), (*label).to_owned()))
        .collect();
    let chosen = if asked.duration.is_empty() {
        "3600"
    } else {
        asked.duration.as_str()
    };
    html! {
        (html::form_alert(error, &["target", "account_id", "level", "duration", "duration_seconds", "reason"]))
        form.panel method="post" action={ (base) "/access-requests" } {
            (csrf(&ctx.session.csrf))
            (field("target", "Target", Input { value: &asked.target, hint: Some("The target's name, as an admin or a colleague gave it to you"), ..Input::default() }, error))
            fieldset {
                legend { "Or an account's targets, up to a level" }
                (field("account_id", "Account id", Input { value: &asked.account_id, hint: Some("12 digits"), ..Input::default() }, error))
                (field("level", "Up to level", Input { kind: "number", value: &asked.level, ..Input::default() }, error))
            }
            (select("f-duration", "duration", "For", &choices, chosen, None, error))
            (field("duration_seconds", "Or a number of seconds", Input { kind: "number", value: &asked.duration_seconds, hint: Some("900 at least; at most what the target allows"), ..Input::default() }, error))
            (field("reason", "Why", Input { value: &asked.reason, required: true, hint: Some("The approvers see this, and so does the audit trail"), ..Input::default() }, error))
            button type="submit" { "Ask for access" }
        }
        p.hint { "The approvers the target (or its account) names are told; one of them approves with their own code, and the access ends by itself when its time is up." }
    }
}

fn requests_table(ctx: &Ctx, views: &[AccessRequestView], waiting: bool) -> Markup {
    let base = &ctx.base;
    html! {
        table {
            thead {
                tr {
                    th { "Request" }
                    @if waiting { th { "Asked by" } }
                    th { "For" } th { "How long" }
                    @if waiting { th { "Why" } th { "Lapses" } } @else { th { "State" } th { "Access until" } }
                }
            }
            tbody {
                @for v in views {
                    tr {
                        td { a href={ (base) "/access-requests/" (v.id) } { code { (v.id) } } }
                        @if waiting { td data-label="Asked by" { (v.requester) } }
                        td data-label="For" { (what(v)) }
                        td data-label="How long" { (seconds_words(v.duration_seconds)) }
                        @if waiting {
                            td data-label="Why" { (v.reason) }
                            td data-label="Lapses" { (when(v.expires_at)) }
                        } @else {
                            td data-label="State" { (status_words(v.status)) }
                            td data-label="Access until" {
                                @if let Some(until) = v.access_until { (when(until)) } @else { "—" }
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn access_view(
    state: &WebState,
    ctx: &Ctx,
    asked: &Asked,
    error: Option<&FormError>,
) -> Result<Markup, ApiError> {
    let requests = &state.issue.shared.requests;
    // Both lists at once: the two reads do not depend on each other.
    let (asking, mine) = tokio::try_join!(
        requests.list(ctx.identity(), RequestRole::Approver),
        requests.list(ctx.identity(), RequestRole::Requester),
    )
    .map_err(ApiError::from)?;
    let now = state.issue.shared.clock.now();
    let views = |found: Vec<AccessRequest>| -> Vec<AccessRequestView> {
        found
            .into_iter()
            .map(|r| AccessRequestView::of(r, now))
            .collect()
    };
    let waiting: Vec<AccessRequestView> = views(asking)
        .into_iter()
        .filter(|v| v.status == RequestStatus::Pending)
        .collect();
    let mine = views(mine);
    Ok(html! {
        p.hint {
            "Time-bound access to a target you do not hold, approved by someone else. (For a second person on one use of a target you hold, see "
            a href={ (ctx.base) "/approvals" } { "Approvals" } ".)"
        }
        section aria-labelledby="waiting-h" {
            h2 #waiting-h { "Waiting for you" }
            @if waiting.is_empty() {
                p { "Nobody is waiting for you to approve." }
            } @else {
                (requests_table(ctx, &waiting, true))
            }
        }
        section aria-labelledby="ask-h" {
            h2 #ask-h { "Ask for access" }
            (ask_form(ctx, asked, error))
        }
        section aria-labelledby="mine-h" {
            h2 #mine-h { "Your requests" }
            @if mine.is_empty() {
                p { "You have no recent requests." }
            } @else {
                (requests_table(ctx, &mine, false))
            }
        }
    })
}

pub(super) async fn access_page(State(state): State<WebState>, ctx: Ctx) -> Response {
    match access_view(&state, &ctx, &Asked::default(), None).await {
        Ok(body) => ctx.page(TITLE, Nav::AccessRequests, body).into_response(),
        Err(e) => error_page(&ctx, TITLE, Nav::AccessRequests, e),
    }
}

pub(super) async fn access_open(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (ctx, form) = match signed_in_form(&state, &headers, meta, &body).await {
        Ok(x) => x,
        Err(answer) => return answer,
    };
    let asked = Asked::of(&form);
    let opened = match asked.ask() {
        Ok(ask) => state
            .issue
            .shared
            .requests
            .open(ctx.identity(), &ask, &ctx.meta)
            .await
            .map_err(|e| {
                let e = ApiError::from(e);
                let field = asked.field_of(e.code);
                (e, field)
            }),
        Err(refused) => Err(refused),
    };
    match opened {
        Ok(request) => see_other(
            &ctx.base,
            &format!("/access-requests/{}", request.id),
            Vec::new(),
        ),
        Err((e, field)) => {
            let (status, mut error) = refusal(e, &ctx.meta);
            error.field = field;
            match access_view(&state, &ctx, &asked, Some(&error)).await {
                Ok(body) => ctx
                    .page(TITLE, Nav::AccessRequests, body)
                    .status(status)
                    .into_response(),
                Err(e) => error_page(&ctx, TITLE, Nav::AccessRequests, e),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A request's page and its actions

/// The actions on a request's page.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Approve,
    Deny,
    Cancel,
}

impl Action {
    fn path(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Deny => "deny",
            Self::Cancel => "cancel",
        }
    }

    /// The words after it worked (named in the query of the page it goes back to).
    fn done(self) -> &'static str {
        match self {
            Self::Approve => "approved",
            Self::Deny => "denied",
            Self::Cancel => "done",
        }
    }

    /// The field of its form a refusal is about.
    fn field_of(self, code: &str) -> Option<&'static str> {
        match (self, code) {
            (
                Self::Approve,
                "invalid_request"
                | "approver_totp_invalid"
                | "approver_totp_replayed"
                | "approver_locked_out"
                | "approver_not_enrolled"
                | "approver_bootstrapped_by_requester"
                | "self_approval"
                | "not_an_approver"
                | "session_required",
            ) => Some("totp"),
            (Self::Approve, "invalid_duration") => Some("duration"),
            (_, "invalid_reason") => Some("reason"),
            _ => None,
        }
    }
}

/// The notice for `?done=` (only these words: nothing from the address is shown).
fn notice_of(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "approved" => Some("Approved: the requester has the access now."),
        "denied" => Some("Denied."),
        "done" => Some("Done."),
        _ => None,
    }
}

fn principals(view: &AccessRequestView) -> String {
    view.approvers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn request_view(
    ctx: &Ctx,
    view: &AccessRequestView,
    error: Option<(&FormError, Action)>,
    notice: Option<&str>,
) -> Markup {
    let base = &ctx.base;
    let mine = view.requester == ctx.session.identity.user.as_str();
    let pending = view.status == RequestStatus::Pending;
    let live = view.status == RequestStatus::Approved;
    // Whoever may see a request and is not its requester is one of the approvers it asked.
    let approver = !mine;
    let shown = |action: Action| match action {
        Action::Approve | Action::Deny => pending && approver,
        Action::Cancel => (pending && mine) || live,
    };
    let on = |action: Action| error.filter(|(_, a)| *a == action).map(|(e, _)| e);
    let action_path =
        |action: Action| format!("{base}/access-requests/{}/{}", view.id, action.path());
    let shorter: Vec<(String, String)> = std::iter::once((
        String::new(),
        format!("As asked: {}", seconds_words(view.duration_seconds)),
    ))
    .chain(
        GIVE_AT_MOST
            .iter()
            .filter(|s| **s < view.duration_seconds)
            .map(|s| (s.to_string(), seconds_words(*s))),
    )
    .collect();
    html! {
        @if let Some(n) = notice { div.notice role="status" { (n) } }
        // A refusal whose form is no longer offered (someone else acted first) goes on top.
        @if let Some((e, action)) = error && !shown(action) { (html::form_alert(Some(e), &[])) }
        dl {
            dt { "Request" } dd { code { (view.id) } }
            dt { "Asked by" } dd { (view.requester) }
            dt { "For" } dd { (what(view)) }
            dt { "Why" } dd { (view.reason) }
            dt { "How long" } dd { (seconds_words(view.duration_seconds)) }
            dt { "State" } dd { strong { (status_words(view.status)) } }
            dt { "Asked at" } dd { (when(view.created_at)) }
            @if pending { dt { "Lapses at" } dd { (when(view.expires_at)) } }
            dt { "Approvers" } dd { (principals(view)) }
            @if let Some(by) = &view.decided_by { dt { "Decided by" } dd { (by) } }
            @if let Some(at) = view.decided_at { dt { "Decided at" } dd { (when(at)) } }
            @if let Some(until) = view.access_until { dt { "Access until" } dd { (when(until)) } }
            @if let Some(note) = &view.note { dt { "Note" } dd { (note) } }
        }
        @if shown(Action::Approve) {
            section aria-labelledby="approve-h" {
                h2 #approve-h { "Approve" }
                (html::form_alert(on(Action::Approve), &["totp", "duration"]))
                form.panel method="post" action=(action_path(Action::Approve)) {
                    (csrf(&ctx.session.csrf))
                    (scoped_code_field("approve-", "totp", "Your code, to approve", true, on(Action::Approve)))
                    (select("f-approve-duration", "duration", "Give it for", &shorter, "", Some("Less than asked, if you like"), on(Action::Approve)))
                    button type="submit" { "Approve" }
                }
            }
        }
        @if shown(Action::Deny) {
            section aria-labelledby="deny-h" {
                h2 #deny-h { "Deny" }
                (html::form_alert(on(Action::Deny), &["reason"]))
                form.panel method="post" action=(action_path(Action::Deny)) {
                    (csrf(&ctx.session.csrf))
                    (field("reason", "Why not (optional)", Input { scope: "deny-", hint: Some("The requester sees this, and so does the audit trail"), ..Input::default() }, on(Action::Deny)))
                    button.secondary type="submit" { "Deny" }
                }
            }
        }
        @if shown(Action::Cancel) {
            section aria-labelledby="cancel-h" {
                h2 #cancel-h { @if pending { "Withdraw" } @else { "End access now" } }
                (html::form_alert(on(Action::Cancel), &["reason"]))
                form.panel method="post" action=(action_path(Action::Cancel)) {
                    (csrf(&ctx.session.csrf))
                    @if live {
                        (field("reason", "Why (optional)", Input { scope: "cancel-", ..Input::default() }, on(Action::Cancel)))
                        p.hint { "The grant goes at once; credentials already issued under it last until they expire, never past the access's end." }
                    }
                    button.secondary type="submit" { @if pending { "Withdraw" } @else { "End access now" } }
                }
            }
        }
        @if live && mine {
            p {
                @if let Some(target) = &view.target {
                    a.button href={ (base) "/targets/" (target) } { "Use it: console or credentials" }
                } @else {
                    a.button href={ (base) "/targets" } { "Use it: your targets" }
                }
            }
        }
        @if pending && mine {
            p.hint { "The approvers were told. Reload to see its state." }
        }
        p { a href={ (base) "/access-requests" } { "All access requests" } }
    }
}

async fn viewed(state: &WebState, ctx: &Ctx, raw: &str) -> Result<AccessRequestView, ApiError> {
    let id = request_id(raw)?;
    let request = state
        .issue
        .shared
        .requests
        .view(&id, ctx.identity())
        .await?;
    Ok(AccessRequestView::of(
        request,
        state.issue.shared.clock.now(),
    ))
}

pub(super) async fn request_page(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    match viewed(&state, &ctx, &id).await {
        Ok(view) => {
            let notice = notice_of(query.get("done").map(String::as_str));
            ctx.page(
                REQUEST_TITLE,
                Nav::AccessRequests,
                request_view(&ctx, &view, None, notice),
            )
            .into_response()
        }
        Err(e) => error_page(&ctx, REQUEST_TITLE, Nav::AccessRequests, e),
    }
}

/// The optional note of a denial or an early end.
fn note(form: &Form) -> Result<Option<Reason>, ApiError> {
    form.get("reason")
        .map(Reason::parse)
        .transpose()
        .map_err(ApiError::from)
}

/// Runs `action` on request `id` from its form; back to its page, or the page with the refusal.
async fn act(
    state: &WebState,
    meta: RequestMeta,
    headers: &HeaderMap,
    id: &str,
    body: &Bytes,
    action: Action,
) -> Response {
    let (ctx, form) = match signed_in_form(state, headers, meta, body).await {
        Ok(x) => x,
        Err(answer) => return answer,
    };
    let id = match request_id(id) {
        Ok(id) => id,
        Err(e) => return error_page(&ctx, REQUEST_TITLE, Nav::AccessRequests, e),
    };
    let requests = &state.issue.shared.requests;
    let done: Result<AccessRequest, ApiError> = match action {
        Action::Approve => {
            let duration = form
                .get("duration")
                .map(str::parse::<u64>)
                .transpose()
                .map_err(|_| {
                    ApiError::bad_request(
                        "invalid_duration",
                        "the duration must be a number of seconds",
                    )
                });
            match (
                duration,
                TotpCode::parse(form.get("totp").unwrap_or_default()),
            ) {
                (Ok(duration), Ok(code)) => requests
                    .approve(&id, ctx.identity(), &code, duration, &ctx.meta)
                    .await
                    .map_err(ApiError::from),
                (Err(e), _) => Err(e),
                (_, Err(e)) => Err(ApiError::from(e)),
            }
        }
        Action::Deny => match note(&form) {
            Ok(note) => requests
                .deny(&id, ctx.identity(), note, &ctx.meta)
                .await
                .map_err(ApiError::from),
            Err(e) => Err(e),
        },
        Action::Cancel => match note(&form) {
            Ok(note) => requests
                .cancel(&id, ctx.identity(), note, &ctx.meta)
                .await
                .map_err(ApiError::from),
            Err(e) => Err(e),
        },
    };
    match done {
        Ok(request) => see_other(
            &ctx.base,
            &format!("/access-requests/{}?done={}", request.id, action.done()),
            Vec::new(),
        ),
        Err(e) => {
            let field = action.field_of(e.code);
            let (status, mut error) = refusal(e, &ctx.meta);
            error.field = field;
            match viewed(state, &ctx, &id.to_string()).await {
                Ok(view) => ctx
                    .page(
                        REQUEST_TITLE,
                        Nav::AccessRequests,
                        request_view(&ctx, &view, Some((&error, action)), None),
                    )
                    .status(status)
                    .into_response(),
                // Not the viewer's to see (a stranger's approve or deny is refused as
                // not_an_approver, and audited so): the same 404 page as for a GET.
                Err(e) => error_page(&ctx, REQUEST_TITLE, Nav::AccessRequests, e),
            }
        }
    }
}

pub(super) async fn request_approve(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    act(&state, meta, &headers, &id, &body, Action::Approve).await
}

pub(super) async fn request_deny(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    act(&state, meta, &headers, &id, &body, Action::Deny).await
}

pub(super) async fn request_cancel(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    act(&state, meta, &headers, &id, &body, Action::Cancel).await
}
