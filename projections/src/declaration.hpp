// What the files of a projection declaration share: the refusal every rule gives, and the
// identifier rule for projection, table and column names.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace factstr::projections::detail {

// Throws InvalidInput(invalid_declaration) "<where>: <what>".
[[noreturn]] void refuse_declaration(const std::string& where, const std::string& what);

// Whether `name` matches [a-z_][a-z0-9_]* and has at most `max_length` characters.
bool valid_identifier(std::string_view name, std::size_t max_length);

}  // namespace factstr::projections::detail
