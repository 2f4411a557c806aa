//! `/v1/admin/groups`: groups of users, and their members.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use cooper_core::model::Group;
use cooper_core::names::{Description, GroupName, InvalidValue, UserName};
use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use super::Versioned;
use super::{
    Caller, DeleteQuery, IfMatch, ListQuery, PageView, QueryResult, RemovedView, key_of, keyed,
    page_json, query, removed, versioned_response,
};
use crate::error::ApiError;
use crate::json::JsonBody;
#[cfg(feature = "openapi")]
use crate::schema::ETag;
use crate::state::AdminState;

/// A group's new state (`name`, if given, is the path's: it cannot change).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = GroupUpdate))]
pub struct GroupBody {
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<GroupName>))]
    name: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Description>))]
    description: Option<String>,
}

/// A group to create.
#[cfg(feature = "openapi")]
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct GroupCreate {
    name: GroupName,
    description: Option<Description>,
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

/// A group of users.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Group))]
pub struct GroupView {
    name: GroupName,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    description: Option<Description>,
}

fn group_view(g: &Group) -> GroupView {
    GroupView {
        name: g.name.clone(),
        description: g.description.clone(),
    }
}

/// A group in a list, with its version.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupEntry {
    /// The version, as in ETag.
    version: u64,
    group: GroupView,
}

/// A group and its members.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupDetails {
    #[serde(flatten)]
    group: GroupView,
    members: Vec<UserName>,
}

/// List groups
#[cfg_attr(feature = "openapi", utoipa::path(
    get, path = "/v1/admin/groups", operation_id = "listGroups", tag = "admin-groups",
    params(Caller, ListQuery),
    responses((status = 200, description = "A page of groups.", body = PageView<GroupEntry>)),
))]
pub async fn list_groups(
    State(s): State<AdminState>,
    q: QueryResult<ListQuery>,
    Caller(ctx): Caller,
) -> Result<Json<PageView<GroupEntry>>, ApiError> {
    let q = query(q)?;
    let page = s.shared.admin.groups(&ctx, &q.page()?).await?;
    Ok(page_json(page, |g| GroupEntry {
        version: g.version,
        group: group_view(&g.value),
    }))
}

/// Read a group and its members
#[cfg_attr(feature = "openapi", utoipa::path(
    get, path = "/v1/admin/groups/{name}", operation_id = "getGroup", tag = "admin-groups",
    params(("name" = GroupName, Path, description = "The group's name."), Caller),
    responses((status = 200, description = "The group.", body = Versioned<GroupDetails>, headers(("ETag" = ETag)))),
))]
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
    let details = GroupDetails {
        group: group_view(&g.value),
        members,
    };
    Ok(versioned_response(StatusCode::OK, g.version, details))
}

/// Create a group (universal admins)
#[cfg_attr(feature = "openapi", utoipa::path(
    post, path = "/v1/admin/groups", operation_id = "createGroup", tag = "admin-groups",
    params(Caller),
    request_body(content = GroupCreate, example = json!({"name": "payments-engineers", "description": "Engineers of the payments team"})),
    responses((status = 201, description = "The group, at version 1.", body = Versioned<GroupView>, headers(("ETag" = ETag)))),
))]
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

/// Replace a group (universal admins)
#[cfg_attr(feature = "openapi", utoipa::path(
    put, path = "/v1/admin/groups/{name}", operation_id = "updateGroup", tag = "admin-groups",
    params(("name" = GroupName, Path, description = "The group's name."), Caller, ("If-Match" = IfMatch, Header, description = "The ETag read; an update of a stale version is refused (409).")),
    request_body(content = GroupBody, example = json!({"description": "Engineers of the payments team (EU)"})),
    responses((status = 200, description = "The group, at its new version.", body = Versioned<GroupView>, headers(("ETag" = ETag)))),
))]
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

/// Delete a group
///
/// Refused (409 `in_use`) while grants, admin grants or members depend on it, unless `cascade`.
#[cfg_attr(feature = "openapi", utoipa::path(
    delete, path = "/v1/admin/groups/{name}", operation_id = "deleteGroup", tag = "admin-groups",
    params(("name" = GroupName, Path, description = "The group's name."), Caller, DeleteQuery, ("If-Match" = Option<IfMatch>, Header, description = "The ETag read: delete only that version.")),
    responses((status = 200, description = "What was deleted.", body = RemovedView)),
))]
pub async fn delete_group(
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
            .delete_group(&ctx, &GroupName::parse(&name)?, version, q.cascade)
            .await?,
    ))
}

/// The user is a member of the group.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberAdded {
    group: GroupName,
    member: UserName,
}

/// The user is no longer a member of the group.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberRemoved {
    group: GroupName,
    removed: UserName,
}

/// Add a user to a group
#[cfg_attr(feature = "openapi", utoipa::path(
    put, path = "/v1/admin/groups/{name}/members/{user}", operation_id = "addGroupMember", tag = "admin-groups",
    params(("name" = GroupName, Path, description = "The group's name."), ("user" = UserName, Path, description = "The member."), Caller),
    responses((status = 200, description = "Added.", body = MemberAdded)),
))]
pub async fn add_member(
    State(s): State<AdminState>,
    Path((group, user)): Path<(String, String)>,
    Caller(ctx): Caller,
) -> Result<Json<MemberAdded>, ApiError> {
    let (group, user) = (GroupName::parse(&group)?, UserName::parse(&user)?);
    s.shared.admin.add_member(&ctx, &group, &user).await?;
    Ok(Json(MemberAdded {
        group,
        member: user,
    }))
}

/// Remove a user from a group
#[cfg_attr(feature = "openapi", utoipa::path(
    delete, path = "/v1/admin/groups/{name}/members/{user}", operation_id = "removeGroupMember", tag = "admin-groups",
    params(("name" = GroupName, Path, description = "The group's name."), ("user" = UserName, Path, description = "The member."), Caller),
    responses((status = 200, description = "Removed.", body = MemberRemoved)),
))]
pub async fn remove_member(
    State(s): State<AdminState>,
    Path((group, user)): Path<(String, String)>,
    Caller(ctx): Caller,
) -> Result<Json<MemberRemoved>, ApiError> {
    let (group, user) = (GroupName::parse(&group)?, UserName::parse(&user)?);
    s.shared.admin.remove_member(&ctx, &group, &user).await?;
    Ok(Json(MemberRemoved {
        group,
        removed: user,
    }))
}
