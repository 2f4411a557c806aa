//! The floor of `make bench`: the AWS calls one cooper issuance makes, made directly with the
//! same SDK and nothing around them, in the same order and with the same concurrency.
//!
//! `bench/run.py` records the calls cooper makes for one request (moto's recorder) and hands
//! them over as JSON: `{"token": GetItem, "target": GetItem, "queries": [Query, ...],
//! "rate": UpdateItem, "grants": BatchGetItem, "assume_role": {...}, "audit": PutItem}`, DynamoDB
//! bodies as sent (the queries: the user's partition and their time-bound grants).
//! This program replays them `--iterations` times and prints each latency in microseconds, one
//! JSON array on stdout. The audit record gets a fresh id each time (it is written only if new).
//! AssumeRole is signed with the broker's keys (`FLOOR_BROKER_ACCESS_KEY_ID` and
//! `FLOOR_BROKER_SECRET_ACCESS_KEY`), as cooper signs it; everything else with the ambient ones.
//!
//!     cooper-floor CALLS.json ITERATIONS

use std::collections::HashMap;
use std::time::Instant;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_sdk_sts::config::Credentials;
use futures_util::FutureExt;
use futures_util::future::join_all;
use serde_json::{Map, Value};

type Error = Box<dyn std::error::Error + Send + Sync>;
type Item = HashMap<String, AttributeValue>;

/// DynamoDB JSON (`{"S": "x"}`, `{"N": "1"}`, ...) as the SDK's attribute values.
fn attribute(value: &Value) -> Result<AttributeValue, Error> {
    let (kind, inner) = value
        .as_object()
        .and_then(|o| o.iter().next())
        .ok_or("an attribute value is an object with one key")?;
    let text = |v: &Value| v.as_str().map(str::to_owned).ok_or("a string");
    let texts = |v: &Value| -> Result<Vec<String>, Error> {
        v.as_array()
            .ok_or("a list")?
            .iter()
            .map(|s| Ok(text(s)?))
            .collect()
    };
    Ok(match kind.as_str() {
        "S" => AttributeValue::S(text(inner)?),
        "N" => AttributeValue::N(text(inner)?),
        "BOOL" => AttributeValue::Bool(inner.as_bool().ok_or("a boolean")?),
        "NULL" => AttributeValue::Null(true),
        "SS" => AttributeValue::Ss(texts(inner)?),
        "NS" => AttributeValue::Ns(texts(inner)?),
        "M" => AttributeValue::M(item(inner)?),
        "L" => AttributeValue::L(
            inner
                .as_array()
                .ok_or("a list")?
                .iter()
                .map(attribute)
                .collect::<Result<_, _>>()?,
        ),
        other => return Err(format!("attribute type {other} is not replayed").into()),
    })
}

fn item(value: &Value) -> Result<Item, Error> {
    value
        .as_object()
        .ok_or("an item is an object")?
        .iter()
        .map(|(k, v)| Ok((k.clone(), attribute(v)?)))
        .collect()
}

fn names(value: Option<&Value>) -> Option<HashMap<String, String>> {
    value?.as_object().map(|o| {
        o.iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect()
    })
}

fn values(value: Option<&Value>) -> Result<Option<Item>, Error> {
    value.map(item).transpose()
}

fn field<'a>(body: &'a Map<String, Value>, name: &str) -> Result<&'a Value, Error> {
    body.get(name)
        .ok_or_else(|| format!("{name} missing").into())
}

fn string(body: &Map<String, Value>, name: &str) -> Result<String, Error> {
    Ok(field(body, name)?.as_str().ok_or("a string")?.to_owned())
}

fn optional(body: &Map<String, Value>, name: &str) -> Option<String> {
    body.get(name).and_then(Value::as_str).map(str::to_owned)
}

struct Calls {
    token: Map<String, Value>,
    target: Map<String, Value>,
    queries: Vec<Map<String, Value>>,
    rate: Map<String, Value>,
    grants: Map<String, Value>,
    assume_role: Map<String, Value>,
    audit: Map<String, Value>,
}

impl Calls {
    fn parse(text: &str) -> Result<Self, Error> {
        let all: Map<String, Value> = serde_json::from_str(text)?;
        let take = |name: &str| -> Result<Map<String, Value>, Error> {
            all.get(name)
                .and_then(Value::as_object)
                .cloned()
                .ok_or_else(|| format!("the recorded call {name} is missing").into())
        };
        Ok(Self {
            token: take("token")?,
            target: take("target")?,
            queries: all
                .get("queries")
                .and_then(Value::as_array)
                .filter(|q| !q.is_empty())
                .ok_or("the recorded calls queries are missing")?
                .iter()
                .map(|q| q.as_object().cloned().ok_or("a query is an object"))
                .collect::<Result<_, _>>()?,
            rate: take("rate")?,
            grants: take("grants")?,
            assume_role: take("assume_role")?,
            audit: take("audit")?,
        })
    }
}

struct Floor {
    dynamodb: aws_sdk_dynamodb::Client,
    sts: aws_sdk_sts::Client,
    calls: Calls,
}

impl Floor {
    async fn get_item(&self, body: &Map<String, Value>) -> Result<(), Error> {
        self.dynamodb
            .get_item()
            .table_name(string(body, "TableName")?)
            .set_key(Some(item(field(body, "Key")?)?))
            .set_consistent_read(body.get("ConsistentRead").and_then(Value::as_bool))
            .send()
            .await?;
        Ok(())
    }

    async fn query(&self, body: &Map<String, Value>) -> Result<(), Error> {
        self.dynamodb
            .query()
            .table_name(string(body, "TableName")?)
            .set_key_condition_expression(optional(body, "KeyConditionExpression"))
            .set_expression_attribute_names(names(body.get("ExpressionAttributeNames")))
            .set_expression_attribute_values(values(body.get("ExpressionAttributeValues"))?)
            .set_consistent_read(body.get("ConsistentRead").and_then(Value::as_bool))
            .send()
            .await?;
        Ok(())
    }

    async fn update_item(&self, body: &Map<String, Value>) -> Result<(), Error> {
        self.dynamodb
            .update_item()
            .table_name(string(body, "TableName")?)
            .set_key(Some(item(field(body, "Key")?)?))
            .set_update_expression(optional(body, "UpdateExpression"))
            .set_condition_expression(optional(body, "ConditionExpression"))
            .set_expression_attribute_names(names(body.get("ExpressionAttributeNames")))
            .set_expression_attribute_values(values(body.get("ExpressionAttributeValues"))?)
            .send()
            .await?;
        Ok(())
    }

    async fn batch_get_item(&self, body: &Map<String, Value>) -> Result<(), Error> {
        let mut request = self.dynamodb.batch_get_item();
        for (table, spec) in field(body, "RequestItems")?
            .as_object()
            .ok_or("RequestItems is an object")?
        {
            let spec = spec.as_object().ok_or("a table's keys are an object")?;
            let keys = field(spec, "Keys")?
                .as_array()
                .ok_or("Keys is a list")?
                .iter()
                .map(item)
                .collect::<Result<Vec<_>, _>>()?;
            request = request.request_items(
                table,
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .set_consistent_read(spec.get("ConsistentRead").and_then(Value::as_bool))
                    .build()?,
            );
        }
        request.send().await?;
        Ok(())
    }

    async fn assume_role(&self) -> Result<(), Error> {
        let p = &self.calls.assume_role;
        self.sts
            .assume_role()
            .role_arn(string(p, "RoleArn")?)
            .role_session_name(string(p, "RoleSessionName")?)
            .set_duration_seconds(optional(p, "DurationSeconds").and_then(|d| d.parse().ok()))
            .set_external_id(optional(p, "ExternalId"))
            .set_source_identity(optional(p, "SourceIdentity"))
            .send()
            .await?;
        Ok(())
    }

    async fn put_audit(&self) -> Result<(), Error> {
        let body = &self.calls.audit;
        let mut record = item(field(body, "Item")?)?;
        record.insert(
            "id".into(),
            AttributeValue::S(uuid::Uuid::now_v7().to_string()),
        );
        self.dynamodb
            .put_item()
            .table_name(string(body, "TableName")?)
            .set_item(Some(record))
            .set_condition_expression(optional(body, "ConditionExpression"))
            .send()
            .await?;
        Ok(())
    }

    /// One issuance's calls, as a warm function makes them: the token; then the decision's
    /// reads side by side (the target, the user's partition and time-bound grants, the groups'
    /// grants) with the request count; then STS; then the audit record.
    async fn issuance(&self) -> Result<(), Error> {
        let c = &self.calls;
        self.get_item(&c.token).await?;
        let mut wave = vec![
            self.get_item(&c.target).boxed(),
            self.batch_get_item(&c.grants).boxed(),
            self.update_item(&c.rate).boxed(),
        ];
        wave.extend(c.queries.iter().map(|q| self.query(q).boxed()));
        for result in join_all(wave).await {
            result?;
        }
        self.assume_role().await?;
        self.put_audit().await
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(iterations)) = (args.next(), args.next()) else {
        return Err("usage: cooper-floor CALLS.json ITERATIONS".into());
    };
    let iterations: usize = iterations.parse()?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let sts = match (
        std::env::var("FLOOR_BROKER_ACCESS_KEY_ID"),
        std::env::var("FLOOR_BROKER_SECRET_ACCESS_KEY"),
    ) {
        (Ok(id), Ok(secret)) => aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&sdk)
                .credentials_provider(Credentials::new(id, secret, None, None, "broker"))
                .build(),
        ),
        _ => aws_sdk_sts::Client::new(&sdk),
    };
    let floor = Floor {
        dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
        sts,
        calls: Calls::parse(&std::fs::read_to_string(path)?)?,
    };
    // One unmeasured issuance opens the connections, as a warm function has them open.
    floor.issuance().await?;
    let mut micros = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        floor.issuance().await?;
        micros.push(start.elapsed().as_micros());
    }
    println!("{}", serde_json::to_string(&micros)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    #[test]
    fn dynamodb_json_becomes_the_sdks_attribute_values() {
        let parsed = item(&json!({
            "PK": {"S": "USER#alice"},
            "n": {"N": "3"},
            "on": {"BOOL": true},
            "gone": {"NULL": true},
            "tags": {"SS": ["a", "b"]},
            "nested": {"M": {"x": {"L": [{"N": "1"}, {"S": "y"}]}}},
        }))
        .unwrap();
        assert_eq!(parsed["PK"], AttributeValue::S("USER#alice".into()));
        assert_eq!(parsed["n"], AttributeValue::N("3".into()));
        assert_eq!(parsed["on"], AttributeValue::Bool(true));
        assert_eq!(parsed["gone"], AttributeValue::Null(true));
        assert_eq!(
            parsed["tags"],
            AttributeValue::Ss(vec!["a".into(), "b".into()])
        );
        let AttributeValue::M(nested) = &parsed["nested"] else {
            unreachable!("a map: {:?}", parsed["nested"]);
        };
        assert_eq!(
            nested["x"],
            AttributeValue::L(vec![
                AttributeValue::N("1".into()),
                AttributeValue::S("y".into())
            ])
        );
        assert!(
            attribute(&json!({"B": "AAAA"})).is_err(),
            "binary is not replayed"
        );
        assert!(attribute(&json!("plain")).is_err());
    }

    #[test]
    fn a_recording_without_every_call_is_refused() {
        let call = json!({"TableName": "t"});
        let mut all = json!({
            "token": call, "target": call, "queries": [call, call], "rate": call,
            "grants": call, "assume_role": {"RoleArn": "arn"}, "audit": call,
        });
        assert!(Calls::parse(&all.to_string()).is_ok());
        all.as_object_mut().unwrap().remove("rate");
        let error = Calls::parse(&all.to_string()).err().unwrap().to_string();
        assert!(error.contains("rate"), "{error}");
    }
}
