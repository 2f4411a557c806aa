//! The pages' frame and form parts (maud: every interpolation is HTML-escaped).

use maud::{DOCTYPE, Markup, html};

use super::assets;

/// Which section a page belongs to (marked in the navigation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    None,
    Targets,
    Authenticator,
    Approvals,
    AccessRequests,
    Admin,
}

/// What every page's frame needs.
pub struct Frame<'a> {
    pub base: &'a str,
    pub title: &'a str,
    /// The signed-in user, with the CSRF token for the sign-out form.
    pub user: Option<(&'a str, &'a str)>,
    pub admin: bool,
    pub nav: Nav,
}

/// A refusal, shown next to the field it is about (or above the form), in words, with its code
/// and the request id to quote.
pub struct FormError {
    pub field: Option<&'static str>,
    pub code: &'static str,
    pub message: String,
    pub request_id: String,
}

impl FormError {
    fn on(&self, field: &str) -> bool {
        self.field == Some(field)
    }
}

pub fn layout(frame: &Frame, body: Markup) -> Markup {
    let base = frame.base;
    let version = assets::VERSION.as_str();
    let current = |nav: Nav| (frame.nav == nav).then_some("page");
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (frame.title) " · cooper" }
                link rel="stylesheet" href={ (base) "/assets/cooper.css?v=" (version) };
                script src={ (base) "/assets/cooper.js?v=" (version) } defer {}
            }
            body {
                a.skip href="#main" { "Skip to the content" }
                header {
                    nav aria-label="cooper" {
                        a.brand href={ (base) "/" } { "cooper" }
                        @if let Some((user, csrf)) = frame.user {
                            a href={ (base) "/targets" } aria-current=[current(Nav::Targets)] { "My targets" }
                            a href={ (base) "/authenticator" } aria-current=[current(Nav::Authenticator)] { "Authenticator" }
                            a href={ (base) "/approvals" } aria-current=[current(Nav::Approvals)] { "Approvals" }
                            a href={ (base) "/access-requests" } aria-current=[current(Nav::AccessRequests)] { "Access requests" }
                            @if frame.admin {
                                a href={ (base) "/admin" } aria-current=[current(Nav::Admin)] { "Admin" }
                            }
                            span.muted { (user) }
                            form method="post" action={ (base) "/signout" } {
                                input type="hidden" name="csrf" value=(csrf);
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (frame.title) }
                    (body)
                }
                footer { "cooper: short-lived AWS access, every issuance audited." }
            }
        }
    }
}

/// The refusal above a form, when it is not about one of `fields`.
pub fn form_alert(error: Option<&FormError>, fields: &[&str]) -> Markup {
    html! {
        @if let Some(e) = error.filter(|e| e.field.is_none_or(|f| !fields.contains(&f))) {
            div.alert role="alert" {
                p { (e.message) }
                p.hint { "Code " code { (e.code) } ", request " code { (e.request_id) } }
            }
        }
    }
}

/// What an input needs besides its name and label.
pub struct Input<'a> {
    pub kind: &'a str,
    pub value: &'a str,
    pub autocomplete: &'a str,
    pub required: bool,
    pub hint: Option<&'a str>,
    /// A 6-digit code: numeric keyboard, one-time-code autofill.
    pub code: bool,
    /// Prefixes the element id, where one page has two forms with the same field.
    pub scope: &'a str,
}

impl Default for Input<'_> {
    fn default() -> Self {
        Self {
            kind: "text",
            value: "",
            autocomplete: "off",
            required: false,
            hint: None,
            code: false,
            scope: "",
        }
    }
}

/// A labelled input, with its refusal (if it is about this field) right under it.
pub fn field(name: &str, label: &str, input: Input, error: Option<&FormError>) -> Markup {
    let id = format!("f-{}{name}", input.scope);
    let invalid = error.filter(|e| e.on(name));
    let hint_id = format!("{id}-hint");
    let error_id = format!("{id}-error");
    let described: Vec<&str> = [
        input.hint.map(|_| hint_id.as_str()),
        invalid.map(|_| error_id.as_str()),
    ]
    .into_iter()
    .flatten()
    .collect();
    let described = (!described.is_empty()).then(|| described.join(" "));
    html! {
        div.field {
            label for=(id) { (label) }
            @if input.code {
                input id=(id) name=(name) type="text" inputmode="numeric" pattern="[0-9]{6}"
                    maxlength="6" autocomplete="one-time-code" value=(input.value)
                    required[input.required] aria-invalid=[invalid.map(|_| "true")]
                    aria-describedby=[described.as_deref()];
            } @else {
                input id=(id) name=(name) type=(input.kind) value=(input.value)
                    autocomplete=(input.autocomplete) required[input.required]
                    aria-invalid=[invalid.map(|_| "true")]
                    aria-describedby=[described.as_deref()];
            }
            @if let Some(hint) = input.hint {
                p.hint id=(hint_id) { (hint) }
            }
            @if let Some(e) = invalid {
                p.error id=(error_id) {
                    (e.message) " "
                    span.muted { "(code " code { (e.code) } ", request " code { (e.request_id) } ")" }
                }
            }
        }
    }
}

/// A 6-digit code field.
pub fn code_field(name: &str, label: &str, required: bool, error: Option<&FormError>) -> Markup {
    scoped_code_field("", name, label, required, error)
}

/// A 6-digit code field whose id is prefixed with `scope`.
pub fn scoped_code_field(
    scope: &str,
    name: &str,
    label: &str,
    required: bool,
    error: Option<&FormError>,
) -> Markup {
    field(
        name,
        label,
        Input {
            code: true,
            required,
            hint: Some("6 digits from your authenticator app"),
            scope,
            ..Input::default()
        },
        error,
    )
}

/// The hidden CSRF field every form carries.
pub fn csrf(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// A block of text with a copy button (the button appears when the script runs).
pub fn copyable(id: &str, label: &str, text: &str) -> Markup {
    html! {
        div.field {
            div.actions {
                strong { (label) }
                button.secondary type="button" data-copy=(id) hidden { "Copy" }
            }
            pre { code id=(id) { (text) } }
        }
    }
}
