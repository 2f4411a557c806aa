//! `/v1/admin/groups`: groups of users, and their members.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use cooper_core::model::Group;
use cooper_core::names::{Description, GroupName, InvalidValue, UserName};
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
pub struct GroupBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

impl TryFrom<GroupBody> for Group {
    type Error = InvalidValue;

    fn try_from(body: GroupBody) -> Result<Self, InvalidValue> {
        Ok(Group {
            name: GroupName::parse(&key_of("name", body.name)?)?,
            description: body
                .description
                .as_deref()
                .map(Description::parse)
                .transpose()?,
        })
    }
}

fn group_view(g: &Group) -> Value {
    json!({ "name": g.name, "description": g.description })
}

pub async fn list_groups(
    State(s): State<AdminState>,
    q: QueryResult<ListQuery>,
    Caller(ctx): Caller,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let page = s.shared.admin.groups(&ctx, &q.page()?).await?;
    Ok(page_json(
        page,
        |g| json!({ "version": g.version, "group": group_view(&g.value) }),
    ))
}

pub async fn get_group(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    Caller(ctx): Caller,
) -> Result<Response, ApiError> {
    let (g, members) = s
        .shared
        .admin
        .group(&ctx, &GroupName::parse(&name)?)
        .await?;
    let mut v = group_view(&g.value);
    set(&mut v, "members", json!(members));
    Ok(versioned_response(StatusCode::OK, g.version, v))
}

pub async fn create_group(
    State(s): State<AdminState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody<GroupBody>,
) -> Result<Response, ApiError> {
    let g = s
        .shared
        .admin
        .create_group(&ctx, Group::try_from(body)?)
        .await?;
    Ok(versioned_response(
        StatusCode::CREATED,
        g.version,
        group_view(&g.value),
    ))
}

pub async fn update_group(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    Caller(ctx): Caller,
    IfMatch(version): IfMatch,
    JsonBody(mut body): JsonBody<GroupBody>,
) -> Result<Response, ApiError> {
    keyed("name", &mut body.name, &name)?;
    let g = s
        .shared
        .admin
        .update_group(&ctx, Group::try_from(body)?, version)
        .await?;
    Ok(versioned_response(
        StatusCode::OK,
        g.version,
        group_view(&g.value),
    ))
}

pub async fn delete_group(
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
            .delete_group(&ctx, &GroupName::parse(&name)?, version, q.cascade)
            .await?,
    ))
}

pub async fn add_member(
    State(s): State<AdminState>,
    Path((group, user)): Path<(String, String)>,
    Caller(ctx): Caller,
) -> Result<Json<Value>, ApiError> {
    let (group, user) = (GroupName::parse(&group)?, UserName::parse(&user)?);
    s.shared.admin.add_member(&ctx, &group, &user).await?;
    Ok(Json(json!({ "group": group, "member": user })))
}

pub async fn remove_member(
    State(s): State<AdminState>,
    Path((group, user)): Path<(String, String)>,
    Caller(ctx): Caller,
) -> Result<Json<Value>, ApiError> {
    let (group, user) = (GroupName::parse(&group)?, UserName::parse(&user)?);
    s.shared.admin.remove_member(&ctx, &group, &user).await?;
    Ok(Json(json!({ "group": group, "removed": user })))
}
