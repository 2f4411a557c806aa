//! Admins' read views, within their scope: the same use cases as /v1/admin.

#[allow(clippy::wildcard_imports)]
use super::*;

async fn admin_ctx(
    state: &WebState,
    headers: &HeaderMap,
    meta: RequestMeta,
) -> Result<(Ctx, cooper_core::admin::AdminContext), Response> {
    let ctx = signed_in(state, headers, meta).await?;
    let admin = &state.admin.shared.admin;
    match admin
        .context(AdminCall {
            identity: ctx.identity(),
            totp: None,
            meta: ctx.meta.clone(),
        })
        .await
    {
        Ok(admin_ctx) => Ok((ctx, admin_ctx)),
        Err(e) => Err(error_page(&ctx, "Admin", Nav::Admin, ApiError::from(e))),
    }
}

fn admin_nav(base: &str) -> Markup {
    html! {
        nav aria-label="Admin" {
            p.actions {
                a href={ (base) "/admin" } { "Audit" }
                a href={ (base) "/admin/accounts" } { "Accounts" }
                a href={ (base) "/admin/users" } { "Users" }
                a href={ (base) "/admin/groups" } { "Groups" }
            }
        }
    }
}

fn page_request(query: &HashMap<String, String>, limit: u16) -> Result<PageRequest, ApiError> {
    Ok(PageRequest::new(Some(limit), query.get("cursor").cloned())?)
}

fn next_link(base: &str, path: &str, cursor: Option<&str>, extra: &str) -> Markup {
    html! {
        @if let Some(cursor) = cursor {
            @let next = format!("{base}{path}?{extra}cursor={}", form_urlencoded::byte_serialize(cursor.as_bytes()).collect::<String>());
            p { a href=(next) { "Next page" } }
        }
    }
}

pub(super) async fn admin_page(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (ctx, admin_ctx) = match admin_ctx(&state, &headers, meta).await {
        Ok(x) => x,
        Err(answer) => return answer,
    };
    let get = |k: &str| query.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let (user, account, key) = (get("user"), get("account"), get("access_key_id"));
    let search: Option<Result<AuditQuery, ApiError>> = match (user, account, key) {
        (None, None, None) => None,
        (Some(u), None, None) => Some(
            UserName::parse(u)
                .map(|u| AuditQuery::Actor(u.to_string()))
                .map_err(ApiError::from),
        ),
        (None, Some(a), None) => Some(
            AccountId::parse(a)
                .map(AuditQuery::Account)
                .map_err(ApiError::from),
        ),
        (None, None, Some(k)) => Some(
            AccessKeyId::parse(k)
                .map(|k| AuditQuery::AccessKey(k.to_string()))
                .map_err(ApiError::from),
        ),
        _ => Some(Err(ApiError::bad_request(
            "invalid_request",
            "search by one of user, account or access key id",
        ))),
    };
    let found = match search {
        None => None,
        Some(Err(e)) => Some(Err(e)),
        Some(Ok(search)) => Some(match page_request(&query, 50) {
            Ok(page) => state
                .admin
                .shared
                .admin
                .audit_search(&admin_ctx, &search, &page, true)
                .await
                .map_err(ApiError::from),
            Err(e) => Err(e),
        }),
    };
    let base = &ctx.base;
    let extra = [("user", user), ("account", account), ("access_key_id", key)]
        .iter()
        .filter_map(|(k, v)| {
            v.map(|v| {
                format!(
                    "{k}={}&",
                    form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                )
            })
        })
        .collect::<String>();
    let body = html! {
        (admin_nav(base))
        p.muted { @match &admin_ctx.scope {
            cooper_core::admin::scope::AdminScope::Universal => "You administer every account.",
            _ => "You administer some accounts: you see their records only.",
        } }
        form.panel method="get" action={ (base) "/admin" } {
            h2 { "Search the audit trail" }
            p.hint { "By one of these. “Who holds this access key?”: give the key id." }
            div.inline {
                (field("user", "User", Input { value: user.unwrap_or_default(), ..Input::default() }, None))
                (field("account", "Account id", Input { value: account.unwrap_or_default(), ..Input::default() }, None))
                (field("access_key_id", "Access key id", Input { value: key.unwrap_or_default(), ..Input::default() }, None))
                button type="submit" { "Search" }
            }
        }
        @match &found {
            None => {},
            Some(Err(e)) => {
                @let (_, error) = refusal(ApiError::new(e.status, e.code, e.message.clone()), &ctx.meta);
                (html::form_alert(Some(&error), &[]))
            },
            Some(Ok(page)) => {
                @if page.items.is_empty() { p { "No records." } } @else {
                    table {
                        caption.muted { "Newest first" }
                        thead { tr { th { "When" } th { "Event" } th { "Who" } th { "Target / account" } th { "Access key" } th { "Why, what" } } }
                        tbody {
                            @for r in &page.items {
                                @let event = serde_json::to_value(r.event).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
                                tr {
                                    td { (r.at.format(&Rfc3339).unwrap_or_default()) }
                                    td { (event) }
                                    td { (r.actor) br; span.muted { (r.auth) } }
                                    td { @if let Some(t) = &r.target { (t) br; } @if let Some(a) = &r.account { code { (a) } } }
                                    td { @if let Some(k) = &r.access_key_id { code { (k) } } }
                                    td { @if let Some(o) = &r.reason { (o) } @if let Some(a) = &r.approved_by { br; "approved by " (a) } @if let Some(res) = &r.resource { br; (res) } }
                                }
                            }
                        }
                    }
                    (next_link(base, "/admin", page.cursor.as_deref(), &extra))
                }
            },
        }
    };
    ctx.page("Admin", Nav::Admin, body).into_response()
}

pub(super) async fn admin_accounts(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (ctx, admin_ctx) = match admin_ctx(&state, &headers, meta).await {
        Ok(x) => x,
        Err(answer) => return answer,
    };
    let found = match page_request(&query, 100) {
        Ok(page) => state
            .admin
            .shared
            .admin
            .accounts(&admin_ctx, &page)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let page = match found {
        Ok(page) => page,
        Err(e) => return error_page(&ctx, "Accounts", Nav::Admin, e),
    };
    let base = &ctx.base;
    let body = html! {
        (admin_nav(base))
        @if page.items.is_empty() { p { "No account in your scope." } } @else {
            table {
                thead { tr { th { "Account" } th { "Id" } th { "Partition" } } }
                tbody {
                    @for a in &page.items {
                        tr {
                            td { a href={ (base) "/admin/accounts/" (a.value.id) } { (a.value.name) } }
                            td { code { (a.value.id) } }
                            td { (a.value.partition) }
                        }
                    }
                }
            }
        }
        (next_link(base, "/admin/accounts", page.cursor.as_deref(), ""))
    };
    ctx.page("Accounts", Nav::Admin, body).into_response()
}

pub(super) async fn admin_account(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (ctx, admin_ctx) = match admin_ctx(&state, &headers, meta).await {
        Ok(x) => x,
        Err(answer) => return answer,
    };
    let admin = &state.admin.shared.admin;
    let page = PageRequest::first(100);
    let read = async {
        let id = AccountId::parse(&id)?;
        let account = admin.account(&admin_ctx, &id).await?;
        let targets = admin.targets(&admin_ctx, &id, &page).await?;
        let grants = admin.grants_in(&admin_ctx, &id, &page).await?;
        Ok::<_, ApiError>((account, targets, grants))
    };
    let (account, targets, grants) = match read.await {
        Ok(x) => x,
        Err(e) => return error_page(&ctx, "Account", Nav::Admin, e),
    };
    let base = &ctx.base;
    let body = html! {
        (admin_nav(base))
        dl {
            dt { "Id" } dd { code { (account.value.id) } }
            dt { "Partition" } dd { (account.value.partition) }
        }
        h2 { "Targets" }
        @if targets.items.is_empty() { p { "None." } } @else {
            table {
                thead { tr { th { "Target" } th { "Kind" } th { "Level" } th { "Needs" } } }
                tbody {
                    @for t in &targets.items {
                        @let t = &t.value;
                        tr {
                            td { (t.name) @if let Some(d) = &t.description { br; span.muted { (d) } } }
                            td { @match &t.kind { TargetKind::Role { role_arn, .. } => { "role " code { (role_arn) } }, TargetKind::FederatedUser { .. } => "federated user", } }
                            td { (t.level) }
                            td { @if t.high_security { "code " } @if t.requires_approval() { "second person" } }
                        }
                    }
                }
            }
        }
        h2 { "Grants" }
        @if grants.items.is_empty() { p { "None." } } @else {
            table {
                thead { tr { th { "Who" } th { "What" } th { "Until" } } }
                tbody {
                    @for g in &grants.items {
                        tr {
                            td { (g.principal) }
                            td { @match &g.scope { GrantScope::Target(t) => { "target " (t) }, GrantScope::Account { max_level, .. } => { "every target up to level " (max_level) }, } }
                            td { @match g.expires_at { Some(at) => (at.format(&Rfc3339).unwrap_or_default()), None => "no end", } }
                        }
                    }
                }
            }
        }
    };
    ctx.page(account.value.name.as_str(), Nav::Admin, body)
        .into_response()
}

pub(super) async fn admin_users(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (ctx, admin_ctx) = match admin_ctx(&state, &headers, meta).await {
        Ok(x) => x,
        Err(answer) => return answer,
    };
    let found = match page_request(&query, 100) {
        Ok(page) => state
            .admin
            .shared
            .admin
            .users(&admin_ctx, &page)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let page = match found {
        Ok(page) => page,
        Err(e) => return error_page(&ctx, "Users", Nav::Admin, e),
    };
    let base = &ctx.base;
    let body = html! {
        (admin_nav(base))
        table {
            thead { tr { th { "User" } th { "Name" } th { "State" } } }
            tbody {
                @for u in &page.items {
                    @let u = &u.value;
                    tr {
                        td { (u.name) }
                        td { @if let Some(d) = &u.display_name { (d) } }
                        td { @if u.enabled { "active" } @else { "disabled" } @if let Some(at) = u.expires_at { " until " (at.format(&Rfc3339).unwrap_or_default()) } }
                    }
                }
            }
        }
        (next_link(base, "/admin/users", page.cursor.as_deref(), ""))
    };
    ctx.page("Users", Nav::Admin, body).into_response()
}

pub(super) async fn admin_groups(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (ctx, admin_ctx) = match admin_ctx(&state, &headers, meta).await {
        Ok(x) => x,
        Err(answer) => return answer,
    };
    let found = match page_request(&query, 100) {
        Ok(page) => state
            .admin
            .shared
            .admin
            .groups(&admin_ctx, &page)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let page = match found {
        Ok(page) => page,
        Err(e) => return error_page(&ctx, "Groups", Nav::Admin, e),
    };
    let base = &ctx.base;
    let body = html! {
        (admin_nav(base))
        table {
            thead { tr { th { "Group" } th { "About" } } }
            tbody {
                @for g in &page.items {
                    tr { td { (g.value.name) } td { @if let Some(d) = &g.value.description { (d) } } }
                }
            }
        }
        (next_link(base, "/admin/groups", page.cursor.as_deref(), ""))
    };
    ctx.page("Groups", Nav::Admin, body).into_response()
}
