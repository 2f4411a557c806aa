//! Session tags (ABAC): what a role target sets on its AssumeRole sessions, from the person or
//! fixed, checked against AWS's limits when the target is configured and again, with the
//! person's values, before STS is called.
//!
//! AWS's rules: at most 50 tags; a key of 1 to 128 and a value of 0 to 256 of
//! `[\p{L}\p{Z}\p{N}_.:/=+\-@]`; keys unique regardless of case, never `aws:`-prefixed (any case);
//! and a packed size AWS does not publish. cooper accepts the ASCII part of that character set
//! (letters, digits, space and `_ . : / = + - @`): it has no Unicode category tables to tell a
//! letter from a mark, and a wrong guess would only fail at STS. For the packed size it keeps an
//! estimate of its own ([`packed_estimate`]) under a budget fitted below what AWS was seen to
//! refuse; AWS's own refusal (`PackedPolicyTooLarge`) stays the last word.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::names::{GroupName, InvalidValue, UserName};

/// At most this many session tags on one AssumeRole (AWS).
pub const MAX_TAGS: usize = 50;
/// A key's longest (AWS).
pub const MAX_KEY_CHARS: usize = 128;
/// A value's longest (AWS).
pub const MAX_VALUE_CHARS: usize = 256;
/// What separates the person's groups in a `groups` value: a character AWS allows in a value
/// and that group names seldom hold (`:` is in every identity provider's group prefix, spaces
/// and `/` in directory and Keycloak groups). A group that holds it is refused, never joined.
pub const GROUP_SEPARATOR: char = '+';
/// cooper's packed-size budget: [`packed_estimate`] of the tags sent must not exceed it.
pub const PACKED_BUDGET: usize = 448;
/// What each tag adds to [`packed_estimate`] beside its key and value.
pub const PACKED_PER_TAG: usize = 20;

/// The characters cooper accepts in a key or a value: the ASCII part of AWS's
/// `[\p{L}\p{Z}\p{N}_.:/=+\-@]`.
fn is_tag_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@')
}

const TAG_CHARS_RULE: &str = "may contain only letters, digits, spaces and _ . : / = + - @";

/// The characters of [`is_tag_char`], for a regular expression's class.
macro_rules! tag_chars {
    () => {
        "A-Za-z0-9 _.:/=+@-"
    };
}

/// Declares a string newtype built only through `parse`, (de)serialised through it.
macro_rules! tag_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidValue;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }
    };
}

tag_newtype!(
    /// A session tag's key: 1 to 128 of letters, digits, spaces and `_.:/=+-@`, not starting
    /// with `aws:` in any case.
    TagKey
);

/// Not starting with `aws:` in any case, said without look-ahead: whatever starts otherwise,
/// or `a`, `aw`, `aws` followed by anything but what would make the prefix.
pub const TAG_KEY_PATTERN: &str = concat!(
    "^(?:[B-Zb-z0-9 _.:/=+@-][",
    tag_chars!(),
    "]{0,127}|[Aa](?:[A-VX-Za-vx-z0-9 _.:/=+@-][",
    tag_chars!(),
    "]{0,126})?|[Aa][Ww](?:[A-RT-Za-rt-z0-9 _.:/=+@-][",
    tag_chars!(),
    "]{0,125})?|[Aa][Ww][Ss](?:[A-Za-z0-9 _./=+@-][",
    tag_chars!(),
    "]{0,124})?)$"
);
string_schema!(
    TagKey,
    TAG_KEY_PATTERN,
    (Some(1), Some(MAX_KEY_CHARS)),
    "A session tag key: 1 to 128 of `A-Z a-z 0-9`, space and `_ . : / = + - @`, not starting with `aws:` (in any case); unique among a target's tags regardless of case.",
    Some("team")
);

impl TagKey {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        const FIELD: &str = "session_tags.key";
        let n = value.chars().count();
        if n == 0 || n > MAX_KEY_CHARS {
            return Err(InvalidValue::new(
                FIELD,
                format!("must be 1 to {MAX_KEY_CHARS} characters long, got {n}"),
            ));
        }
        if !value.chars().all(is_tag_char) {
            return Err(InvalidValue::new(FIELD, TAG_CHARS_RULE));
        }
        if value
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("aws:"))
        {
            return Err(InvalidValue::new(
                FIELD,
                "may not start with aws: (AWS keeps that prefix for itself)",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// The key as AWS compares keys: regardless of case.
    fn folded(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

tag_newtype!(
    /// A session tag's value: 0 to 256 of letters, digits, spaces and `_.:/=+-@`.
    TagValue
);

pub const TAG_VALUE_PATTERN: &str = concat!("^[", tag_chars!(), "]{0,256}$");
string_schema!(
    TagValue,
    TAG_VALUE_PATTERN,
    (Some(0), Some(MAX_VALUE_CHARS)),
    "A fixed session tag value: 0 to 256 of `A-Z a-z 0-9`, space and `_ . : / = + - @`.",
    Some("payments")
);

impl TagValue {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        const FIELD: &str = "session_tags.value";
        let n = value.chars().count();
        if n > MAX_VALUE_CHARS {
            return Err(InvalidValue::new(
                FIELD,
                format!("must be at most {MAX_VALUE_CHARS} characters long, got {n}"),
            ));
        }
        if !value.chars().all(is_tag_char) {
            return Err(InvalidValue::new(FIELD, TAG_CHARS_RULE));
        }
        Ok(Self(value.to_owned()))
    }
}

/// What of the person a tag's value is taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PersonAttribute {
    /// The cooper user name (as in SourceIdentity).
    User,
    /// The person's email: their user name when it is an email address (as people signing in
    /// with an identity provider are usually named); anyone else is refused.
    Email,
    /// The person's groups (the directory's and those an identity provider asserted), sorted,
    /// joined by `+`.
    Groups,
}

/// Where a tag's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagSource {
    Person(PersonAttribute),
    Fixed(TagValue),
}

/// One session tag a target sets: `{"key": "team", "value": "payments"}` (fixed) or
/// `{"key": "user", "from": "user"}` (the person's), and whether it is `transitive` (kept
/// through role chaining, where the session cannot set it again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SpecFields", into = "SpecFields")]
pub struct SessionTagSpec {
    pub key: TagKey,
    pub source: TagSource,
    pub transitive: bool,
}

/// [`SessionTagSpec`] as JSON has it: exactly one of `from` and `value` (left out, never null).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecFields {
    key: TagKey,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    from: Option<PersonAttribute>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    value: Option<TagValue>,
    #[serde(default)]
    transitive: bool,
}

/// A field that is either left out (`default`) or given a value: an explicit `null` is refused,
/// as the schema says.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

impl TryFrom<SpecFields> for SessionTagSpec {
    type Error = InvalidValue;
    fn try_from(f: SpecFields) -> Result<Self, InvalidValue> {
        let source = match (f.from, f.value) {
            (Some(attribute), None) => TagSource::Person(attribute),
            (None, Some(value)) => TagSource::Fixed(value),
            _ => {
                return Err(InvalidValue::new(
                    "session_tags",
                    format!(
                        "tag {} takes either `from` (user, email or groups) or a fixed `value`, one of them",
                        f.key
                    ),
                ));
            }
        };
        Ok(Self {
            key: f.key,
            source,
            transitive: f.transitive,
        })
    }
}

impl From<SessionTagSpec> for SpecFields {
    fn from(s: SessionTagSpec) -> Self {
        let (from, value) = match s.source {
            TagSource::Person(attribute) => (Some(attribute), None),
            TagSource::Fixed(value) => (None, Some(value)),
        };
        Self {
            key: s.key,
            from,
            value,
            transitive: s.transitive,
        }
    }
}

/// Exactly one of `{key, from, transitive?}` and `{key, value, transitive?}`.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for SessionTagSpec {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::ToSchema;
        use utoipa::openapi::RefOr;
        use utoipa::openapi::schema::Schema;
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Ref, Type};
        let shape = |field: &str, schema: Ref, description: &str| -> RefOr<Schema> {
            let transitive = ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .default(Some(serde_json::Value::Bool(false)))
                .description(Some(
                    "Kept through role chaining (TransitiveTagKeys): a session chained from this one carries it and cannot set it again.",
                ));
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property("key", Ref::from_schema_name(TagKey::name()))
                .required("key")
                .property(field, schema)
                .required(field)
                .property("transitive", transitive)
                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
                .description(Some(description))
                .into()
        };
        crate::schema::one_of(
            "A session tag the target's AssumeRole sessions carry: from the person, or fixed.",
            [
                shape(
                    "from",
                    Ref::from_schema_name(PersonAttribute::name()),
                    "From the person: `user` (the user name), `email` (the user name, when it is an email address; refused otherwise), `groups` (their groups, sorted, joined by `+`). Refused at issuance, before STS, when the person's value breaks AWS's rules.",
                ),
                shape(
                    "value",
                    Ref::from_schema_name(TagValue::name()),
                    "A fixed value.",
                ),
            ],
        )
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for SessionTagSpec {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::PartialSchema;
        schemas.push((TagKey::name().into(), TagKey::schema()));
        schemas.push((TagValue::name().into(), TagValue::schema()));
        schemas.push((PersonAttribute::name().into(), PersonAttribute::schema()));
    }
}

/// cooper's estimate of what AWS packs: the bytes of every key and value, and
/// [`PACKED_PER_TAG`] for each tag. AWS does not publish its packing; this is fitted so that
/// what it lets through is under what AWS was seen to accept (nine tags of 252 characters
/// packed to 498% of AWS's space, EKS Pod Identity's six tags of about 290 characters to 74%),
/// and a single tag of the longest key and value always fits.
pub fn packed_estimate<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> usize {
    tags.into_iter()
        .map(|(key, value)| key.len() + value.len() + PACKED_PER_TAG)
        .sum()
}

/// A target's session tags, checked as a set: at most 50, keys unique regardless of case, and
/// what is fixed of them within the packed budget. (A federated-user target carries none; the
/// target decides that, knowing its kind.)
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<SessionTagSpec>", into = "Vec<SessionTagSpec>")]
pub struct SessionTagSpecs(Vec<SessionTagSpec>);

impl TryFrom<Vec<SessionTagSpec>> for SessionTagSpecs {
    type Error = InvalidValue;
    fn try_from(specs: Vec<SessionTagSpec>) -> Result<Self, InvalidValue> {
        Self::new(specs)
    }
}

impl From<SessionTagSpecs> for Vec<SessionTagSpec> {
    fn from(specs: SessionTagSpecs) -> Self {
        specs.0
    }
}

impl SessionTagSpecs {
    pub fn new(specs: Vec<SessionTagSpec>) -> Result<Self, InvalidValue> {
        const FIELD: &str = "session_tags";
        if specs.len() > MAX_TAGS {
            return Err(InvalidValue::new(
                FIELD,
                format!("at most {MAX_TAGS} tags, got {}", specs.len()),
            ));
        }
        let mut seen = HashSet::new();
        if let Some(twice) = specs.iter().find(|s| !seen.insert(s.key.folded())) {
            return Err(InvalidValue::new(
                FIELD,
                format!(
                    "key {} is given twice (AWS compares keys regardless of case)",
                    twice.key
                ),
            ));
        }
        // What the person adds is known only at issuance, and checked then; what is fixed
        // must fit already.
        let fixed = packed_estimate(specs.iter().map(|s| match &s.source {
            TagSource::Fixed(v) => (s.key.as_str(), v.as_str()),
            TagSource::Person(_) => (s.key.as_str(), ""),
        }));
        if fixed > PACKED_BUDGET {
            return Err(InvalidValue::new(
                FIELD,
                format!(
                    "would pack too large for AWS: {fixed} of cooper's budget of {PACKED_BUDGET} (the bytes of each key and value, and {PACKED_PER_TAG} per tag) before any person's value; use fewer or shorter tags"
                ),
            ));
        }
        Ok(Self(specs))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &[SessionTagSpec] {
        &self.0
    }

    /// The same tags, whatever their order.
    pub fn same_as(&self, other: &Self) -> bool {
        // Keys are unique, so they order a set completely.
        fn sorted(s: &SessionTagSpecs) -> Vec<&SessionTagSpec> {
            let mut v: Vec<&SessionTagSpec> = s.0.iter().collect();
            v.sort_by(|a, b| a.key.cmp(&b.key));
            v
        }
        sorted(self) == sorted(other)
    }

    /// The tags for `user` in `groups`, each checked against AWS's rules, and the set within
    /// the packed budget: what AssumeRole is sent, or why it cannot be.
    pub fn resolve(
        &self,
        user: &UserName,
        groups: &[GroupName],
    ) -> Result<ResolvedTags, SessionTagError> {
        let mut resolved = ResolvedTags::default();
        for spec in &self.0 {
            let value = match &spec.source {
                TagSource::Fixed(value) => value.clone(),
                TagSource::Person(attribute) => person_value(&spec.key, *attribute, user, groups)?,
            };
            if spec.transitive {
                resolved.transitive.push(spec.key.clone());
            }
            resolved.tags.push(SessionTag {
                key: spec.key.clone(),
                value,
            });
        }
        let estimate = packed_estimate(
            resolved
                .tags
                .iter()
                .map(|t| (t.key.as_str(), t.value.as_str())),
        );
        if estimate > PACKED_BUDGET {
            return Err(SessionTagError::TooLarge { estimate });
        }
        Ok(resolved)
    }
}

/// The person's value for `attribute`, checked as AWS will check it.
fn person_value(
    key: &TagKey,
    attribute: PersonAttribute,
    user: &UserName,
    groups: &[GroupName],
) -> Result<TagValue, SessionTagError> {
    let raw = match attribute {
        PersonAttribute::User => user.as_str().to_owned(),
        PersonAttribute::Email => email_of(user)
            .ok_or_else(|| SessionTagError::Unresolved {
                key: key.clone(),
                reason: format!(
                    "it takes the person's email, and the user name {user} is not an email address"
                ),
            })?
            .to_owned(),
        PersonAttribute::Groups => {
            let mut names: Vec<&str> = groups.iter().map(GroupName::as_str).collect();
            names.sort_unstable();
            names.dedup();
            // A group holding the separator would read as two: refused, never joined.
            if let Some(group) = names.iter().find(|g| g.contains(GROUP_SEPARATOR)) {
                return Err(SessionTagError::InvalidCharacters {
                    key: key.clone(),
                    reason: format!(
                        "the group {group} holds '{GROUP_SEPARATOR}', which separates groups in the value"
                    ),
                });
            }
            names.join(&GROUP_SEPARATOR.to_string())
        }
    };
    let length = raw.chars().count();
    if length > MAX_VALUE_CHARS {
        return Err(SessionTagError::TooLong {
            key: key.clone(),
            length,
        });
    }
    TagValue::parse(&raw).map_err(|_| SessionTagError::InvalidCharacters {
        key: key.clone(),
        reason: format!(
            "the person's {} holds characters AWS does not allow in a tag value (cooper allows letters, digits, spaces and _ . : / = + - @)",
            match attribute {
                PersonAttribute::User | PersonAttribute::Email => "user name",
                PersonAttribute::Groups => "groups",
            }
        ),
    })
}

/// The person's email: their user name, when it is an email address.
fn email_of(user: &UserName) -> Option<&str> {
    let name = user.as_str();
    let (local, domain) = name.split_once('@')?;
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let ok = !local.is_empty()
        && !local.starts_with('.')
        && !local.ends_with('.')
        && domain.contains('.')
        && domain.split('.').all(label_ok);
    ok.then_some(name)
}

/// One session tag, resolved and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTag {
    pub key: TagKey,
    pub value: TagValue,
}

/// The tags an AssumeRole is sent, and which of their keys are transitive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedTags {
    pub tags: Vec<SessionTag>,
    pub transitive: Vec<TagKey>,
}

/// Why a target's session tags cannot be set for this person: refused before STS is called.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionTagError {
    #[error(
        "the session tag {key} would be {length} characters long for you, and AWS allows {MAX_VALUE_CHARS}; an administrator must change the target's session tags"
    )]
    TooLong { key: TagKey, length: usize },
    #[error(
        "the session tag {key} cannot be set for you: {reason}; an administrator must change the target's session tags"
    )]
    InvalidCharacters { key: TagKey, reason: String },
    #[error(
        "the session tag {key} cannot be set for you: {reason}; an administrator must change the target's session tags"
    )]
    Unresolved { key: TagKey, reason: String },
    #[error(
        "the target's session tags would pack too large for AWS with your values ({estimate} of cooper's budget of {PACKED_BUDGET}); an administrator must use fewer or shorter tags"
    )]
    TooLarge { estimate: usize },
}

impl SessionTagError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLong { .. } => "session_tag_too_long",
            Self::InvalidCharacters { .. } => "session_tag_invalid_characters",
            Self::Unresolved { .. } => "session_tag_unresolved",
            Self::TooLarge { .. } => "session_tags_too_large",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> TagKey {
        TagKey::parse(k).unwrap()
    }

    fn spec(k: &str, source: TagSource, transitive: bool) -> SessionTagSpec {
        SessionTagSpec {
            key: key(k),
            source,
            transitive,
        }
    }

    fn fixed(k: &str, v: &str) -> SessionTagSpec {
        spec(k, TagSource::Fixed(TagValue::parse(v).unwrap()), false)
    }

    fn from(k: &str, a: PersonAttribute) -> SessionTagSpec {
        spec(k, TagSource::Person(a), false)
    }

    fn user(u: &str) -> UserName {
        UserName::parse(u).unwrap()
    }

    fn groups(g: &[&str]) -> Vec<GroupName> {
        g.iter().map(|g| GroupName::parse(g).unwrap()).collect()
    }

    #[test]
    fn keys_follow_aws_rules_in_ascii() {
        for ok in [
            "team",
            "a",
            "aws",
            "awsx",
            "aw:s",
            "cost center",
            "k_.:/=+-@",
            &"k".repeat(128),
        ] {
            assert!(TagKey::parse(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "",
            &"k".repeat(129),
            "aws:x",
            "AWS:x",
            "aWs:",
            "team,x",
            "team#",
            "équipe",
            "tab\there",
        ] {
            assert!(TagKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn values_may_be_empty_and_up_to_256() {
        assert!(TagValue::parse("").is_ok());
        assert!(TagValue::parse(&"v".repeat(256)).is_ok());
        assert!(TagValue::parse(&"v".repeat(257)).is_err());
        assert!(TagValue::parse("a,b").is_err());
        assert!(TagValue::parse("aws:is fine in a value").is_ok());
    }

    #[test]
    fn a_spec_takes_from_or_value_and_reads_back_the_same() {
        let f: SessionTagSpec =
            serde_json::from_str(r#"{"key": "who", "from": "user", "transitive": true}"#).unwrap();
        assert_eq!(f.source, TagSource::Person(PersonAttribute::User));
        assert!(f.transitive);
        let v: SessionTagSpec =
            serde_json::from_str(r#"{"key": "team", "value": "payments"}"#).unwrap();
        assert!(!v.transitive);
        assert_eq!(
            serde_json::to_value(&v).unwrap(),
            serde_json::json!({"key": "team", "value": "payments", "transitive": false})
        );
        for bad in [
            r#"{"key": "team"}"#,
            r#"{"key": "team", "from": "user", "value": "x"}"#,
            r#"{"key": "team", "from": "manager"}"#,
            r#"{"key": "team", "value": "x", "extra": 1}"#,
            r#"{"key": "aws:team", "value": "x"}"#,
            r#"{"key": "team", "from": null, "value": "x"}"#,
            r#"{"key": "team", "from": "user", "value": null}"#,
            r#"{"key": "team", "value": "x", "transitive": null}"#,
        ] {
            assert!(
                serde_json::from_str::<SessionTagSpec>(bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_set_has_at_most_50_tags_with_keys_unique_regardless_of_case() {
        let fifty: Vec<_> = (0..50)
            .map(|i| from(&format!("k{i}"), PersonAttribute::User))
            .collect();
        // 50 tags of about 3 bytes each: 50 * 23 > 448 packed, so the count is checked first.
        let err = SessionTagSpecs::new(
            (0..51)
                .map(|i| from(&format!("k{i}"), PersonAttribute::User))
                .collect(),
        )
        .unwrap_err();
        assert!(err.reason.contains("at most 50"), "{err}");
        assert!(
            SessionTagSpecs::new(fifty)
                .unwrap_err()
                .reason
                .contains("pack")
        );
        let err = SessionTagSpecs::new(vec![fixed("Team", "a"), fixed("team", "b")]).unwrap_err();
        assert!(err.reason.contains("twice"), "{err}");
        assert!(SessionTagSpecs::new(vec![fixed("team", "a"), fixed("user", "b")]).is_ok());
    }

    #[test]
    fn fixed_values_must_fit_the_packed_budget_when_configured() {
        // One tag of the longest key and value always fits.
        assert!(SessionTagSpecs::new(vec![fixed(&"k".repeat(128), &"v".repeat(256))]).is_ok());
        let two = vec![
            fixed(&"k".repeat(128), &"v".repeat(256)),
            fixed("x", &"v".repeat(100)),
        ];
        let err = SessionTagSpecs::new(two).unwrap_err();
        assert!(err.reason.contains("pack"), "{err}");
        assert_eq!(packed_estimate([("ab", "cde")]), 5 + PACKED_PER_TAG);
    }

    #[test]
    fn what_aws_refused_is_over_the_budget_and_what_it_took_is_under() {
        // Nine tags of a 2-character key and 250 characters: AWS packed them to 498%.
        let nine: Vec<(String, String)> = (1..=9)
            .map(|i| (format!("T{i}"), "a".repeat(250)))
            .collect();
        assert!(
            packed_estimate(nine.iter().map(|(k, v)| (k.as_str(), v.as_str()))) > PACKED_BUDGET
        );
        // EKS Pod Identity's six tags (AWS: 74%).
        let eks = [
            (
                "eks-cluster-arn",
                "arn:aws:eks:us-west-2:111122223333:cluster/production",
            ),
            ("eks-cluster-name", "production"),
            ("kubernetes-namespace", "payments"),
            ("kubernetes-service-account", "payments-api"),
            ("kubernetes-pod-name", "payments-api-7d9f8b6c5d-x2x9z"),
            ("kubernetes-pod-uid", "0f8fad5b-d9cb-469f-a165-70867728950e"),
        ];
        assert!(packed_estimate(eks) <= PACKED_BUDGET);
    }

    #[test]
    fn the_persons_values_are_resolved_as_configured() {
        let specs = SessionTagSpecs::new(vec![
            spec("who", TagSource::Person(PersonAttribute::User), true),
            from("mail", PersonAttribute::Email),
            from("groups", PersonAttribute::Groups),
            fixed("team", "payments"),
        ])
        .unwrap();
        let r = specs
            .resolve(
                &user("alice@example.com"),
                &groups(&["ops", "eng", "okta:admins", "eng"]),
            )
            .unwrap();
        let pairs: Vec<(&str, &str)> = r
            .tags
            .iter()
            .map(|t| (t.key.as_str(), t.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("who", "alice@example.com"),
                ("mail", "alice@example.com"),
                ("groups", "eng+okta:admins+ops"),
                ("team", "payments"),
            ]
        );
        assert_eq!(r.transitive, [key("who")]);
        let none = specs.resolve(&user("alice@example.com"), &[]).unwrap();
        assert_eq!(none.tags[2].value.as_str(), "", "no groups: an empty value");
    }

    #[test]
    fn the_persons_values_that_break_aws_rules_are_refused_with_their_code() {
        let one = |a| SessionTagSpecs::new(vec![from("t", a)]).unwrap();
        let code = |specs: &SessionTagSpecs, u: &str, g: &[&str]| {
            specs.resolve(&user(u), &groups(g)).unwrap_err().code()
        };
        assert_eq!(
            code(&one(PersonAttribute::Email), "alice", &[]),
            "session_tag_unresolved"
        );
        assert_eq!(
            code(&one(PersonAttribute::Email), "alice@localhost", &[]),
            "session_tag_unresolved"
        );
        assert_eq!(
            code(&one(PersonAttribute::User), "smith,alice", &[]),
            "session_tag_invalid_characters"
        );
        assert_eq!(
            code(&one(PersonAttribute::Groups), "alice", &["Payments (EU)"]),
            "session_tag_invalid_characters"
        );
        assert_eq!(
            code(&one(PersonAttribute::Groups), "alice", &["a+b"]),
            "session_tag_invalid_characters",
            "a group holding the separator would read as two"
        );
        let many: Vec<String> = (0..30).map(|i| format!("group-number-{i:02}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(
            code(&one(PersonAttribute::Groups), "alice", &many),
            "session_tag_too_long"
        );
        let two = SessionTagSpecs::new(vec![
            from("g1", PersonAttribute::Groups),
            from("g2", PersonAttribute::Groups),
        ])
        .unwrap();
        assert_eq!(code(&two, "alice", &many[..14]), "session_tags_too_large");
    }

    #[test]
    fn the_same_tags_in_another_order_are_the_same() {
        let a = SessionTagSpecs::new(vec![fixed("a", "1"), fixed("b", "2")]).unwrap();
        let b = SessionTagSpecs::new(vec![fixed("b", "2"), fixed("a", "1")]).unwrap();
        let c = SessionTagSpecs::new(vec![fixed("b", "2"), fixed("a", "9")]).unwrap();
        assert!(a.same_as(&b));
        assert!(!a.same_as(&c));
    }
}
