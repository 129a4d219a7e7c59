//! Finishing touches on the OpenAPI document paperclip generates, so that it says what
//! the services really send.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

/// Marks every optional property of a schema that appears in a response as
/// `nullable`: our handlers serialize an absent `Option` as `null` (`next_cursor`, a
/// feed's `last_error`…), which paperclip's OpenAPI 3.0 output would otherwise forbid,
/// and a generated client must be ready for it. Request schemas are left alone: null
/// is not something we invite clients to send.
pub fn mark_response_optionals_nullable(spec: &mut Value) {
    let mut roots = Vec::new();
    if let Some(paths) = spec.get("paths").and_then(Value::as_object) {
        for operation in paths
            .values()
            .filter_map(Value::as_object)
            .flat_map(|ops| ops.values())
        {
            let Some(responses) = operation.get("responses").and_then(Value::as_object) else {
                continue;
            };
            for media in responses
                .values()
                .filter_map(|r| r.get("content").and_then(Value::as_object))
                .flat_map(|c| c.values())
            {
                if let Some(schema) = media.get("schema") {
                    roots.push(schema.clone());
                }
            }
        }
    }
    // The named schemas reached from any response, directly or through others.
    let mut named = HashSet::new();
    let mut pending = roots;
    while let Some(schema) = pending.pop() {
        for name in references(&schema) {
            if named.insert(name.clone()) {
                if let Some(target) = spec.pointer(&format!("/components/schemas/{name}")) {
                    pending.push(target.clone());
                }
            }
        }
    }
    // Inline response schemas.
    if let Some(paths) = spec.get_mut("paths").and_then(Value::as_object_mut) {
        for media in paths
            .values_mut()
            .filter_map(Value::as_object_mut)
            .flat_map(|ops| ops.values_mut())
            .filter_map(|op| op.get_mut("responses").and_then(Value::as_object_mut))
            .flat_map(|responses| responses.values_mut())
            .filter_map(|r| r.get_mut("content").and_then(Value::as_object_mut))
            .flat_map(|content| content.values_mut())
        {
            if let Some(schema) = media.get_mut("schema") {
                nullable_optionals(schema);
            }
        }
    }
    if let Some(schemas) = spec
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (name, schema) in schemas.iter_mut() {
            if named.contains(name) {
                nullable_optionals(schema);
            }
        }
    }
}

/// The component names a schema refers to (`#/components/schemas/<name>`).
fn references(schema: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![schema];
    while let Some(value) = pending.pop() {
        match value {
            Value::Object(map) => {
                if let Some(name) = map
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix("#/components/schemas/"))
                {
                    found.push(name.to_owned());
                }
                pending.extend(map.values());
            }
            Value::Array(items) => pending.extend(items),
            _ => {}
        }
    }
    found
}

/// Within one schema (nested objects and arrays included), every property that is not
/// `required` may be null.
fn nullable_optionals(schema: &mut Value) {
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    let required: HashSet<String> = map
        .get("required")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if let Some(properties) = map.get_mut("properties").and_then(Value::as_object_mut) {
        for (name, property) in properties.iter_mut() {
            if !required.contains(name) {
                make_nullable(property);
            }
            nullable_optionals(property);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(inner) = map.get_mut(key) {
            nullable_optionals(inner);
        }
    }
}

fn make_nullable(property: &mut Value) {
    let Some(map) = property.as_object_mut() else {
        return;
    };
    if map.contains_key("$ref") {
        // OpenAPI 3.0 ignores siblings of `$ref`: wrap it.
        let reference = std::mem::take(map);
        *map = Map::from_iter([
            ("allOf".to_owned(), json!([Value::Object(reference)])),
            ("nullable".to_owned(), Value::Bool(true)),
        ]);
    } else {
        map.insert("nullable".to_owned(), Value::Bool(true));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_response_fields_become_nullable_and_requests_stay() {
        let mut spec = json!({
            "paths": {"/x": {"post": {
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/In"}}}},
                "responses": {"200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Page"}}}}}
            }}},
            "components": {"schemas": {
                "In": {"type": "object", "properties": {"title": {"type": "string"}}},
                "Page": {"type": "object", "required": ["items"], "properties": {
                    "items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}},
                    "next_cursor": {"type": "string"}
                }},
                "Item": {"type": "object", "required": ["id"], "properties": {
                    "id": {"type": "string"},
                    "source": {"$ref": "#/components/schemas/Source"},
                    "nested": {"type": "object", "properties": {"deep": {"type": "integer"}}}
                }},
                "Source": {"type": "object", "properties": {"url": {"type": "string"}}}
            }}
        });
        mark_response_optionals_nullable(&mut spec);
        let schemas = &spec["components"]["schemas"];
        assert_eq!(
            schemas["Page"]["properties"]["next_cursor"]["nullable"],
            true
        );
        assert!(schemas["Page"]["properties"]["items"]
            .get("nullable")
            .is_none());
        assert!(schemas["Item"]["properties"]["id"]
            .get("nullable")
            .is_none());
        assert_eq!(
            schemas["Item"]["properties"]["source"],
            json!({"allOf": [{"$ref": "#/components/schemas/Source"}], "nullable": true})
        );
        assert_eq!(
            schemas["Item"]["properties"]["nested"]["properties"]["deep"]["nullable"],
            true
        );
        assert_eq!(schemas["Source"]["properties"]["url"]["nullable"], true);
        assert!(schemas["In"]["properties"]["title"]
            .get("nullable")
            .is_none());
    }
}
