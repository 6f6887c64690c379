//! Ids, parsed once where they enter (a path, a frame, a token) into newtypes: the domain
//! then takes them as given. An id is short and plain, so it is safe inside keys, channel
//! names and logs. A leaf: it imports nothing of the crate.

use serde::{Deserialize, Serialize};
use std::fmt;

/// 1-64 ASCII letters, digits, `-` or `_`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// An id that is not one: which field, for the client's 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} must be 1-64 letters, digits, - or _")]
pub struct InvalidId {
    pub field: &'static str,
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The field name clients know the id by.
            pub const FIELD: &'static str = $field;

            pub fn parse(s: &str) -> Result<Self, InvalidId> {
                if valid_id(s) {
                    Ok(Self(s.to_string()))
                } else {
                    Err(InvalidId { field: $field })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// A new id (a ULID: 26 letters and digits, sortable by creation time).
            pub fn generate() -> Self {
                Self(ulid::Ulid::new().to_string())
            }
        }

        /// Inlined where used: a string of the id's shape.
        impl schemars::JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9_-]{1,64}$"})
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(s: String) -> Result<Self, InvalidId> {
                if valid_id(&s) {
                    Ok(Self(s))
                } else {
                    Err(InvalidId { field: $field })
                }
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl From<&$name> for String {
            fn from(id: &$name) -> String {
                id.0.clone()
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A chat (`chatId`).
    ChatId,
    "chatId"
);
id_type!(
    /// A trip (`tripId`).
    TripId,
    "tripId"
);
id_type!(
    /// A booking (`bookingId`).
    BookingId,
    "bookingId"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_parsed_once_and_refused_with_their_field() {
        assert_eq!(ChatId::parse("C-1_a").unwrap().as_str(), "C-1_a");
        for bad in ["", "a b", "x#y", "chat:1", &"x".repeat(65), "é"] {
            assert_eq!(ChatId::parse(bad), Err(InvalidId { field: "chatId" }), "{bad:?}");
        }
        assert_eq!(
            TripId::parse("").unwrap_err().to_string(),
            "tripId must be 1-64 letters, digits, - or _"
        );
        let t: TripId = serde_json::from_str("\"T1\"").unwrap();
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"T1\"");
        assert!(serde_json::from_str::<TripId>("\"a b\"").is_err());
        // Where the domain wants a `&str`, an id is one.
        let k: &str = &t;
        assert_eq!(k, "T1");
    }
}
