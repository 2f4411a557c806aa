//! The OpenAPI document, from the types and the handlers' `#[utoipa::path]`s (the `openapi`
//! feature only): `tests/openapi.rs` writes it to docs/openapi.json and fails when the committed
//! file is not it. The Lambdas serve the committed file and never build this.
//!
//! utoipa writes most of it; [`normalize`] then says in the document what holds for every
//! operation (the request id, the one error response, bearer authentication), shares the headers
//! and parameters many operations repeat, and flattens what `#[serde(flatten)]` became (`allOf`,
//! which cannot be closed) into the objects the server really sends.
// A tool that runs at build time over a document it just built, never in a function: an index
// that misses there fails the document's test, not a request.
#![allow(clippy::indexing_slicing)]

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};
use utoipa::OpenApi;

use crate::routes::{access_requests, admin, approvals, credentials, factors, targets};

/// The response headers operations share, by the marker that names them.
fn headers() -> Value {
    let header = |description: &str, schema: Value| json!({ "description": description, "required": true, "schema": schema });
    json!({
        "RequestId": header("The request's id (API Gateway's, or a UUIDv7 locally).",
            json!({ "type": "string", "minLength": 1 })),
        "NoStore": header("Credentials and secrets are never cached.",
            json!({ "type": "string", "const": "no-store" })),
        "NoCache": header("`no-cache`.", json!({ "type": "string", "const": "no-cache" })),
        "NoReferrer": header("`no-referrer`.", json!({ "type": "string", "const": "no-referrer" })),
        "ETag": header("The resource's version, for If-Match.",
            json!({ "type": "string", "pattern": "^\"[0-9]+\"$" })),
        "Location": header("The console sign-in link.", json!({ "type": "string" })),
        "PublicCache": header("Cacheable for 5 minutes.",
            json!({ "type": "string", "const": "public, max-age=300" })),
    })
}

/// The parameters many operations repeat, shared under these names: (in, name, required).
const PARAMETERS: &[(&str, &str, bool, &str)] = &[
    ("header", "X-Cooper-TOTP", false, "TotpHeader"),
    ("header", "If-Match", true, "IfMatchRequired"),
    ("header", "If-Match", false, "IfMatchOptional"),
    ("query", "limit", false, "Limit"),
    ("query", "cursor", false, "Cursor"),
    ("query", "cascade", false, "Cascade"),
];

/// utoipa names generic schemas by their arguments; these read better.
const RENAMES: &[(&str, &str)] = &[
    ("PageView_AccountEntry", "AccountPage"),
    ("PageView_TargetEntry", "TargetPage"),
    ("PageView_UserEntry", "UserPage"),
    ("PageView_GroupEntry", "GroupPage"),
    ("PageView_Grant", "GrantPage"),
    ("PageView_AuditRecord", "AuditPage"),
    ("Versioned_Account", "VersionedAccount"),
    ("Versioned_Target", "VersionedTarget"),
    ("Versioned_User", "VersionedUser"),
    ("Versioned_UserDetailsView", "UserDetails"),
    ("Versioned_Group", "VersionedGroup"),
    ("Versioned_GroupDetails", "GroupDetails"),
];

/// The error response's description, from the one list of codes.
fn error_codes() -> String {
    let mut text = String::from(
        "Every refusal and failure: the JSON error body, with a stable `code`. The codes:

",
    );
    for (status, note, codes) in crate::error::CODES {
        let codes: Vec<String> = codes.iter().map(|c| format!("`{c}`")).collect();
        text.push_str(&format!(
            "- {status}{note}: {}
",
            codes.join(", ")
        ));
    }
    text
}

/// The one error response of every operation.
fn error_response() -> Value {
    json!({
        "description": error_codes(),
        "headers": {
            "X-Request-Id": { "$ref": "#/components/headers/RequestId" },
            "WWW-Authenticate": {
                "description": "On 401: `Bearer realm=\"cooper\"`.",
                "required": false,
                "schema": { "type": "string" }
            },
            "Retry-After": {
                "description": "On 429 and 503: seconds to wait before retrying.",
                "required": false,
                "schema": { "type": "string", "pattern": "^[0-9]+$" }
            }
        },
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "cooper",
        version = "0.1.0",
        description = "cooper is a serverless AWS access broker: engineers, scripts and CI ask it for short-lived STS credentials for the roles they are granted, after proving who they are. Every issuance is decided by grants (deny by default) and audited before the credentials are handed over. Errors are JSON (`{\"error\": {\"code\", \"message\", \"request_id\"}}`); unknown body fields are refused; bodies are limited to 16 KiB.",
    ),
    tags(
        (name = "credentials", description = "Temporary AWS credentials and console links."),
        (name = "targets", description = "What the caller may become."),
        (name = "identity", description = "Who the caller is."),
        (name = "approvals", description = "Second-person approval of one issuance."),
        (name = "access-requests", description = "Just-in-time access: asking for access one does not hold, for a while, and its approval."),
        (name = "sessions", description = "Local login, identity-provider sessions and passwords."),
        (name = "totp", description = "Authenticator (TOTP) enrollment."),
        (name = "meta", description = "This description."),
        (name = "admin-accounts", description = "Administration: AWS accounts."),
        (name = "admin-targets", description = "Administration: targets."),
        (name = "admin-users", description = "Administration: users."),
        (name = "admin-tokens", description = "Administration: API tokens."),
        (name = "admin-groups", description = "Administration: groups and memberships."),
        (name = "admin-grants", description = "Administration: grants."),
        (name = "admin-admins", description = "Administration: admin grants."),
        (name = "admin-audit", description = "Administration: the audit trail."),
    ),
    security(("bearer" = [])),
    // The schemas only parameters name (utoipa collects the bodies' on its own).
    components(schemas(
        crate::error::ErrorBody,
        cooper_core::names::AccessKeyId,
        cooper_core::totp::TotpCode,
        credentials::CredentialsFormat,
        admin::IfMatch,
        admin::Order,
        access_requests::Role,
        cooper_core::model::requests::RequestStatus,
    )),
    paths(
        credentials::issue_credentials,
        credentials::console,
        targets::list_targets,
        targets::whoami,
        approvals::open,
        approvals::list,
        approvals::view,
        approvals::approve,
        access_requests::open,
        access_requests::list,
        access_requests::get,
        access_requests::approve,
        access_requests::deny,
        access_requests::cancel,
        crate::router::openapi,
        factors::login,
        factors::oidc_session,
        factors::logout,
        factors::start_enrollment,
        factors::confirm_enrollment,
        factors::set_password,
        crate::web::pages::saml::metadata,
        crate::web::pages::saml::login,
        crate::web::pages::saml::acs,
        crate::web::pages::saml::redeem,
        admin::list_accounts,
        admin::create_account,
        admin::get_account,
        admin::update_account,
        admin::delete_account,
        admin::list_targets,
        admin::create_target,
        admin::get_target,
        admin::update_target,
        admin::delete_target,
        admin::list_users,
        admin::create_user,
        admin::get_user,
        admin::update_user,
        admin::delete_user,
        admin::reset_totp,
        admin::revoke_user_sessions,
        admin::revoke_aws_sessions,
        admin::list_tokens,
        admin::issue_token,
        admin::issue_enrollment_code,
        admin::revoke_token,
        admin::list_groups,
        admin::create_group,
        admin::get_group,
        admin::update_group,
        admin::delete_group,
        admin::add_member,
        admin::remove_member,
        admin::list_grants,
        admin::create_grant,
        admin::delete_grant,
        admin::list_admins,
        admin::create_admin,
        admin::delete_admin,
        admin::audit,
    )
)]
struct Api;

/// The document, as committed in docs/openapi.json: pretty, keys sorted, one final newline.
pub fn render() -> Result<String, String> {
    let mut doc = serde_json::to_value(Api::openapi()).map_err(|e| e.to_string())?;
    normalize(&mut doc)?;
    let mut text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    text.push('\n');
    Ok(text)
}

/// What utoipa cannot say, said once for the whole document (see the module's comment).
fn normalize(doc: &mut Value) -> Result<(), String> {
    let schemas = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
        .ok_or("the document has no schemas")?;
    for (from, to) in RENAMES {
        if let Some(schema) = schemas.remove(*from) {
            schemas.insert((*to).to_owned(), schema);
        }
    }
    rename_refs(doc);

    // Flatten allOf (what `#[serde(flatten)]` becomes) into plain objects.
    let snapshot = doc
        .pointer("/components/schemas")
        .cloned()
        .unwrap_or_default();
    let schemas = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
        .ok_or("the document has no schemas")?;
    for schema in schemas.values_mut() {
        flatten_all_of(schema, &snapshot)?;
    }
    if let Some(paths) = doc.get_mut("paths") {
        flatten_all_of(paths, &snapshot)?;
    }

    // Every object that lists its properties is closed: request bodies refuse unknown fields
    // (`deny_unknown_fields` everywhere) and responses are typed views. Open ones say so.
    close_objects(doc);
    absent_not_null(doc);

    let headers = headers();
    let mut parameters = Map::new();
    let paths = doc
        .get_mut("paths")
        .and_then(Value::as_object_mut)
        .ok_or("the document has no paths")?;
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            let at = format!("{method} {path}");
            share_parameters(op, &mut parameters);
            let responses = op
                .get_mut("responses")
                .and_then(Value::as_object_mut)
                .ok_or(format!("{at}: no responses"))?;
            for response in responses.values_mut() {
                share_headers(response, &headers, &at)?;
            }
            responses.insert(
                "default".into(),
                json!({ "$ref": "#/components/responses/Error" }),
            );
            if op
                .get("tags")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
            {
                return Err(format!("{at}: no tag"));
            }
        }
    }

    let components = doc
        .get_mut("components")
        .and_then(Value::as_object_mut)
        .ok_or("the document has no components")?;
    components.insert("headers".into(), headers);
    components.insert("parameters".into(), Value::Object(parameters));
    components.insert("responses".into(), json!({ "Error": error_response() }));
    components.insert(
        "securitySchemes".into(),
        json!({ "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "A cooper session JWT (from `POST /v1/sessions` or `/v1/sessions/oidc`), an API token (`cooper_<16 hex>_<64 hex>`), or, where an identity provider is configured, its ID token."
        } }),
    );
    drop_unreferenced(doc);
    unwrap_lines(doc);
    check_refs(doc)
}

/// Doc comments wrap at 100 columns: a lone line break in a description is a space (as Markdown
/// reads it anyway); paragraphs and list items stay.
fn unwrap_lines(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(text)) = map.get_mut("description") {
                let lines: Vec<&str> = text.split('\n').collect();
                let mut out = String::with_capacity(text.len());
                for (i, line) in lines.iter().enumerate() {
                    if i > 0 {
                        let joins =
                            !line.is_empty() && !lines[i - 1].is_empty() && !line.starts_with("- ");
                        out.push(if joins { ' ' } else { '\n' });
                    }
                    out.push_str(line);
                }
                *text = out;
            }
            map.values_mut().for_each(unwrap_lines);
        }
        Value::Array(items) => items.iter_mut().for_each(unwrap_lines),
        _ => {}
    }
}

/// Responses leave out an empty optional field (`skip_serializing_if`) rather than send `null`;
/// a field that can be null is required (`schema(required = true)`). So in what only responses
/// use, a property that may be absent is never null. (A request body's optional field may be
/// null: serde reads it as absent.) An optional request body is absent, never `null`.
fn absent_not_null(doc: &mut Value) {
    let schemas = doc
        .pointer("/components/schemas")
        .cloned()
        .unwrap_or_default();
    let mut in_requests = BTreeSet::new();
    let mut in_responses = BTreeSet::new();
    for item in doc["paths"]
        .as_object()
        .into_iter()
        .flat_map(|p| p.values())
    {
        for op in item.as_object().into_iter().flat_map(|o| o.values()) {
            reach(&op["requestBody"], &schemas, &mut in_requests);
            reach(&op["parameters"], &schemas, &mut in_requests);
            reach(&op["responses"], &schemas, &mut in_responses);
        }
    }
    let only_responses: Vec<String> = in_responses.difference(&in_requests).cloned().collect();
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for name in only_responses {
            if let Some(schema) = schemas.get_mut(&name) {
                optional_not_null(schema);
            }
        }
    }
    let paths = doc.get_mut("paths").and_then(Value::as_object_mut);
    for item in paths.into_iter().flat_map(|p| p.values_mut()) {
        for op in item
            .as_object_mut()
            .into_iter()
            .flat_map(|o| o.values_mut())
        {
            if let Some(responses) = op.get_mut("responses") {
                optional_not_null(responses);
            }
            let optional = op["requestBody"]["required"].as_bool() != Some(true);
            if let Some(body) = op.pointer_mut("/requestBody/content/application~1json/schema")
                && optional
            {
                not_null(body);
            }
        }
    }
}

fn reach(value: &Value, schemas: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(name) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
                && found.insert(name.to_owned())
            {
                reach(&schemas[name], schemas, found);
            }
            map.values().for_each(|v| reach(v, schemas, found));
        }
        Value::Array(items) => items.iter().for_each(|v| reach(v, schemas, found)),
        _ => {}
    }
}

fn optional_not_null(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let required: BTreeSet<String> = map
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            if let Some(Value::Object(props)) = map.get_mut("properties") {
                for (name, prop) in props.iter_mut() {
                    if !required.contains(name) {
                        not_null(prop);
                    }
                    optional_not_null(prop);
                }
            }
            for (key, child) in map.iter_mut() {
                if key != "properties" {
                    optional_not_null(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(optional_not_null),
        _ => {}
    }
}

fn rename_refs(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get_mut("$ref") {
                for (from, to) in RENAMES {
                    if target == &format!("#/components/schemas/{from}") {
                        *target = format!("#/components/schemas/{to}");
                    }
                }
            }
            map.values_mut().for_each(rename_refs);
        }
        Value::Array(items) => items.iter_mut().for_each(rename_refs),
        _ => {}
    }
}

fn resolve<'a>(schema: &'a Value, schemas: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(target) => target
            .strip_prefix("#/components/schemas/")
            .and_then(|name| schemas.get(name))
            .map_or(schema, |s| resolve(s, schemas)),
        None => schema,
    }
}

/// Replaces every `allOf` by the one object its parts make together; a part that is a `oneOf`
/// makes the whole a `oneOf` of the merges.
fn flatten_all_of(value: &mut Value, schemas: &Value) -> Result<(), String> {
    match value {
        Value::Object(map) => {
            for child in map.values_mut() {
                flatten_all_of(child, schemas)?;
            }
            if let Some(Value::Array(parts)) = map.remove("allOf") {
                let mut variants: Vec<Value> = vec![json!({ "type": "object" })];
                for part in parts {
                    let mut part = resolve(&part, schemas).clone();
                    flatten_all_of(&mut part, schemas)?;
                    let choices = match part.get("oneOf").and_then(Value::as_array) {
                        Some(choices) => choices
                            .iter()
                            .map(|c| {
                                let mut c = resolve(c, schemas).clone();
                                flatten_all_of(&mut c, schemas).map(|()| c)
                            })
                            .collect::<Result<Vec<_>, _>>()?,
                        None => vec![part],
                    };
                    variants = variants
                        .iter()
                        .flat_map(|v| choices.iter().map(move |c| merge(v, c)))
                        .collect::<Result<Vec<_>, _>>()?;
                }
                let merged = if variants.len() == 1 {
                    variants.pop().unwrap_or_default()
                } else {
                    json!({ "oneOf": variants })
                };
                if let Value::Object(merged) = merged {
                    for (key, v) in merged {
                        map.entry(key).or_insert(v);
                    }
                }
            }
            Ok(())
        }
        Value::Array(items) => items
            .iter_mut()
            .try_for_each(|item| flatten_all_of(item, schemas)),
        _ => Ok(()),
    }
}

fn merge(into: &Value, part: &Value) -> Result<Value, String> {
    if part.get("type").and_then(Value::as_str) != Some("object") {
        return Err(format!(
            "cannot flatten a part that is not an object: {part}"
        ));
    }
    let mut out = into.clone();
    for key in ["properties"] {
        if let Some(Value::Object(props)) = part.get(key) {
            let target = out
                .as_object_mut()
                .map(|o| o.entry(key).or_insert_with(|| json!({})));
            if let Some(Value::Object(target)) = target {
                for (name, schema) in props {
                    target.insert(name.clone(), schema.clone());
                }
            }
        }
    }
    if let Some(Value::Array(required)) = part.get("required") {
        let mut all: BTreeSet<String> = out
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        all.extend(
            required
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned)),
        );
        out["required"] = json!(all);
    }
    if out.get("description").is_none()
        && let Some(description) = part.get("description")
    {
        out["description"] = description.clone();
    }
    Ok(out)
}

fn close_objects(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let lists_properties = map.get("properties").is_some_and(Value::is_object);
            if lists_properties && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            for (key, child) in map.iter_mut() {
                // Inside `properties`, the keys are field names, not schema keywords.
                if key == "properties" {
                    if let Value::Object(props) = child {
                        props.values_mut().for_each(close_objects);
                    }
                } else {
                    close_objects(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(close_objects),
        _ => {}
    }
}

/// Moves the parameters of [`PARAMETERS`] to the components and refers to them there; one that
/// differs from the first seen (grants' `limit`, which means something else) stays where it is.
fn share_parameters(op: &mut Value, shared: &mut Map<String, Value>) {
    let Some(Value::Array(list)) = op.get_mut("parameters") else {
        return;
    };
    for parameter in list.iter_mut() {
        // A parameter is absent or has a value: never `null` (what utoipa makes of `Option`).
        if let Some(schema) = parameter.get_mut("schema") {
            not_null(schema);
        }
        let key = (
            parameter["in"].as_str().unwrap_or_default(),
            parameter["name"].as_str().unwrap_or_default(),
            parameter["required"].as_bool().unwrap_or(false),
        );
        let Some((.., name)) = PARAMETERS.iter().find(|(i, n, r, _)| (*i, *n, *r) == key) else {
            continue;
        };
        match shared.get(*name) {
            Some(first) if first != parameter => continue,
            Some(_) => {}
            None => {
                shared.insert((*name).to_owned(), parameter.clone());
            }
        }
        *parameter = json!({ "$ref": format!("#/components/parameters/{name}") });
    }
}

fn not_null(schema: &mut Value) {
    if let Some(Value::Array(choices)) = schema.get("oneOf") {
        let rest: Vec<Value> = choices
            .iter()
            .filter(|c| c.get("type").and_then(Value::as_str) != Some("null"))
            .cloned()
            .collect();
        if let [only] = rest.as_slice() {
            *schema = only.clone();
        }
    }
    if let Some(Value::Array(types)) = schema.get_mut("type") {
        types.retain(|t| t != "null");
        if let [only] = types.as_slice() {
            let only = only.clone();
            schema["type"] = only;
        }
    }
}

/// Every response carries the request id; a header named by a marker type refers to its shared
/// definition.
fn share_headers(response: &mut Value, shared: &Value, at: &str) -> Result<(), String> {
    let response = response
        .as_object_mut()
        .ok_or(format!("{at}: a response is not an object"))?;
    let headers = response
        .entry("headers")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or(format!("{at}: headers are not an object"))?;
    for header in headers.values_mut() {
        let marker = header
            .pointer("/schema/$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
            .map(str::to_owned);
        if let Some(marker) = marker.filter(|m| shared.get(m).is_some()) {
            *header = json!({ "$ref": format!("#/components/headers/{marker}") });
        }
    }
    let mut with_id = Map::new();
    with_id.insert(
        "X-Request-Id".into(),
        json!({ "$ref": "#/components/headers/RequestId" }),
    );
    with_id.append(headers);
    *headers = with_id;
    Ok(())
}

fn refs(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                found.insert(target.clone());
            }
            map.values().for_each(|v| refs(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
        _ => {}
    }
}

/// Drops the schemas nothing refers to any more (flattened parts, header markers).
fn drop_unreferenced(doc: &mut Value) {
    loop {
        let mut found = BTreeSet::new();
        refs(doc, &mut found);
        let Some(schemas) = doc
            .pointer_mut("/components/schemas")
            .and_then(Value::as_object_mut)
        else {
            return;
        };
        let unused: Vec<String> = schemas
            .keys()
            .filter(|name| !found.contains(&format!("#/components/schemas/{name}")))
            .cloned()
            .collect();
        if unused.is_empty() {
            return;
        }
        for name in unused {
            schemas.remove(&name);
        }
    }
}

/// Every `$ref` names something the document has.
fn check_refs(doc: &Value) -> Result<(), String> {
    let mut found = BTreeSet::new();
    refs(doc, &mut found);
    let missing: Vec<_> = found
        .iter()
        .filter(|r| {
            r.strip_prefix('#')
                .is_none_or(|pointer| doc.pointer(pointer).is_none())
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("references to nothing: {missing:?}"))
    }
}
