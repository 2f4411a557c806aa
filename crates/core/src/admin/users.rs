//! Users, their authenticators and their API tokens: universal admins only.

use serde_json::json;

use crate::admin::store::{Page, PageRequest, Versioned};
use crate::ledger::{Change, Expect, Reference};
use crate::model::{Principal, User};
use crate::names::{InvalidValue, TokenLabel, UserName};
use crate::token::{ApiToken, ApiTokenRecord, EnrollmentCode, EnrollmentCodeRecord, TokenId};

use super::kernel::*;

impl Admin {
    // ---- users ----

    pub async fn users(
        &self,
        _ctx: &AdminContext,
        page: &PageRequest,
    ) -> Result<Page<Versioned<User>>, AdminError> {
        Ok(self.store.users(page).await?)
    }

    /// A user as admins see them; an account admin sees only the admin grants their scope
    /// covers.
    pub async fn user(
        &self,
        ctx: &AdminContext,
        name: &UserName,
    ) -> Result<UserDetails, AdminError> {
        let user = self
            .store
            .user(name)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("user {name}")))?;
        let principal = Principal::User(name.clone());
        let (groups, admin_grants, factors) = futures_util::future::try_join3(
            self.store.memberships(name),
            self.store.admin_grants_of(&principal),
            self.factors.factors(name),
        )
        .await?;
        let admin_grants = admin_grants
            .into_iter()
            .filter(|g| ctx.scope.includes(&g.scope()))
            .collect();
        Ok(UserDetails {
            user,
            groups,
            admin_grants,
            totp_enrolled: factors.totp.is_some(),
            has_password: factors.password.is_some(),
        })
    }

    pub async fn create_user(
        &self,
        ctx: &AdminContext,
        user: User,
    ) -> Result<Versioned<User>, AdminError> {
        let resource = format!("user:{}", user.name);
        let put = Change::PutUser(user.clone(), Expect::Absent);
        self.create_universal(ctx, &resource, None, user, put).await
    }

    pub async fn update_user(
        &self,
        ctx: &AdminContext,
        user: User,
        version: Option<u64>,
    ) -> Result<Versioned<User>, AdminError> {
        let resource = format!("user:{}", user.name);
        self.check(ctx, &resource, "update", Self::universal(ctx))
            .await?;
        let version = Self::require_version(version)?;
        let before = self
            .store
            .user(&user.name)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("user {}", user.name)))?;
        self.commit(
            ctx,
            &resource,
            "update",
            None,
            Some(view(&before.value)),
            Some(view(&user)),
            vec![Change::PutUser(user.clone(), Expect::Version(version))],
        )
        .await?;
        Ok(Versioned {
            value: user,
            version: version + 1,
        })
    }

    pub async fn delete_user(
        &self,
        ctx: &AdminContext,
        name: &UserName,
        version: Option<u64>,
        cascade: bool,
    ) -> Result<Removed, AdminError> {
        let resource = format!("user:{name}");
        self.check(ctx, &resource, "delete", Self::universal(ctx))
            .await?;
        let details = self.user(ctx, name).await?;
        let principal = Principal::User(name.clone());
        let (grants, tokens, temporary) = futures_util::future::try_join3(
            self.store.grants_of(&principal),
            self.store.tokens_of(name),
            self.directory.temporary_grants(name),
        )
        .await?;
        let mut dependents: Vec<(String, Change)> = grants
            .into_iter()
            .map(|g| (grant_name(&g), Change::DeleteGrant(g.key())))
            .collect();
        dependents.extend(
            details
                .admin_grants
                .into_iter()
                .map(|a| (admin_grant_name(&a), Change::DeleteAdminGrant(a))),
        );
        dependents.extend(details.groups.into_iter().map(|g| {
            (
                format!("membership of {g}"),
                Change::RemoveMember(name.clone(), g),
            )
        }));
        self.check(
            ctx,
            &resource,
            "delete",
            self.step_up(ctx, Sensitive::DeleteUser).await,
        )
        .await?;
        if !dependents.is_empty() && !cascade {
            return Err(AdminError::InUse {
                what: resource,
                dependents: dependents.into_iter().map(|(n, _)| n).take(20).collect(),
            });
        }
        // What the user owns goes with them: tokens, authenticator, password, and the time-bound
        // grants approved requests gave them (kept by name: someone made later under the same
        // name must not find them).
        dependents.extend(
            tokens
                .into_iter()
                .map(|t| (format!("token {}", t.id), Change::DeleteToken(t.id))),
        );
        dependents.extend(temporary.into_iter().filter_map(|g| {
            let request = g.via?;
            Some((
                format!("time-bound grant of access request {request}"),
                Change::EndTemporaryGrant {
                    user: name.clone(),
                    request,
                },
            ))
        }));
        dependents.push((
            "authentication factors".into(),
            Change::DeleteFactors(name.clone()),
        ));
        self.remove(
            ctx,
            &resource,
            None,
            view(&details.user.value),
            Change::DeleteUser(
                name.clone(),
                version.map_or(Expect::Present, Expect::Version),
            ),
            dependents,
            false,
            true,
        )
        .await
    }

    /// Removes a user's authenticator, so they can enroll again (after losing their phone).
    pub async fn reset_totp(&self, ctx: &AdminContext, name: &UserName) -> Result<(), AdminError> {
        let resource = format!("user:{name}");
        self.check(ctx, &resource, "reset_totp", Self::universal(ctx))
            .await?;
        self.check(
            ctx,
            &resource,
            "reset_totp",
            self.step_up(ctx, Sensitive::ResetTotp).await,
        )
        .await?;
        self.commit(
            ctx,
            &resource,
            "reset_totp",
            None,
            None,
            None,
            vec![
                Change::Require(Reference::User(name.clone())),
                Change::DeleteFactors(name.clone()),
            ],
        )
        .await
    }

    pub async fn tokens(
        &self,
        ctx: &AdminContext,
        user: &UserName,
    ) -> Result<Vec<ApiTokenRecord>, AdminError> {
        self.check(
            ctx,
            &format!("user:{user}"),
            "list tokens",
            Self::universal(ctx),
        )
        .await?;
        Ok(self.store.tokens_of(user).await?)
    }

    /// A new API token for a user; the whole token is returned once, never stored.
    pub async fn issue_token(
        &self,
        ctx: &AdminContext,
        user: &UserName,
        label: Option<TokenLabel>,
        days: Option<i64>,
    ) -> Result<(ApiToken, ApiTokenRecord), AdminError> {
        let resource = format!("user:{user}");
        self.check(ctx, &resource, "issue_token", Self::universal(ctx))
            .await?;
        self.check(
            ctx,
            &resource,
            "issue_token",
            self.step_up(ctx, Sensitive::IssueToken).await,
        )
        .await?;
        let days = days.unwrap_or(ISSUED_TOKEN_DAYS);
        if !(1..=365).contains(&days) {
            return Err(InvalidValue::new("days", "must be 1 to 365").into());
        }
        let token = ApiToken::generate(self.entropy.as_ref())?;
        // The user's groups now, as the token's hint: its first issuance in a fresh process
        // reads their grants beside the profile instead of after it.
        let groups = self.store.memberships(user).await?;
        let mut record = ApiTokenRecord::issue(
            &token,
            user.clone(),
            self.clock.now(),
            time::Duration::days(days),
        )
        .hinting(crate::catalog::hint_of(groups));
        record.label = label;
        self.commit(
            ctx,
            &resource,
            "issue_token",
            None,
            None,
            Some(json!({"token_id": record.id, "expires_at": record.expires_at.unix_timestamp(), "label": record.label})),
            vec![Change::Require(Reference::User(user.clone())), Change::PutToken(record.clone())],
        )
        .await?;
        Ok((token, record))
    }

    /// A one-time code that lets `user` enroll a first authenticator (and set a first
    /// password): the way in for someone with no other (no identity provider). The whole code is
    /// returned once, never stored. The authenticator it enrolls is marked with who issued it:
    /// it never counts as a second person for that admin's own requests.
    pub async fn issue_enrollment_code(
        &self,
        ctx: &AdminContext,
        user: &UserName,
        hours: Option<i64>,
    ) -> Result<(EnrollmentCode, EnrollmentCodeRecord), AdminError> {
        let resource = format!("user:{user}");
        let action = "issue_enrollment_code";
        self.check(ctx, &resource, action, Self::universal(ctx))
            .await?;
        self.check(
            ctx,
            &resource,
            action,
            self.step_up(ctx, Sensitive::EnrollmentCode).await,
        )
        .await?;
        let hours = hours.unwrap_or(ENROLLMENT_CODE_HOURS);
        if !(1..=MAX_ENROLLMENT_CODE_HOURS).contains(&hours) {
            return Err(InvalidValue::new(
                "hours",
                format!("must be 1 to {MAX_ENROLLMENT_CODE_HOURS}"),
            )
            .into());
        }
        // A code enrolls a first authenticator only: someone who has one resets it first (an
        // audited change of its own).
        if self.factors.factors(user).await?.totp.is_some() {
            return Err(AdminError::AlreadyEnrolled(user.clone()));
        }
        let code = EnrollmentCode::generate(self.entropy.as_ref())?;
        let issued_by = ctx.admin().map(|c| c.user.name.clone());
        let record = EnrollmentCodeRecord::issue(
            &code,
            user.clone(),
            issued_by,
            self.clock.now(),
            time::Duration::hours(hours),
        );
        self.commit(
            ctx,
            &resource,
            action,
            None,
            None,
            Some(json!({"enrollment_code_id": record.id, "expires_at": record.expires_at.unix_timestamp()})),
            vec![
                Change::Require(Reference::User(user.clone())),
                Change::PutEnrollmentCode(record.clone()),
            ],
        )
        .await?;
        Ok((code, record))
    }

    pub async fn revoke_token(&self, ctx: &AdminContext, id: &TokenId) -> Result<(), AdminError> {
        let resource = format!("token:{id}");
        self.check(ctx, &resource, "revoke", Self::universal(ctx))
            .await?;
        let record = self
            .store
            .token(id)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("token {id}")))?;
        self.commit(
            ctx,
            &resource,
            "revoke",
            None,
            Some(json!({"user": record.user, "revoked": record.revoked})),
            Some(json!({"user": record.user, "revoked": true})),
            vec![Change::RevokeToken(id.clone())],
        )
        .await
    }
}
