//! JSON Schemas of the domain's values, for the OpenAPI document (the `openapi` feature only).

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};

/// A string value's schema: its pattern (the same rules as its `parse`), its lengths when they are
/// not already the pattern's, what it is, and an example.
pub fn string(
    pattern: &str,
    lengths: (Option<usize>, Option<usize>),
    description: &str,
    example: Option<&str>,
) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .min_length(lengths.0)
        .max_length(lengths.1)
        .description(Some(description))
        .examples(example)
        .into()
}

/// An integer value's schema: its bounds, and what it is.
pub fn integer(minimum: u32, maximum: u32, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(minimum))
        .maximum(Some(maximum))
        .description(Some(description))
        .into()
}

/// A closed object of exactly one required property.
pub fn single_property(name: &str, schema: impl Into<RefOr<Schema>>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Object))
        .property(name, schema)
        .required(name)
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
}

/// One of `items`, described.
pub fn one_of(description: &str, items: impl IntoIterator<Item = RefOr<Schema>>) -> RefOr<Schema> {
    items
        .into_iter()
        .fold(OneOfBuilder::new(), OneOfBuilder::item)
        .description(Some(description))
        .into()
}
