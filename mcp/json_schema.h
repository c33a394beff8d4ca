#pragma once
/// A small JSON Schema validator for the subset our tools' inputSchemas use:
/// type (object, string, integer, number, boolean, array, null, or an array of them),
/// properties, required, additionalProperties (false or a schema), enum, const, items,
/// minItems/maxItems, minimum/maximum, exclusiveMinimum/exclusiveMaximum (numbers),
/// minLength/maxLength (code points), allOf, anyOf, oneOf. Other keywords (title,
/// description, default, format, $schema...) are ignored; $ref is not supported.

#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace kpm::mcp {

/// Checks `instance` against `schema`. Pure and thread-safe. On failure the error
/// (kInvalidArgument) is the first problem found, as "path: what is wrong", where path
/// looks like `messages[0].role` or `(root)`, e.g.
/// `messages[0].role: expected one of system, user, assistant`.
Status ValidateJson(const nlohmann::json& schema, const nlohmann::json& instance);

}  // namespace kpm::mcp
