//! Users' authentication factors in the directory table, apart from their profiles:
//! partition `AUTH#<user>`, items `TOTP`, `TOTP_PENDING`, `PASSWORD` and `GUARD` (failures and
//! lockout). One Query reads them all; a failure is one conditional UpdateItem; everything else
//! is written by the ledger, under the conditions defined here.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use cooper_core::model::Sealed;
use cooper_core::model::factors::{
    AuthFactors, Guard, LOCKOUT, MAX_FAILURES, PendingTotp, TotpEnrollment,
};
use cooper_core::names::UserName;
use cooper_core::password::PasswordHash;
use cooper_core::ports::{FactorStore, Service, UpstreamError, UpstreamKind};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{code_of, upstream};
use crate::items::{Item, Keyed, from_item, key, sort_key, to_item};

pub(crate) const TOTP: &str = "TOTP";
pub(crate) const PENDING: &str = "TOTP_PENDING";
pub(crate) const PASSWORD: &str = "PASSWORD";
pub(crate) const GUARD: &str = "GUARD";
pub(crate) const ITEMS: [&str; 4] = [TOTP, PENDING, PASSWORD, GUARD];

/// The prefix of every factor partition (what a function's IAM policy may write).
pub const PARTITION_PREFIX: &str = "AUTH#";

pub(crate) fn factor_key(user: &UserName, sk: &str) -> (String, String) {
    (format!("{PARTITION_PREFIX}{user}"), sk.to_owned())
}

#[derive(Serialize, Deserialize)]
struct TotpBody {
    sealed: Sealed,
    last_step: u64,
    #[serde(with = "time::serde::rfc3339")]
    enrolled_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bootstrapped_by: Option<UserName>,
}

#[derive(Serialize, Deserialize)]
struct PendingBody {
    sealed: Sealed,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bootstrapped_by: Option<UserName>,
    /// DynamoDB's TTL removes forgotten enrollments.
    ttl: i64,
}

#[derive(Serialize, Deserialize)]
struct PasswordBody {
    hash: String,
    #[serde(with = "time::serde::rfc3339")]
    set_at: OffsetDateTime,
}

/// The lockout state. `until` is Unix seconds, so that conditions can compare it with now.
#[derive(Serialize, Deserialize, Default)]
struct GuardBody {
    #[serde(default)]
    failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    until: Option<i64>,
}

/// Claiming a step: only a later step than the last one claimed, and only for an enrollment.
pub(crate) const CLAIM: &str = "SET last_step = :step";
pub(crate) const CLAIM_CONDITION: &str = "attribute_exists(PK) AND last_step < :step";

/// Not locked out (the rule of `Guard::locked_until`): fewer than `:limit` failures, or the last
/// one a lockout ago. Needs `#failures`, `#until`, `:limit` and `:now` (Unix seconds).
pub(crate) const NOT_LOCKED: &str = "attribute_not_exists(#failures) OR #failures < :limit OR attribute_not_exists(#until) OR #until <= :now";

pub(crate) fn totp_item(user: &UserName, e: &TotpEnrollment) -> Result<Item, UpstreamError> {
    to_item(&Keyed::plain(
        factor_key(user, TOTP),
        "totp",
        TotpBody {
            sealed: e.sealed.clone(),
            last_step: e.last_step,
            enrolled_at: e.enrolled_at,
            bootstrapped_by: e.bootstrapped_by.clone(),
        },
    ))
}

pub(crate) fn pending_item(user: &UserName, p: &PendingTotp) -> Result<Item, UpstreamError> {
    to_item(&Keyed::plain(
        factor_key(user, PENDING),
        "totp_pending",
        PendingBody {
            sealed: p.sealed.clone(),
            expires_at: p.expires_at,
            bootstrapped_by: p.bootstrapped_by.clone(),
            ttl: p.expires_at.unix_timestamp() + 86_400,
        },
    ))
}

pub(crate) fn password_item(
    user: &UserName,
    hash: &PasswordHash,
    at: OffsetDateTime,
) -> Result<Item, UpstreamError> {
    to_item(&Keyed::plain(
        factor_key(user, PASSWORD),
        "password",
        PasswordBody {
            hash: hash.as_str().to_owned(),
            set_at: at,
        },
    ))
}

fn guard_of(body: GuardBody) -> Guard {
    Guard {
        failures: body.failures,
        until: body
            .until
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok()),
    }
}

#[derive(Clone)]
pub struct DynamoFactorStore {
    client: Client,
    table: String,
}

impl DynamoFactorStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// One failure, if the item is in the state `condition` names; `None` when it is not.
    async fn count_failure(
        &self,
        user: &UserName,
        update: &str,
        condition: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Guard>, UpstreamError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(factor_key(user, GUARD))))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_names("#failures", "failures")
            .expression_attribute_names("#until", "until")
            .expression_attribute_names("#item", "item")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":item", AttributeValue::S("guard".into()))
            .expression_attribute_values(
                ":now",
                AttributeValue::N(now.unix_timestamp().to_string()),
            )
            .expression_attribute_values(
                ":next",
                AttributeValue::N((now + LOCKOUT).unix_timestamp().to_string()),
            )
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match out {
            Ok(out) => {
                let item = out.attributes.unwrap_or_default();
                let body: GuardBody = serde_dynamo::from_item(item).map_err(|e| {
                    crate::error::corrupt(Service::DynamoDb, format!("lockout state: {e}"))
                })?;
                Ok(Some(guard_of(body)))
            }
            Err(e) if code_of(&e) == Some("ConditionalCheckFailedException") => Ok(None),
            Err(e) => Err(upstream(Service::DynamoDb, e)),
        }
    }
}

#[async_trait]
impl FactorStore for DynamoFactorStore {
    async fn factors(&self, user: &UserName) -> Result<AuthFactors, UpstreamError> {
        let items: Vec<Item> = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(factor_key(user, "").0))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| upstream(Service::DynamoDb, e))?;
        let mut factors = AuthFactors::default();
        for item in items {
            match sort_key(&item) {
                TOTP => {
                    let b = from_item::<Keyed<TotpBody>>(item, "TOTP enrollment")?.body;
                    factors.totp = Some(TotpEnrollment {
                        sealed: b.sealed,
                        last_step: b.last_step,
                        enrolled_at: b.enrolled_at,
                        bootstrapped_by: b.bootstrapped_by,
                    });
                }
                PENDING => {
                    let b = from_item::<Keyed<PendingBody>>(item, "pending TOTP enrollment")?.body;
                    factors.pending = Some(PendingTotp {
                        sealed: b.sealed,
                        expires_at: b.expires_at,
                        bootstrapped_by: b.bootstrapped_by,
                    });
                }
                PASSWORD => {
                    let b = from_item::<Keyed<PasswordBody>>(item, "password")?.body;
                    factors.password = Some(PasswordHash::from_stored(b.hash));
                }
                GUARD => {
                    factors.guard = guard_of(from_item::<Keyed<GuardBody>>(item, "lockout")?.body);
                }
                _ => {}
            }
        }
        Ok(factors)
    }

    async fn record_failure(
        &self,
        user: &UserName,
        now: OffsetDateTime,
    ) -> Result<Guard, UpstreamError> {
        // Within the window of the last failure: one more (an atomic ADD, so concurrent
        // failures each count). Past it: the count starts again at one. Each try either
        // counts or finds the other state, which a concurrent failure may just have made; a
        // few rounds settle it.
        for _ in 0..4 {
            let counted = self
                .count_failure(
                    user,
                    "ADD #failures :one SET #until = :next, #item = :item",
                    "attribute_not_exists(#until) OR #until > :now",
                    now,
                )
                .await?;
            if let Some(guard) = counted {
                return Ok(guard);
            }
            let restarted = self
                .count_failure(
                    user,
                    "SET #failures = :one, #until = :next, #item = :item",
                    "#until <= :now",
                    now,
                )
                .await?;
            if let Some(guard) = restarted {
                return Ok(guard);
            }
        }
        Err(UpstreamError::new(
            Service::DynamoDb,
            UpstreamKind::Throttled,
            format!("could not count a failure for {user} (limit {MAX_FAILURES})"),
        ))
    }
}
