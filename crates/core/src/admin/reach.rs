//! Who can reach an account's top. Granting the top level needs a fresh code; so does anything
//! else that ends with someone reaching a target at the top they did not reach before (lowering
//! a target under a grant, creating one a grant covers, adding a member to a group holding a
//! top grant), or that weakens a target's protection. The rule is checked on the state a change
//! leaves, not on the step alone, and every such change is guarded (`Change::Reach`) so that
//! two changes decided side by side cannot together do what neither could alone.

use time::OffsetDateTime;

use crate::admin::store::PageRequest;
use crate::ledger::{Change, ReachGuard, ReachKey};
use crate::model::{Grant, GrantScope, Principal, Target, TargetKind};
use crate::names::{AccountId, Level, TargetName};

use super::kernel::*;

fn live(grant: &Grant, now: OffsetDateTime) -> bool {
    grant.expires_at.is_none_or(|at| at > now)
}

impl Admin {
    /// A guard on `key` as read now: the change commits only if nothing it watches changed
    /// meanwhile (and, with `moves`, moves it on).
    pub(super) async fn reach_guard(
        &self,
        key: ReachKey,
        moves: bool,
    ) -> Result<Change, AdminError> {
        let seen = self.store.reach(&key).await?;
        let guard = if moves {
            ReachGuard::Moves { seen }
        } else {
            ReachGuard::Unchanged { seen }
        };
        Ok(Change::Reach { key, guard })
    }

    /// The guards of a change to an account's targets: it decides on the account's grants, and
    /// changes to targets land one at a time (each decides on the others' levels).
    pub(super) async fn target_guards(
        &self,
        account: &AccountId,
    ) -> Result<[Change; 2], AdminError> {
        Ok([
            self.reach_guard(ReachKey::AccountTargets(account.clone()), true)
                .await?,
            self.reach_guard(ReachKey::AccountGrants(account.clone()), false)
                .await?,
        ])
    }

    /// The account's top level once `name` is at `level` (`None`: once it is gone).
    pub(super) async fn top_with(
        &self,
        account: &AccountId,
        name: &TargetName,
        level: Option<Level>,
    ) -> Result<Option<Level>, AdminError> {
        let others = self
            .store
            .highest_targets(account, 2)
            .await?
            .into_iter()
            .filter(|t| t.name != *name)
            .map(|t| t.level)
            .max();
        Ok(match (others, level) {
            (Some(o), Some(l)) => Some(o.max(l)),
            (o, l) => o.or(l),
        })
    }

    /// The live cascade grants of `account` that reach `level`.
    pub(super) async fn cascades_reaching(
        &self,
        account: &AccountId,
        level: Level,
    ) -> Result<Vec<Grant>, AdminError> {
        let now = self.clock.now();
        let mut found = Vec::new();
        let mut page = PageRequest::first(crate::admin::store::MAX_PAGE);
        loop {
            let grants = self.store.grants_in(account, &page).await?;
            found.extend(grants.items.into_iter().filter(|g| {
                live(g, now)
                    && matches!(&g.scope, GrantScope::Account { max_level, .. } if *max_level >= level)
            }));
            match grants.cursor {
                Some(cursor) => page.cursor = Some(cursor),
                None => return Ok(found),
            }
        }
    }

    /// Whether `target`, as it will be, is reached at its account's top by a cascade that did
    /// not reach it at `before` (its level until now; `None` for a new target).
    pub(super) async fn newly_reached_at_top(
        &self,
        target: &Target,
        before: Option<Level>,
    ) -> Result<bool, AdminError> {
        if before.is_some_and(|b| target.level >= b) {
            return Ok(false);
        }
        let top = self
            .top_with(&target.account, &target.name, Some(target.level))
            .await?;
        if top.is_some_and(|top| target.level < top) {
            return Ok(false);
        }
        Ok(self
            .cascades_reaching(&target.account, target.level)
            .await?
            .iter()
            .any(|g| match (&g.scope, before) {
                (GrantScope::Account { max_level, .. }, Some(b)) => *max_level < b,
                _ => true,
            }))
    }

    /// Whether a grant (of a group) reaches a target at the top of its account now, and the
    /// account it reaches.
    pub(super) async fn reaches_top(
        &self,
        grant: &Grant,
    ) -> Result<(bool, Option<AccountId>), AdminError> {
        if !live(grant, self.clock.now()) {
            return Ok((false, None));
        }
        match &grant.scope {
            GrantScope::Account { account, max_level } => {
                let top = self.store.top_level(account).await?;
                Ok((top.is_some_and(|t| *max_level >= t), Some(account.clone())))
            }
            GrantScope::Target(name) => match self.store.target(name).await? {
                None => Ok((false, None)),
                Some(t) => {
                    let t = t.value;
                    let top = self.store.top_level(&t.account).await?;
                    Ok((top.is_some_and(|top| t.level >= top), Some(t.account)))
                }
            },
        }
    }
}

/// Whether a change of request policy lets more be requested, from anyone new, or for longer:
/// people not granted something may come to hold it (so it needs the fresh code of weakening).
pub(super) fn widens_requests(
    before: Option<&crate::model::requests::RequestPolicy>,
    after: Option<&crate::model::requests::RequestPolicy>,
) -> bool {
    match (before, after) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(b), Some(a)) => {
            a.approvers.iter().any(|p| !b.approvers.contains(p))
                || a.max_duration_seconds > b.max_duration_seconds
                || match (b.max_level, a.max_level) {
                    (Some(_), None) => true,
                    (Some(b), Some(a)) => a > b,
                    (None, _) => false,
                }
        }
    }
}

/// Whether `after` weakens what protects `before`: high-security turned off, the approvers
/// changed in any way but being given some, more to request, another role, policy or kind,
/// longer sessions, or session tags changed in any way. Tags count whichever way they change:
/// the target account's policies decide what a tag opens (an `Allow` on a team's tag) or
/// closes (a `Deny` on a fixed marker), and cooper cannot tell which, so adding, changing,
/// making transitive or not, and removing one all need the fresh code.
pub(super) fn weakens(before: &Target, after: &Target) -> bool {
    let approvers_changed = {
        let set = |t: &Target| {
            let mut v: Vec<String> = t.approvers.iter().map(Principal::to_string).collect();
            v.sort();
            v
        };
        !before.approvers.is_empty() && set(before) != set(after)
    };
    let what_it_gives = match (&before.kind, &after.kind) {
        (
            TargetKind::Role {
                role_arn: a,
                external_id: x,
            },
            TargetKind::Role {
                role_arn: b,
                external_id: y,
            },
        ) => a != b || x != y,
        (
            TargetKind::FederatedUser {
                session_policy: a, ..
            },
            TargetKind::FederatedUser {
                session_policy: b, ..
            },
        ) => a != b,
        _ => true,
    };
    (before.high_security && !after.high_security)
        || approvers_changed
        || widens_requests(
            before.access_requests.as_ref(),
            after.access_requests.as_ref(),
        )
        || what_it_gives
        || after.max_duration_seconds > before.max_duration_seconds
        || !before.session_tags.same_as(&after.session_tags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::requests::RequestPolicy;
    use crate::names::{GroupName, RoleArn, UserName};

    fn user(name: &str) -> Principal {
        Principal::User(UserName::parse(name).unwrap())
    }

    fn policy(approvers: &[&str], hours: u32, max_level: Option<u32>) -> RequestPolicy {
        RequestPolicy {
            approvers: approvers.iter().map(|a| user(a)).collect(),
            max_duration_seconds: hours * 3600,
            max_level: max_level.map(|l| Level::new(l).unwrap()),
        }
    }

    #[test]
    fn a_request_policy_widens_with_new_approvers_longer_access_or_higher_levels() {
        let base = policy(&["carol", "dave"], 4, Some(50));
        let widens = |after: Option<&RequestPolicy>| widens_requests(Some(&base), after);
        assert!(widens_requests(None, Some(&base)));
        assert!(!widens(None), "no more requests");
        assert!(!widens(Some(&base)));
        assert!(widens(Some(&policy(
            &["carol", "dave", "erin"],
            4,
            Some(50)
        ))));
        assert!(
            !widens(Some(&policy(&["carol"], 4, Some(50)))),
            "fewer approvers"
        );
        assert!(widens(Some(&policy(&["carol", "dave"], 5, Some(50)))));
        assert!(!widens(Some(&policy(&["carol", "dave"], 3, Some(50)))));
        assert!(widens(Some(&policy(&["carol", "dave"], 4, Some(60)))));
        assert!(
            widens(Some(&policy(&["carol", "dave"], 4, None))),
            "any level now"
        );
        assert!(!widens(Some(&policy(&["carol", "dave"], 4, Some(40)))));
        let any_level = policy(&["carol", "dave"], 4, None);
        assert!(!widens_requests(
            Some(&any_level),
            Some(&policy(&["carol", "dave"], 4, Some(10)))
        ));
    }

    #[test]
    fn approvers_taken_away_or_changed_weaken_a_target_and_approvers_given_do_not() {
        let target = |approvers: &[&str]| {
            let mut t = Target::role(
                TargetName::parse("prod").unwrap(),
                AccountId::parse("111111111111").unwrap(),
                Level::new(100).unwrap(),
                RoleArn::parse("arn:aws:iam::111111111111:role/prod").unwrap(),
                None,
                None,
            )
            .unwrap();
            t.approvers = approvers.iter().map(|a| user(a)).collect();
            t
        };
        assert!(!weakens(&target(&["root"]), &target(&["root"])));
        assert!(!weakens(&target(&[]), &target(&[])));
        assert!(!weakens(&target(&[]), &target(&["root"])), "given some");
        assert!(weakens(&target(&["root"]), &target(&[])), "taken away");
        assert!(weakens(&target(&["root"]), &target(&["amy"])), "changed");
        let by_group = |t: Target| Target {
            approvers: vec![Principal::Group(GroupName::parse("ops").unwrap())],
            ..t
        };
        assert!(weakens(&target(&["root"]), &by_group(target(&["root"]))));
    }

    #[test]
    fn each_thing_a_target_gives_or_guards_weakens_it_alone() {
        let base = Target::role(
            TargetName::parse("prod").unwrap(),
            AccountId::parse("111111111111").unwrap(),
            Level::new(100).unwrap(),
            RoleArn::parse("arn:aws:iam::111111111111:role/prod").unwrap(),
            Some(crate::names::ExternalId::parse("cooper-prod-1").unwrap()),
            Some(3600),
        )
        .unwrap();
        let with = |change: &dyn Fn(&mut Target)| {
            let mut t = base.clone();
            change(&mut t);
            t
        };
        let role = |arn: &str, external: Option<&str>| TargetKind::Role {
            role_arn: RoleArn::parse(arn).unwrap(),
            external_id: external.map(|e| crate::names::ExternalId::parse(e).unwrap()),
        };
        let secure = with(&|t| t.high_security = true);
        assert!(weakens(&secure, &base), "high security off");
        assert!(!weakens(&base, &secure), "high security on");
        let other_role = with(&|t| {
            t.kind = role(
                "arn:aws:iam::111111111111:role/admin",
                Some("cooper-prod-1"),
            );
        });
        assert!(weakens(&base, &other_role), "another role");
        let other_id = with(&|t| {
            t.kind = role("arn:aws:iam::111111111111:role/prod", Some("cooper-prod-2"));
        });
        assert!(weakens(&base, &other_id), "another external id");
        let requests = with(&|t| {
            t.access_requests = Some(policy(&["carol"], 1, None));
        });
        assert!(weakens(&base, &requests), "requests allowed");
        assert!(!weakens(&requests, &base), "requests no longer allowed");
        let longer = with(&|t| t.max_duration_seconds = 7200);
        assert!(weakens(&base, &longer), "longer sessions");
        assert!(!weakens(&longer, &base), "shorter sessions");
        let tagged = with(&|t| {
            t.session_tags = crate::tags::SessionTagSpecs::new(vec![crate::tags::SessionTagSpec {
                key: crate::tags::TagKey::parse("team").unwrap(),
                source: crate::tags::TagSource::Fixed(
                    crate::tags::TagValue::parse("payments").unwrap(),
                ),
                transitive: false,
            }])
            .unwrap();
        });
        assert!(weakens(&base, &tagged), "a tag added");
        assert!(weakens(&tagged, &base), "a tag removed");
        assert!(!weakens(&base, &base.clone()));
    }
}
