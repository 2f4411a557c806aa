//! The small types the handlers' `#[utoipa::path]`s and views name for what no Rust type says
//! (a response header, a constant `true`), the `openapi` feature only. They sit apart from the
//! generator (`crate::openapi`), which reads the handlers: the handlers name these, not it.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

/// A marker for a response header: the generator (`crate::openapi`) puts its shared header in the
/// document.
macro_rules! header_value {
    ($($(#[$meta:meta])* $name:ident),* $(,)?) => {$(
        $(#[$meta])*
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new().schema_type(Type::String).into()
            }
        }

        impl utoipa::ToSchema for $name {}
    )*};
}

header_value!(
    /// `Cache-Control: no-store`.
    NoStore,
    /// `Pragma: no-cache`.
    NoCache,
    /// `Referrer-Policy: no-referrer`.
    NoReferrer,
    /// `ETag: "3"`.
    ETag,
    /// `Cache-Control: public, max-age=300`.
    PublicCache,
    /// `Location`: the console sign-in link.
    Location,
);

/// The JSON `null`: where a field is present and always null.
#[derive(serde::Serialize)]
pub struct Null;

impl utoipa::PartialSchema for Null {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().schema_type(Type::Null).into()
    }
}

impl utoipa::ToSchema for Null {}

/// `true`, always.
pub struct True;

impl utoipa::PartialSchema for True {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Boolean)
            .enum_values(Some([true]))
            .into()
    }
}

impl utoipa::ToSchema for True {}

/// `false`, always.
pub struct False;

impl utoipa::PartialSchema for False {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Boolean)
            .enum_values(Some([false]))
            .into()
    }
}

impl utoipa::ToSchema for False {}

/// `Bearer`, the only token type.
pub struct BearerType;

impl utoipa::PartialSchema for BearerType {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["Bearer"]))
            .into()
    }
}

impl utoipa::ToSchema for BearerType {}
