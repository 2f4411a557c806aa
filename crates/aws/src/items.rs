//! How cooper's values become DynamoDB items: keys, the common item envelope, (de)serialisation.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use cooper_core::ports::{Service, UpstreamError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::corrupt;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// Every directory item: its keys, its kind, and its body's fields beside them.
#[derive(Serialize, Deserialize)]
pub(crate) struct Keyed<T> {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    #[serde(rename = "GSI1PK", default, skip_serializing_if = "Option::is_none")]
    pub gsi1pk: Option<String>,
    #[serde(rename = "GSI1SK", default, skip_serializing_if = "Option::is_none")]
    pub gsi1sk: Option<String>,
    #[serde(default)]
    pub item: String,
    #[serde(flatten)]
    pub body: T,
}

impl<T> Keyed<T> {
    /// An item without secondary-index keys.
    pub fn plain((pk, sk): (String, String), item: &str, body: T) -> Self {
        Self {
            pk,
            sk,
            gsi1pk: None,
            gsi1sk: None,
            item: item.to_owned(),
            body,
        }
    }
}

pub(crate) fn to_item<T: Serialize>(value: &T) -> Result<Item, UpstreamError> {
    serde_dynamo::to_item(value)
        .map_err(|e| corrupt(Service::DynamoDb, format!("could not encode an item: {e}")))
}

pub(crate) fn from_item<T: DeserializeOwned>(item: Item, what: &str) -> Result<T, UpstreamError> {
    serde_dynamo::from_item(item).map_err(|e| {
        corrupt(
            Service::DynamoDb,
            format!("stored {what} is unreadable: {e}"),
        )
    })
}

pub(crate) fn key((pk, sk): (String, String)) -> Item {
    HashMap::from([
        ("PK".to_owned(), AttributeValue::S(pk)),
        ("SK".to_owned(), AttributeValue::S(sk)),
    ])
}

pub(crate) fn sort_key(item: &Item) -> &str {
    match item.get("SK") {
        Some(AttributeValue::S(sk)) => sk,
        _ => "",
    }
}
