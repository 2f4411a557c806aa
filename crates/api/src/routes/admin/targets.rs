//! `/v1/admin/targets`: what users may become.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use cooper_core::admin::{KindSpec, TargetSpec};
use cooper_core::model::{Principal, Sealed, Target, TargetKind};
use cooper_core::names::{
    AccountId, Description, ExternalId, InvalidValue, Level, RoleArn, SessionPolicy, TargetName,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Caller, DeleteQuery, IfMatch, ListQuery, QueryResult, key_of, keyed, page_json, query, removed,
    set, versioned_response,
};
use crate::error::ApiError;
use crate::json::JsonBody;
use crate::state::AdminState;

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
        })
    }
}

fn target_view(t: &Target) -> Value {
    let mut v = json!({
        "name": t.name,
        "account_id": t.account,
        "kind": t.kind.label(),
        "level": t.level,
        "max_duration_seconds": t.max_duration_seconds,
        "high_security": t.high_security,
        "approvers": t.approvers,
        "description": t.description,
    });
    match &t.kind {
        TargetKind::Role {
            role_arn,
            external_id,
        } => {
            set(&mut v, "role_arn", json!(role_arn));
            set(&mut v, "external_id", json!(external_id));
        }
        TargetKind::FederatedUser {
            partition,
            session_policy,
            ..
        } => {
            set(&mut v, "partition", json!(partition));
            let policy = serde_json::from_str(session_policy.as_str()).unwrap_or(Value::Null);
            set(&mut v, "session_policy", policy);
            // The sealed keys are never sent back: it is enough to know they are set.
            set(&mut v, "federation_keys", json!("sealed"));
        }
    }
    v
}

pub async fn list_targets(
    State(s): State<AdminState>,
    q: QueryResult<ListQuery>,
    Caller(ctx): Caller,
) -> Result<Json<Value>, ApiError> {
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
    Ok(page_json(
        page,
        |t| json!({ "version": t.version, "target": target_view(&t.value) }),
    ))
}

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

pub async fn delete_target(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    q: QueryResult<DeleteQuery>,
    Caller(ctx): Caller,
    IfMatch(version): IfMatch,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    Ok(removed(
        s.shared
            .admin
            .delete_target(&ctx, &TargetName::parse(&name)?, version, q.cascade)
            .await?,
    ))
}
