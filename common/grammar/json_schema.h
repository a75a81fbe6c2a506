// JSON Schema → GBNF (grammar.h): the grammar of the JSON documents a schema accepts, for
// `response_format: {"type": "json_schema"}` and tool calls (issue 19). The subset is what
// OpenAI's structured outputs and vLLM accept: type (one or a list), properties, required,
// additionalProperties, enum, const, items, prefixItems, minItems/maxItems, anyOf/oneOf,
// allOf of one, $ref to #/$defs/… or #/definitions/…, minLength/maxLength, and the string
// formats date, time, date-time, uuid. Annotations (title, description, default, examples,
// $schema, $id, $comment) are ignored; any other keyword is an error naming it and where it
// is, since a grammar that ignored it would let documents through that the schema refuses.
// Whitespace between tokens is a single optional space or newline run of at most a few
// characters, so a model cannot stall a request on endless blanks.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace strata::grammar {

// GBNF text whose root rule is the schema's documents. `true` / `{}` is any JSON value.
// Properties keep the schema's order (an ordered_json: the order clients expect the keys in).
StatusOr<std::string> json_schema_to_gbnf(const nlohmann::ordered_json& schema);

// Any JSON value (`response_format: {"type": "json_object"}` asks for an object).
std::string json_object_gbnf();

}  // namespace strata::grammar
