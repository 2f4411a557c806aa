//! `/v1/admin/targets`: what users may become.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use cooper_core::admin::{KindSpec, TargetSpec};
use cooper_core::model::{Principal, Sealed, Target, TargetKind};
use cooper_core::names::{
    AccountId, Description, ExternalId, InvalidValue, Level, Partition, RoleArn, SessionPolicy,
    TargetName,
};
use cooper_core::tags::{SessionTagSpec, SessionTagSpecs};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[cfg(feature = "openapi")]
use super::Versioned;
use super::{
    Caller, DeleteQuery, IfMatch, ListQuery, PageView, QueryResult, RemovedView, RequestPolicyBody,
    key_of, keyed, page_json, query, removed, versioned_response,
};
use crate::error::ApiError;
use crate::json::JsonBody;
#[cfg(feature = "openapi")]
use crate::schema::ETag;
use crate::state::AdminState;
#[cfg(feature = "openapi")]
use input::{TargetCreate, TargetUpdate};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetBody {
    #[serde(default)]
    name: Option<String>,
    account_id: String,
    level: u32,
    kind: String,
    #[serde(default)]
    role_arn: Option<String>,
    #[serde(default)]
    external_id: Option<String>,
    /// `cooper encrypt`'s blob; left out of an update, the stored keys are kept.
    #[serde(default)]
    sealed_keys: Option<String>,
    #[serde(default)]
    session_policy: Option<Value>,
    #[serde(default)]
    max_duration_seconds: Option<u32>,
    #[serde(default)]
    high_security: bool,
    #[serde(default)]
    approvers: Vec<Principal>,
    #[serde(default)]
    access_requests: Option<RequestPolicyBody>,
    #[serde(default)]
    session_tags: Vec<SessionTagSpec>,
    #[serde(default)]
    description: Option<String>,
}

impl TryFrom<TargetBody> for TargetSpec {
    type Error = InvalidValue;

    fn try_from(body: TargetBody) -> Result<Self, InvalidValue> {
        let kind = match body.kind.as_str() {
            "role" => KindSpec::Role {
                role_arn: RoleArn::parse(body.role_arn.as_deref().ok_or_else(|| {
                    InvalidValue::new("role_arn", "is required for a role target")
                })?)?,
                external_id: body
                    .external_id
                    .as_deref()
                    .map(ExternalId::parse)
                    .transpose()?,
            },
            "federated_user" => KindSpec::FederatedUser {
                session_policy: match body.session_policy {
                    Some(Value::String(s)) => SessionPolicy::parse(&s)?,
                    Some(other @ Value::Object(_)) => SessionPolicy::parse(&other.to_string())?,
                    _ => {
                        return Err(InvalidValue::new(
                            "session_policy",
                            "is required for a federated-user target",
                        ));
                    }
                },
                sealed_keys: body.sealed_keys.as_deref().map(Sealed::parse).transpose()?,
            },
            _ => return Err(InvalidValue::new("kind", "must be role or federated_user")),
        };
        Ok(TargetSpec {
            name: TargetName::parse(&key_of("name", body.name)?)?,
            account: AccountId::parse(&body.account_id)?,
            level: Level::new(body.level)?,
            kind,
            max_duration_seconds: body.max_duration_seconds,
            high_security: body.high_security,
            description: body
                .description
                .as_deref()
                .map(Description::parse)
                .transpose()?,
            approvers: body.approvers,
            access_requests: body.access_requests.map(|p| p.parse(false)).transpose()?,
            session_tags: SessionTagSpecs::new(body.session_tags)?,
        })
    }
}

/// The schemas of [`TargetBody`]: what it needs for each kind, to create and to update. Never
/// built: they only describe.
#[cfg(feature = "openapi")]
#[allow(dead_code)]
mod input {
    use cooper_core::model::{Principal, Sealed};
    use cooper_core::names::{AccountId, Description, ExternalId, Level, RoleArn, TargetName};
    use serde::Serialize;
    use utoipa::ToSchema;

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum RoleKind {
        Role,
    }

    #[derive(Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum FederatedUserKind {
        FederatedUser,
    }

    /// The session policy that scopes the federated user: a JSON object with a `Statement` (an
    /// object or a list), or the same as a JSON string; at most 2048 characters once minified.
    #[derive(Serialize, ToSchema)]
    #[serde(untagged)]
    pub enum SessionPolicyInput {
        Object(PolicyObject),
        Text(PolicyText),
    }

    /// The same policy as a JSON string.
    #[derive(Serialize)]
    pub struct PolicyText;

    impl utoipa::PartialSchema for PolicyText {
        fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
            utoipa::openapi::schema::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .min_length(Some(16))
                .description(Some("The same policy, as a JSON string."))
                .into()
        }
    }

    impl ToSchema for PolicyText {}

    /// A policy document: a `Statement` (an object or a list), other fields as IAM has them.
    #[derive(Serialize)]
    pub struct PolicyObject;

    impl utoipa::PartialSchema for PolicyObject {
        fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
            use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, SchemaType, Type};
            let statement = ObjectBuilder::new()
                .schema_type(SchemaType::Array(vec![Type::Array, Type::Object]));
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property("Statement", statement)
                .required("Statement")
                .additional_properties(Some(AdditionalProperties::FreeForm(true)))
                .description(Some(
                    "A policy document: a `Statement` (an object or a list), other fields as IAM has them.",
                ))
                .into()
        }
    }

    impl ToSchema for PolicyObject {}

    /// A role target.
    #[derive(Serialize, ToSchema)]
    #[schema(as = RoleTargetCreate)]
    pub struct RoleCreate {
        name: TargetName,
        #[serde(flatten)]
        role: RoleInput,
    }

    /// A role target (`name`, if given, is the path's).
    #[derive(Serialize, ToSchema)]
    #[schema(as = RoleTargetUpdate)]
    pub struct RoleUpdate {
        name: Option<TargetName>,
        #[serde(flatten)]
        role: RoleInput,
    }

    #[derive(Serialize, ToSchema)]
    pub struct RoleInput {
        kind: RoleKind,
        account_id: AccountId,
        level: Level,
        role_arn: RoleArn,
        /// The ExternalId the role's trust policy asks for.
        external_id: Option<ExternalId>,
        /// Default 3600.
        #[schema(minimum = 900, maximum = 43200)]
        max_duration_seconds: Option<u32>,
        #[serde(flatten)]
        common: CommonInput,
        /// Ignored for a role target.
        sealed_keys: Option<String>,
        /// Ignored for a role target.
        session_policy: Option<serde_json::Value>,
    }

    /// A federated-user target: `sealed_keys` is the blob `cooper encrypt` prints.
    #[derive(Serialize, ToSchema)]
    #[schema(as = FederatedUserTargetCreate)]
    pub struct FederatedUserCreate {
        name: TargetName,
        sealed_keys: Sealed,
        #[serde(flatten)]
        federated_user: FederatedUserInput,
    }

    /// A federated-user target: `sealed_keys` is the blob `cooper encrypt` prints; left out, the
    /// stored keys are kept (`name`, if given, is the path's).
    #[derive(Serialize, ToSchema)]
    #[schema(as = FederatedUserTargetUpdate)]
    pub struct FederatedUserUpdate {
        name: Option<TargetName>,
        sealed_keys: Option<Sealed>,
        #[serde(flatten)]
        federated_user: FederatedUserInput,
    }

    #[derive(Serialize, ToSchema)]
    pub struct FederatedUserInput {
        kind: FederatedUserKind,
        account_id: AccountId,
        level: Level,
        session_policy: SessionPolicyInput,
        /// Default 43200.
        #[schema(minimum = 900, maximum = 129600)]
        max_duration_seconds: Option<u32>,
        #[serde(flatten)]
        common: CommonInput,
        /// Ignored for a federated-user target.
        role_arn: Option<String>,
        /// Ignored for a federated-user target.
        external_id: Option<String>,
    }

    #[derive(Serialize, ToSchema)]
    pub struct CommonInput {
        /// Each issuance needs the caller's fresh TOTP code.
        #[serde(default)]
        #[schema(default = false)]
        high_security: bool,
        /// Who may approve; not empty: every issuance needs a second person's approval.
        #[serde(default)]
        #[schema(default = json!([]))]
        approvers: Vec<Principal>,
        /// Who may approve requests for access by people not granted this target
        /// (just-in-time access); left out, only its account's policy allows any.
        access_requests: Option<super::RequestPolicyBody>,
        /// Role targets only: the session tags AssumeRole sets (at most 50, keys unique
        /// regardless of case, the fixed ones within cooper's packed-size budget). The role's
        /// trust policy must allow `sts:TagSession` for these keys. Changing them in any way is
        /// `weaken_target`.
        #[serde(default)]
        #[schema(default = json!([]), max_items = 50)]
        session_tags: Vec<cooper_core::tags::SessionTagSpec>,
        description: Option<Description>,
    }

    /// A target to create: a role or a federated user.
    #[derive(Serialize, ToSchema)]
    #[serde(untagged)]
    pub enum TargetCreate {
        Role(RoleCreate),
        FederatedUser(FederatedUserCreate),
    }

    /// A target's new state: a role or a federated user (its account cannot change).
    #[derive(Serialize, ToSchema)]
    #[serde(untagged)]
    pub enum TargetUpdate {
        Role(RoleUpdate),
        FederatedUser(FederatedUserUpdate),
    }
}

/// What every target shows.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TargetCommon {
    name: TargetName,
    account_id: AccountId,
    level: Level,
    max_duration_seconds: u32,
    high_security: bool,
    approvers: Vec<Principal>,
    /// Who may approve requests for access to it; absent: only its account's policy allows any.
    #[serde(skip_serializing_if = "Option::is_none")]
    access_requests: Option<cooper_core::model::requests::RequestPolicy>,
    /// The session tags its AssumeRole sessions carry (none for a federated user).
    session_tags: Vec<SessionTagSpec>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    description: Option<Description>,
}

/// The sealed keys are never sent back: it is enough to know they are set.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum FederationKeys {
    Sealed,
}

/// An IAM role target (AssumeRole).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = RoleTarget))]
pub struct RoleTargetView {
    #[serde(flatten)]
    common: TargetCommon,
    role_arn: RoleArn,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    external_id: Option<ExternalId>,
}

/// A federated-user target (GetFederationToken).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = FederatedUserTarget))]
pub struct FederatedUserTargetView {
    #[serde(flatten)]
    common: TargetCommon,
    partition: Partition,
    /// The session policy.
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = Option<Object>))]
    session_policy: Option<Value>,
    federation_keys: FederationKeys,
}

/// A target as an admin sees it.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Target))]
pub enum TargetView {
    Role(RoleTargetView),
    FederatedUser(FederatedUserTargetView),
}

fn target_view(t: &Target) -> TargetView {
    let common = TargetCommon {
        name: t.name.clone(),
        account_id: t.account.clone(),
        level: t.level,
        max_duration_seconds: t.max_duration_seconds,
        high_security: t.high_security,
        approvers: t.approvers.clone(),
        access_requests: t.access_requests.clone(),
        session_tags: t.session_tags.as_slice().to_vec(),
        description: t.description.clone(),
    };
    match &t.kind {
        TargetKind::Role {
            role_arn,
            external_id,
        } => TargetView::Role(RoleTargetView {
            common,
            role_arn: role_arn.clone(),
            external_id: external_id.clone(),
        }),
        TargetKind::FederatedUser {
            partition,
            session_policy,
            ..
        } => TargetView::FederatedUser(FederatedUserTargetView {
            common,
            partition: *partition,
            session_policy: serde_json::from_str(session_policy.as_str()).ok(),
            federation_keys: FederationKeys::Sealed,
        }),
    }
}

/// A target in a list, with its version.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TargetEntry {
    /// The version, as in ETag.
    version: u64,
    target: TargetView,
}

/// List an account's targets
#[cfg_attr(feature = "openapi", utoipa::path(
    get, path = "/v1/admin/targets", operation_id = "listTargets", tag = "admin-targets",
    params(Caller, ("account" = AccountId, Query, description = "The account."), ListQuery),
    responses((status = 200, description = "A page of targets.", body = PageView<TargetEntry>)),
))]
pub async fn list_targets(
    State(s): State<AdminState>,
    q: QueryResult<ListQuery>,
    Caller(ctx): Caller,
) -> Result<Json<PageView<TargetEntry>>, ApiError> {
    let q = query(q)?;
    let account = q
        .account
        .as_deref()
        .ok_or_else(|| InvalidValue::new("account", "is required"))?;
    let page = s
        .shared
        .admin
        .targets(&ctx, &AccountId::parse(account)?, &q.page()?)
        .await?;
    Ok(page_json(page, |t| TargetEntry {
        version: t.version,
        target: target_view(&t.value),
    }))
}

/// Read a target
#[cfg_attr(feature = "openapi", utoipa::path(
    get, path = "/v1/admin/targets/{name}", operation_id = "getTarget", tag = "admin-targets",
    params(("name" = TargetName, Path, description = "The target's name."), Caller),
    responses((status = 200, description = "The target.", body = Versioned<TargetView>, headers(("ETag" = ETag)))),
))]
pub async fn get_target(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    Caller(ctx): Caller,
) -> Result<Response, ApiError> {
    let t = s
        .shared
        .admin
        .target(&ctx, &TargetName::parse(&name)?)
        .await?;
    Ok(versioned_response(
        StatusCode::OK,
        t.version,
        target_view(&t.value),
    ))
}

/// Create a target
///
/// A federated-user target's keys make it sensitive (X-Cooper-TOTP).
#[cfg_attr(feature = "openapi", utoipa::path(
    post, path = "/v1/admin/targets", operation_id = "createTarget", tag = "admin-targets",
    params(Caller),
    request_body(content = TargetCreate, example = json!({
        "name": "payments-readonly", "account_id": "123456789012", "level": 10, "kind": "role",
        "role_arn": "arn:aws:iam::123456789012:role/ReadOnly", "max_duration_seconds": 3600,
        "session_tags": [{"key": "cooper-user", "from": "user", "transitive": true},
                         {"key": "team", "value": "payments"}],
        "description": "Read-only access to payments"})),
    responses((status = 201, description = "The target, at version 1.", body = Versioned<TargetView>, headers(("ETag" = ETag)))),
))]
pub async fn create_target(
    State(s): State<AdminState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody<TargetBody>,
) -> Result<Response, ApiError> {
    let t = s
        .shared
        .admin
        .create_target(&ctx, TargetSpec::try_from(body)?)
        .await?;
    Ok(versioned_response(
        StatusCode::CREATED,
        t.version,
        target_view(&t.value),
    ))
}

/// Replace a target (its account cannot change)
#[cfg_attr(feature = "openapi", utoipa::path(
    put, path = "/v1/admin/targets/{name}", operation_id = "updateTarget", tag = "admin-targets",
    params(("name" = TargetName, Path, description = "The target's name."), Caller, ("If-Match" = IfMatch, Header, description = "The ETag read; an update of a stale version is refused (409).")),
    request_body(content = TargetUpdate, example = json!({
        "account_id": "123456789012", "level": 10, "kind": "role",
        "role_arn": "arn:aws:iam::123456789012:role/ReadOnly", "max_duration_seconds": 7200})),
    responses((status = 200, description = "The target, at its new version.", body = Versioned<TargetView>, headers(("ETag" = ETag)))),
))]
pub async fn update_target(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    Caller(ctx): Caller,
    IfMatch(version): IfMatch,
    JsonBody(mut body): JsonBody<TargetBody>,
) -> Result<Response, ApiError> {
    keyed("name", &mut body.name, &name)?;
    let t = s
        .shared
        .admin
        .update_target(&ctx, TargetSpec::try_from(body)?, version)
        .await?;
    Ok(versioned_response(
        StatusCode::OK,
        t.version,
        target_view(&t.value),
    ))
}

/// Delete a target
///
/// Refused (409 `in_use`) while grants name it, unless `cascade`.
#[cfg_attr(feature = "openapi", utoipa::path(
    delete, path = "/v1/admin/targets/{name}", operation_id = "deleteTarget", tag = "admin-targets",
    params(("name" = TargetName, Path, description = "The target's name."), Caller, DeleteQuery, ("If-Match" = Option<IfMatch>, Header, description = "The ETag read: delete only that version.")),
    responses((status = 200, description = "What was deleted.", body = RemovedView)),
))]
pub async fn delete_target(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    q: QueryResult<DeleteQuery>,
    Caller(ctx): Caller,
    IfMatch(version): IfMatch,
) -> Result<Json<RemovedView>, ApiError> {
    let q = query(q)?;
    Ok(removed(
        s.shared
            .admin
            .delete_target(&ctx, &TargetName::parse(&name)?, version, q.cascade)
            .await?,
    ))
}
