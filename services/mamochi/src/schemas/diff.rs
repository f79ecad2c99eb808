//! `mamochi schemas diff`: what a schema file changes against a registered
//! version, field by field, read from the two JSON documents.
//!
//! It describes; it does not judge (that is `schemas check`). Every
//! difference between the documents shows up as one line: fields added or
//! removed (with their type and default), type changes, enum symbols, defaults,
//! docs, aliases, order, and the same inside nested records.

use serde_json::Value;

/// One line per difference, empty when the documents say the same thing.
pub fn diff(old: &Value, new: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    compare_types("", old, new, &mut lines);
    lines
}

fn compare_types(path: &str, old: &Value, new: &Value, lines: &mut Vec<String>) {
    if old == new {
        return;
    }
    let kind = |value: &Value| value.get("type").and_then(Value::as_str).map(str::to_string);
    match (kind(old).as_deref(), kind(new).as_deref()) {
        (Some("record"), Some("record")) => compare_records(path, old, new, lines),
        (Some("enum"), Some("enum")) => compare_enums(path, old, new, lines),
        _ => lines.push(format!("~ {}type {} → {}", prefix(path), label(old), label(new))),
    }
}

fn compare_records(path: &str, old: &Value, new: &Value, lines: &mut Vec<String>) {
    compare_names(path, old, new, lines);
    compare_attribute(path, "doc", old, new, lines);
    let fields = |value: &Value| value.get("fields").and_then(Value::as_array).cloned().unwrap_or_default();
    let (old_fields, new_fields) = (fields(old), fields(new));
    let name = |field: &Value| field.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    let aliases = |field: &Value| -> Vec<String> {
        field
            .get("aliases")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    let mut matched_old = Vec::new();
    for field in &new_fields {
        let new_name = name(field);
        let full = join(path, &new_name);
        let same = old_fields.iter().find(|old| name(old) == new_name);
        let renamed = || {
            old_fields
                .iter()
                .find(|old| aliases(field).contains(&name(old)) && !new_fields.iter().any(|f| name(f) == name(old)))
        };
        match same.or_else(renamed) {
            Some(old_field) => {
                let old_name = name(old_field);
                if old_name != new_name {
                    lines.push(format!(
                        "~ {}: renamed from {} (an alias keeps old data readable)",
                        full,
                        join(path, &old_name)
                    ));
                }
                matched_old.push(old_name);
                compare_field(&full, old_field, field, lines);
            }
            None => lines.push(format!("+ {full}: {}", describe_field(field))),
        }
    }
    for field in &old_fields {
        if !matched_old.contains(&name(field)) {
            lines.push(format!("- {}: {}", join(path, &name(field)), describe_field(field)));
        }
    }
    // Order only matters among fields both versions have under the same name.
    let common = |fields: &[Value], others: &[Value]| -> Vec<String> {
        fields.iter().map(name).filter(|n| others.iter().any(|other| &name(other) == n)).collect()
    };
    let (before, after) = (common(&old_fields, &new_fields), common(&new_fields, &old_fields));
    if before != after {
        lines.push(format!("~ {}field order: {} → {}", prefix(path), before.join(", "), after.join(", ")));
    }
}

fn compare_field(path: &str, old: &Value, new: &Value, lines: &mut Vec<String>) {
    let (old_type, new_type) = (old.get("type").unwrap_or(&Value::Null), new.get("type").unwrap_or(&Value::Null));
    if old_type != new_type {
        let before = lines.len();
        compare_types(path, old_type, new_type, lines);
        if lines.len() == before {
            lines.push(format!("~ {path}: type {} → {}", label(old_type), label(new_type)));
        }
    }
    match (old.get("default"), new.get("default")) {
        (None, Some(default)) => lines.push(format!("~ {path}: default {default} added")),
        (Some(default), None) => lines.push(format!("~ {path}: default {default} removed")),
        (Some(before), Some(after)) if before != after => lines.push(format!("~ {path}: default {before} → {after}")),
        _ => {}
    }
    compare_attribute(path, "doc", old, new, lines);
    compare_attribute(path, "aliases", old, new, lines);
    compare_attribute(path, "order", old, new, lines);
}

fn compare_enums(path: &str, old: &Value, new: &Value, lines: &mut Vec<String>) {
    compare_names(path, old, new, lines);
    let symbols = |value: &Value| -> Vec<String> {
        value
            .get("symbols")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    let (before, after) = (symbols(old), symbols(new));
    let added: Vec<&str> = after.iter().filter(|s| !before.contains(s)).map(String::as_str).collect();
    let removed: Vec<&str> = before.iter().filter(|s| !after.contains(s)).map(String::as_str).collect();
    if !added.is_empty() {
        lines.push(format!("~ {}symbols added: {}", prefix(path), added.join(", ")));
    }
    if !removed.is_empty() {
        lines.push(format!("~ {}symbols removed: {}", prefix(path), removed.join(", ")));
    }
    if added.is_empty() && removed.is_empty() && before != after {
        lines.push(format!("~ {}symbol order: {} → {}", prefix(path), before.join(", "), after.join(", ")));
    }
    compare_attribute(path, "default", old, new, lines);
    compare_attribute(path, "doc", old, new, lines);
}

fn compare_names(path: &str, old: &Value, new: &Value, lines: &mut Vec<String>) {
    compare_attribute(path, "name", old, new, lines);
    compare_attribute(path, "namespace", old, new, lines);
}

fn compare_attribute(path: &str, attribute: &str, old: &Value, new: &Value, lines: &mut Vec<String>) {
    match (old.get(attribute), new.get(attribute)) {
        (Some(before), Some(after)) if before != after => {
            lines.push(format!("~ {}{attribute}: {} → {}", prefix(path), short(before), short(after)));
        }
        (None, Some(after)) => lines.push(format!("~ {}{attribute} added: {}", prefix(path), short(after))),
        (Some(before), None) => lines.push(format!("~ {}{attribute} removed (was {})", prefix(path), short(before))),
        _ => {}
    }
}

/// `type long, default 0` or `type long, no default`.
fn describe_field(field: &Value) -> String {
    let default = match field.get("default") {
        Some(default) => format!("default {default}"),
        None => "no default".to_string(),
    };
    format!("{}, {default}", label(field.get("type").unwrap_or(&Value::Null)))
}

/// A type as a reader would name it: `long`, `long (timestamp-millis)`,
/// `enum PaymentMethod`, `[null, string]`, `array<string>`.
fn label(schema: &Value) -> String {
    match schema {
        Value::String(name) => name.clone(),
        Value::Array(branches) => format!("[{}]", branches.iter().map(label).collect::<Vec<_>>().join(", ")),
        Value::Object(object) => {
            let kind = object.get("type").map(label).unwrap_or_default();
            if let Some(logical) = object.get("logicalType").and_then(Value::as_str) {
                return format!("{kind} ({logical})");
            }
            match kind.as_str() {
                "record" | "enum" | "fixed" => {
                    format!("{kind} {}", object.get("name").and_then(Value::as_str).unwrap_or_default())
                }
                "array" => format!("array<{}>", object.get("items").map(label).unwrap_or_default()),
                "map" => format!("map<{}>", object.get("values").map(label).unwrap_or_default()),
                _ => kind,
            }
        }
        other => other.to_string(),
    }
}

/// A value short enough for one line.
fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sale(fields: Value) -> Value {
        json!({"type": "record", "name": "SaleRecorded", "fields": fields})
    }

    #[test]
    fn identical_documents_have_no_lines() {
        let schema = sale(json!([{"name": "quantity", "type": "int"}]));
        assert!(diff(&schema, &schema).is_empty());
    }

    #[test]
    fn added_removed_and_retyped_fields_are_named_with_type_and_default() {
        let old = sale(json!([{"name": "quantity", "type": "int"}, {"name": "note", "type": "string"}]));
        let new = sale(json!([
            {"name": "quantity", "type": "long"},
            {"name": "tip_clp", "type": "long", "default": 0, "doc": "Tip."}
        ]));
        let lines = diff(&old, &new);
        assert!(lines.contains(&"~ quantity: type int → long".to_string()), "{lines:?}");
        assert!(lines.contains(&"+ tip_clp: long, default 0".to_string()), "{lines:?}");
        assert!(lines.contains(&"- note: string, no default".to_string()), "{lines:?}");
        assert_eq!(lines.len(), 3, "{lines:?}");
    }

    #[test]
    fn enum_symbols_defaults_docs_and_renames_are_reported() {
        let method =
            |symbols: Value| json!({"type": "enum", "name": "PaymentMethod", "symbols": symbols, "default": "UNKNOWN"});
        let old = sale(json!([
            {"name": "payment_method", "type": method(json!(["UNKNOWN", "CASH"]))},
            {"name": "qty", "type": "int", "default": 1, "doc": "old"}
        ]));
        let new = sale(json!([
            {"name": "payment_method", "type": method(json!(["UNKNOWN", "CASH", "CRYPTO"]))},
            {"name": "quantity", "type": "int", "default": 2, "doc": "new", "aliases": ["qty"]}
        ]));
        let lines = diff(&old, &new);
        assert!(lines.contains(&"~ payment_method: symbols added: CRYPTO".to_string()), "{lines:?}");
        assert!(lines.iter().any(|l| l.starts_with("~ quantity: renamed from qty")), "{lines:?}");
        assert!(lines.contains(&"~ quantity: default 1 → 2".to_string()), "{lines:?}");
        assert!(lines.contains(&"~ quantity: doc: \"old\" → \"new\"".to_string()), "{lines:?}");
        assert!(!lines.iter().any(|l| l.starts_with("- ") || l.starts_with("+ ")), "a rename is not an add: {lines:?}");
    }

    #[test]
    fn nested_records_are_compared_field_by_field() {
        let inner = |fields: Value| json!({"type": "record", "name": "Where", "fields": fields});
        let old = sale(json!([{"name": "location", "type": inner(json!([{"name": "lat", "type": "double"}]))}]));
        let new = sale(json!([{"name": "location", "type": inner(json!([
            {"name": "lat", "type": "double"}, {"name": "lon", "type": ["null", "double"], "default": null}
        ]))}]));
        assert_eq!(diff(&old, &new), ["+ location.lon: [null, double], default null"]);
    }
}
