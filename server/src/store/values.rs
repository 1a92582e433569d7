//! Domain types as sea-orm column values, so that entities hold `WorkloadId`,
//! `DeploymentId` and `Secret` rather than strings. Implemented here, not in
//! `domain`, so that `domain` keeps depending on nothing. A stored id that does
//! not parse is an error of the read, never a panic.

use std::sync::Arc;

use sea_orm::{
    ActiveValue, ColIdx, DbErr, IntoActiveValue, QueryResult, TryFromU64, TryGetError, TryGetable,
    Value,
    sea_query::{ArrayType, ColumnType, Nullable, StringLen, ValueType, ValueTypeErr},
};

use crate::domain::{DeploymentId, IdError, NodeId, Secret, WorkloadId};

/// Text columns holding a domain type: `$text` gives the stored text, `$parse`
/// reads it back.
macro_rules! text_column {
    ($name:ident, $text:expr, $parse:expr) => {
        impl From<$name> for Value {
            fn from(value: $name) -> Self {
                Value::String(Some($text(&value).to_owned()))
            }
        }

        impl From<&$name> for Value {
            fn from(value: &$name) -> Self {
                Value::String(Some($text(value).to_owned()))
            }
        }

        impl TryGetable for $name {
            fn try_get_by<I: ColIdx>(result: &QueryResult, index: I) -> Result<Self, TryGetError> {
                let text = String::try_get_by(result, index)?;
                $parse(&text).map_err(|error| {
                    TryGetError::DbErr(DbErr::TryIntoErr {
                        from: "String",
                        into: stringify!($name),
                        source: Arc::new(error),
                    })
                })
            }
        }

        impl ValueType for $name {
            fn try_from(value: Value) -> Result<Self, ValueTypeErr> {
                let text = <String as ValueType>::try_from(value)?;
                $parse(&text).map_err(|_| ValueTypeErr)
            }

            fn type_name() -> String {
                stringify!($name).to_owned()
            }

            fn array_type() -> ArrayType {
                ArrayType::String
            }

            fn column_type() -> ColumnType {
                ColumnType::String(StringLen::None)
            }
        }

        impl Nullable for $name {
            fn null() -> Value {
                Value::String(None)
            }
        }

        impl IntoActiveValue<$name> for $name {
            fn into_active_value(self) -> ActiveValue<$name> {
                ActiveValue::Set(self)
            }
        }

        /// Text keys are never numbers the database hands out.
        impl TryFromU64 for $name {
            fn try_from_u64(_: u64) -> Result<Self, DbErr> {
                Err(DbErr::ConvertFromU64(stringify!($name)))
            }
        }

        impl sea_orm::sea_query::postgres_array::NotU8 for $name {}
    };
}

text_column!(DeploymentId, DeploymentId::as_str, DeploymentId::parse);
text_column!(NodeId, NodeId::as_str, NodeId::parse);
text_column!(WorkloadId, WorkloadId::as_str, WorkloadId::parse);
text_column!(Secret, Secret::expose, parse_secret);

/// Any text is a valid secret.
fn parse_secret(text: &str) -> Result<Secret, IdError> {
    Ok(Secret::new(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_convert_to_values_and_back() {
        let id = WorkloadId::generate();
        let value = Value::from(id.clone());
        assert_eq!(<WorkloadId as ValueType>::try_from(value).ok(), Some(id));
        let malformed = Value::String(Some("not-an-id".to_owned()));
        assert!(<DeploymentId as ValueType>::try_from(malformed).is_err());
    }
}
