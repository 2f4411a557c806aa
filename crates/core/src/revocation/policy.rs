//! The deny that ends AWS sessions cooper issued: one inline policy, `cooper-revocations`, on
//! each role (or federation IAM user) a revoked person was issued sessions of. One statement per
//! person: deny everything to sessions that name them and were issued before the revocation.
//!
//! The policy is a projection of what the directory holds (one record per holder and person,
//! written with the revocation's audit record), so writing it again is always safe, and a
//! failed write can be redone from the directory alone.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::model::{Target, TargetKind};
use crate::names::{AccountId, FederatedUserName, Partition, SourceIdentity, UserName};

/// The inline policy's name on every holder.
pub const POLICY_NAME: &str = "cooper-revocations";

/// IAM's limits on a holder's inline policies (characters other than white space): what one
/// role may hold in all, and one IAM user.
pub const ROLE_POLICY_LIMIT: usize = 10_240;
pub const USER_POLICY_LIMIT: usize = 2_048;

/// Where a revocation's deny goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyHolder {
    /// A role target's role (by name, in its account and partition).
    Role {
        partition: Partition,
        account: AccountId,
        name: String,
    },
    /// The IAM user a federated-user target's keys belong to, known by the key's id (IAM tells
    /// the user's name from it).
    KeyOwner {
        partition: Partition,
        account: AccountId,
        access_key_id: String,
    },
}

impl PolicyHolder {
    /// The holder's key in the directory: the role's ARN, or the key owner's account and key id.
    pub fn key(&self) -> String {
        match self {
            Self::Role {
                partition,
                account,
                name,
            } => format!("arn:{partition}:iam::{account}:role/{name}"),
            Self::KeyOwner {
                partition,
                account,
                access_key_id,
            } => format!("arn:{partition}:iam::{account}:access-key/{access_key_id}"),
        }
    }

    pub fn account(&self) -> &AccountId {
        match self {
            Self::Role { account, .. } | Self::KeyOwner { account, .. } => account,
        }
    }

    /// The longest session STS issues on it: what a statement must outlive.
    pub fn longest_session(&self) -> time::Duration {
        match self {
            Self::Role { .. } => time::Duration::hours(12),
            Self::KeyOwner { .. } => time::Duration::hours(36),
        }
    }

    fn limit(&self) -> usize {
        match self {
            Self::Role { .. } => ROLE_POLICY_LIMIT,
            Self::KeyOwner { .. } => USER_POLICY_LIMIT,
        }
    }

    /// How sessions on this holder name `person`: the condition key and its value.
    pub fn matcher(&self, person: &UserName) -> SessionMatch {
        match self {
            Self::Role { .. } => SessionMatch {
                key: "aws:SourceIdentity".into(),
                value: SourceIdentity::for_user(person).as_str().to_owned(),
            },
            Self::KeyOwner { account, .. } => SessionMatch {
                key: "aws:userid".into(),
                value: format!("{account}:{}", FederatedUserName::for_user(person).as_str()),
            },
        }
    }

    /// The holder of a role target (`None` for a federated-user target, whose holder is known
    /// only once its keys are opened: see [`PolicyHolder::KeyOwner`]).
    pub fn of_role(target: &Target) -> Option<Self> {
        match &target.kind {
            TargetKind::Role { role_arn, .. } => Some(Self::Role {
                partition: role_arn.partition(),
                account: target.account.clone(),
                name: role_arn.role_name().to_owned(),
            }),
            TargetKind::FederatedUser { .. } => None,
        }
    }
}

/// A condition naming a person's sessions: `StringEquals {key: value}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionMatch {
    pub key: String,
    pub value: String,
}

/// One person's sessions on one holder, ended up to `before`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedSessions {
    pub person: UserName,
    pub matcher: SessionMatch,
    #[serde(with = "time::serde::rfc3339")]
    pub before: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "the revocations on {holder} do not fit in one inline policy ({size} of {limit} characters)"
    )]
    TooLarge {
        holder: String,
        size: usize,
        limit: usize,
    },
}

/// Where a revocation at `t` draws its line: `t` itself when it is a whole second, else the next
/// one. IAM's issue times are whole seconds, so a session issued earlier in the same second is
/// on the denied side of the line too (and one issued later in it, which is the safe side).
pub fn line_at(t: OffsetDateTime) -> OffsetDateTime {
    let whole = t.replace_nanosecond(0).unwrap_or(t);
    if whole == t {
        t
    } else {
        whole + time::Duration::seconds(1)
    }
}

/// The statement id of a person's deny: letters and digits only, as IAM wants.
fn sid(matcher: &SessionMatch) -> String {
    let digest = Sha256::new()
        .chain_update(&matcher.key)
        .chain_update([0])
        .chain_update(&matcher.value)
        .finalize();
    let short: Vec<u8> = digest.iter().take(8).copied().collect();
    format!("CooperRevoked{}", hex::encode(short))
}

/// The policy document for `revoked` on `holder` at `now`: one statement per person (their
/// latest revocation), leaving out those whose sessions have all expired. `None` when nothing
/// is left to deny (the policy may then be removed).
pub fn document(
    holder: &PolicyHolder,
    revoked: &[RevokedSessions],
    now: OffsetDateTime,
) -> Result<Option<String>, PolicyError> {
    let longest = holder.longest_session();
    let mut latest: std::collections::BTreeMap<String, &RevokedSessions> = Default::default();
    for r in revoked.iter().filter(|r| r.before + longest > now) {
        let entry = latest.entry(sid(&r.matcher)).or_insert(r);
        if r.before > entry.before {
            *entry = r;
        }
    }
    if latest.is_empty() {
        return Ok(None);
    }
    let statements: Vec<Value> = latest
        .iter()
        .map(|(sid, r)| {
            let before = line_at(r.before).format(&Rfc3339).unwrap_or_default();
            json!({
                "Sid": sid,
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {
                    "StringEquals": { r.matcher.key.as_str(): r.matcher.value },
                    "DateLessThan": { "aws:TokenIssueTime": before },
                },
            })
        })
        .collect();
    let doc = json!({ "Version": "2012-10-17", "Statement": statements }).to_string();
    let size = doc.chars().filter(|c| !c.is_whitespace()).count();
    if size > holder.limit() {
        return Err(PolicyError::TooLarge {
            holder: holder.key(),
            size,
            limit: holder.limit(),
        });
    }
    Ok(Some(doc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// What IAM decides for the two operators cooper's statements use, over a request's context:
    /// does any statement deny it? (moto stores policies but evaluates no condition, so this is
    /// where the conditions are shown to do what they say.)
    fn denies(doc: &str, context: &HashMap<&str, String>) -> bool {
        let doc: Value = serde_json::from_str(doc).unwrap();
        doc["Statement"].as_array().unwrap().iter().any(|s| {
            assert_eq!(s["Effect"], "Deny");
            assert_eq!(s["Action"], "*");
            let conditions = s["Condition"].as_object().unwrap();
            conditions.iter().all(|(op, pairs)| {
                pairs.as_object().unwrap().iter().all(|(key, want)| {
                    let Some(have) = context.get(key.as_str()) else {
                        // A missing key fails both operators (no IfExists): no match.
                        return false;
                    };
                    let want = want.as_str().unwrap();
                    match op.as_str() {
                        "StringEquals" => have == want,
                        "DateLessThan" => {
                            OffsetDateTime::parse(have, &Rfc3339).unwrap()
                                < OffsetDateTime::parse(want, &Rfc3339).unwrap()
                        }
                        other => panic!("unexpected operator {other}"),
                    }
                })
            })
        })
    }

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + secs).unwrap()
    }

    fn iso(t: OffsetDateTime) -> String {
        t.format(&Rfc3339).unwrap()
    }

    fn role() -> PolicyHolder {
        PolicyHolder::Role {
            partition: Partition::Aws,
            account: AccountId::parse("111111111111").unwrap(),
            name: "cooper-admin".into(),
        }
    }

    fn revoked(holder: &PolicyHolder, person: &str, before: OffsetDateTime) -> RevokedSessions {
        let person = UserName::parse(person).unwrap();
        RevokedSessions {
            matcher: holder.matcher(&person),
            person,
            before,
        }
    }

    fn role_session(person: &str, issued: OffsetDateTime) -> HashMap<&'static str, String> {
        HashMap::from([
            ("aws:SourceIdentity", person.to_owned()),
            ("aws:TokenIssueTime", iso(issued)),
        ])
    }

    #[test]
    fn exactly_the_persons_sessions_issued_before_the_revocation_are_denied() {
        let h = role();
        let doc = document(&h, &[revoked(&h, "alice", at(1000))], at(1000))
            .unwrap()
            .unwrap();
        assert!(denies(&doc, &role_session("alice", at(999))));
        assert!(
            !denies(&doc, &role_session("alice", at(1000))),
            "issued at the revocation"
        );
        assert!(!denies(&doc, &role_session("alice", at(1001))));
        assert!(!denies(&doc, &role_session("bob", at(10))));
        assert!(!denies(&doc, &role_session("alice-x", at(10))));
        // Long-term credentials carry no issue time: not matched.
        let long_term = HashMap::from([("aws:SourceIdentity", "alice".to_owned())]);
        assert!(!denies(&doc, &long_term));
    }

    #[test]
    fn the_line_is_never_before_the_revocation() {
        let t = time::macros::datetime!(2026-03-02 09:00:00.25 UTC);
        assert_eq!(line_at(t), time::macros::datetime!(2026-03-02 09:00:01 UTC));
        let whole = time::macros::datetime!(2026-03-02 09:00:00 UTC);
        assert_eq!(line_at(whole), whole);
        // A session issued at 09:00:00 (IAM's grain), before a revocation at 09:00:00.25:
        let h = role();
        let doc = document(&h, &[revoked(&h, "alice", t)], t)
            .unwrap()
            .unwrap();
        assert!(denies(&doc, &role_session("alice", whole)));
    }

    #[test]
    fn two_people_are_two_statements_and_a_second_revocation_moves_the_line() {
        let h = role();
        let list = [
            revoked(&h, "alice", at(1000)),
            revoked(&h, "bob", at(1200)),
            revoked(&h, "alice", at(2000)),
        ];
        let doc = document(&h, &list, at(2000)).unwrap().unwrap();
        let v: Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(v["Statement"].as_array().unwrap().len(), 2);
        assert!(denies(&doc, &role_session("alice", at(1500))));
        assert!(denies(&doc, &role_session("bob", at(1100))));
        assert!(!denies(&doc, &role_session("bob", at(1300))));
    }

    #[test]
    fn statements_go_once_every_session_they_could_cover_has_expired() {
        let h = role();
        let list = [revoked(&h, "alice", at(0)), revoked(&h, "bob", at(40_000))];
        let later = at(12 * 3600 + 1);
        let doc = document(&h, &list, later).unwrap().unwrap();
        assert!(!doc.contains(&sid(&h.matcher(&UserName::parse("alice").unwrap()))));
        assert!(denies(&doc, &role_session("bob", at(39_000))));
        assert_eq!(document(&h, &list[..1], later).unwrap(), None);
    }

    #[test]
    fn federated_users_are_matched_by_their_user_id() {
        let h = PolicyHolder::KeyOwner {
            partition: Partition::Aws,
            account: AccountId::parse("222222222222").unwrap(),
            access_key_id: "AKIAEXAMPLE".into(),
        };
        let doc = document(&h, &[revoked(&h, "alice", at(1000))], at(1000))
            .unwrap()
            .unwrap();
        let session = |id: &str, issued| {
            HashMap::from([
                ("aws:userid", id.to_owned()),
                ("aws:TokenIssueTime", iso(issued)),
            ])
        };
        assert!(denies(&doc, &session("222222222222:alice", at(10))));
        assert!(!denies(&doc, &session("111111111111:alice", at(10))));
        assert!(!denies(&doc, &session("222222222222:alice", at(1001))));
        assert_eq!(h.longest_session(), time::Duration::hours(36));
    }

    #[test]
    fn a_policy_too_large_for_iam_is_refused_not_truncated() {
        let h = PolicyHolder::KeyOwner {
            partition: Partition::Aws,
            account: AccountId::parse("222222222222").unwrap(),
            access_key_id: "AKIAEXAMPLE".into(),
        };
        let many: Vec<_> = (0..20)
            .map(|n| revoked(&h, &format!("person{n}"), at(1000)))
            .collect();
        assert!(matches!(
            document(&h, &many, at(1000)),
            Err(PolicyError::TooLarge {
                limit: USER_POLICY_LIMIT,
                ..
            })
        ));
    }
}
