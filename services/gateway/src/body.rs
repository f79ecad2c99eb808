//! Reading fields out of a JSON object body with the field named in every
//! failure.
//!
//! Request bodies are first read as a JSON object (actix's `Json` extractor,
//! configured in [`crate::errors`]: malformed JSON → 400, too large → 413),
//! then each field is deserialised on its own. Serde's messages for a wrong
//! type do not name the field ("invalid type: string, expected i64"); reading
//! field by field does, so every 422 carries its `field`.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// A field that is missing, of the wrong type, or of an invalid value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: &'static str,
    /// `missing_field`, `invalid_type` or `invalid_value`.
    pub code: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn missing(field: &'static str) -> Self {
        Self { field, code: "missing_field", message: format!("{field} is required") }
    }

    pub fn invalid(field: &'static str, message: impl std::fmt::Display) -> Self {
        Self { field, code: "invalid_value", message: format!("{field} {message}") }
    }

    fn wrong_type(field: &'static str, error: &serde_json::Error) -> Self {
        Self { field, code: "invalid_type", message: format!("{field} has the wrong type: {error}") }
    }
}

/// A request body that is a JSON object.
#[derive(Debug, Clone, Default)]
pub struct JsonObject(Map<String, Value>);

impl From<Map<String, Value>> for JsonObject {
    fn from(map: Map<String, Value>) -> Self {
        Self(map)
    }
}

impl JsonObject {
    /// The field's value; absent and `null` are both "missing".
    pub fn required<T: DeserializeOwned>(&self, field: &'static str) -> Result<T, FieldError> {
        self.optional(field)?.ok_or_else(|| FieldError::missing(field))
    }

    /// The field's value, `None` when absent or `null`.
    pub fn optional<T: DeserializeOwned>(&self, field: &'static str) -> Result<Option<T>, FieldError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => T::deserialize(value).map(Some).map_err(|error| FieldError::wrong_type(field, &error)),
        }
    }

    /// The object under `field`, `None` when absent or `null`. Its keys are
    /// read as `field.key` (`location.latitude`), so every refusal inside it
    /// names the nested field as a client would spell its path.
    pub fn object(&self, field: &'static str) -> Result<Option<JsonObject>, FieldError> {
        let inner: Option<Map<String, Value>> = self.optional(field)?;
        Ok(inner.map(|map| Self(map.into_iter().map(|(key, value)| (format!("{field}.{key}"), value)).collect())))
    }

    /// Whether the field is present with a non-null value.
    pub fn has(&self, field: &str) -> bool {
        self.0.get(field).is_some_and(|value| !value.is_null())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> JsonObject {
        match value {
            Value::Object(map) => JsonObject(map),
            _ => JsonObject::default(),
        }
    }

    #[test]
    fn a_wrong_type_names_the_field() {
        let body = object(json!({"quantity": "three"}));
        let error = body.required::<i64>("quantity").expect_err("a string is not an integer");
        assert_eq!((error.field, error.code), ("quantity", "invalid_type"));
    }

    #[test]
    fn absent_and_null_are_missing_and_fractions_are_not_integers() {
        let body = object(json!({"note": null, "quantity": 1.5}));
        assert_eq!(body.required::<String>("note"), Err(FieldError::missing("note")));
        assert_eq!(body.optional::<String>("absent"), Ok(None));
        assert_eq!(body.required::<i64>("quantity").map_err(|e| e.code), Err("invalid_type"));
    }

    #[test]
    fn a_nested_object_names_its_fields_by_their_path() {
        let body = object(json!({"location": {"latitude": "north"}, "other": 3, "empty": null}));
        let location = body.object("location").expect("an object").expect("present");
        let error = location.required::<f64>("location.latitude").expect_err("a string is not a number");
        assert_eq!((error.field, error.code), ("location.latitude", "invalid_type"));
        assert_eq!(location.required::<f64>("location.longitude").map_err(|e| e.field), Err("location.longitude"));
        assert_eq!(body.object("other").map_err(|e| (e.field, e.code)).err(), Some(("other", "invalid_type")));
        assert!(body.object("empty").expect("null is absent").is_none());
        assert!(body.object("absent").expect("absent").is_none());
    }
}
