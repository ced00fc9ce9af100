// Payload validation and compaction (prepare_payload), stored payloads parsed back
// (parse_stored), and predicate values parsed (Value::parse) and written (to_json).
#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <optional>
#include <string>

#include "factstr/errors.hpp"
#include "factstr/json.hpp"
#include "shared.hpp"

namespace factstr::json {
namespace detail {

void throw_invalid_json(std::string_view what, simdjson::error_code error) {
    throw InvalidInput(ErrorCode::invalid_json,
                       std::string(what) + " is not valid JSON: " + simdjson::error_message(error));
}

}  // namespace detail

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

// Separate parsers: one for input being validated, one for stored payloads being matched, so
// that a stored payload element stays valid while an input is parsed on the same thread.
simdjson::dom::parser& input_parser() {
    thread_local simdjson::dom::parser parser;
    return parser;
}

simdjson::dom::parser& stored_parser() {
    thread_local simdjson::dom::parser parser;
    return parser;
}

// True when the integer digits `digits` (no sign, no leading zeros) with `negative` lie
// outside both int64 and uint64.
bool beyond_64_bits(std::string_view digits, bool negative) {
    const std::string_view limit = negative ? "9223372036854775808" : "18446744073709551615";
    if (digits.size() != limit.size()) return digits.size() > limit.size();
    return digits > limit;
}

// simdjson 3.0 refuses integers beyond 64 bits (NUMBER_ERROR), which are valid JSON. Such an
// integer is read as the double nearest to it, as JSON readers at large read it (and as
// numbers beyond int64 are compared and hashed anyway): this returns a copy of `text` with
// ".0" after each one, to be parsed in its place, or nothing when there is none. Only the
// parse sees the copy; the text stored is the text given.
std::optional<std::string> widen_big_integers(std::string_view text) {
    std::string widened;
    std::size_t copied = 0;  // text[0, copied) is in `widened` already
    std::size_t i = 0;
    while (i < text.size()) {
        const char c = text[i];
        if (c == '"') {
            for (++i; i < text.size() && text[i] != '"'; ++i)
                if (text[i] == '\\') ++i;
            ++i;
            continue;
        }
        if (c != '-' && (c < '0' || c > '9')) {
            ++i;
            continue;
        }
        const bool negative = c == '-';
        const std::size_t start = i + (negative ? 1 : 0);
        std::size_t end = start;
        while (end < text.size() && text[end] >= '0' && text[end] <= '9')
            ++end;
        const bool integer =
            end == text.size() || (text[end] != '.' && text[end] != 'e' && text[end] != 'E');
        if (integer && beyond_64_bits(text.substr(start, end - start), negative)) {
            widened.append(text.substr(copied, end - copied));
            widened.append(".0");
            copied = end;
        }
        // The rest of the token (fraction, exponent) holds no integer of its own.
        while (end < text.size() &&
               (text[end] == '.' || text[end] == 'e' || text[end] == 'E' || text[end] == '+' ||
                text[end] == '-' || (text[end] >= '0' && text[end] <= '9')))
            ++end;
        i = end;
    }
    if (copied == 0) return std::nullopt;
    widened.append(text.substr(copied));
    return widened;
}

// Parses with `parser`, reading integers beyond 64 bits as doubles (widen_big_integers).
// `padded`: kParsePadding readable bytes follow the text, so it is parsed in place.
simdjson::error_code parse_json(simdjson::dom::parser& parser, std::string_view text, bool padded,
                                element& root) {
    auto error = parser.parse(text.data(), text.size(), !padded).get(root);
    if (error != simdjson::NUMBER_ERROR) return error;
    const std::optional<std::string> widened = widen_big_integers(text);
    if (!widened) return error;
    // The element lives in the parser's own buffers, not in the text parsed.
    return parser.parse(widened->data(), widened->size(), true).get(root);
}

// `padded`: kParsePadding readable bytes follow the text, so it is parsed in place.
element parse_input(std::string_view text, std::string_view what, bool padded = false) {
    element root;
    if (auto error = parse_json(input_parser(), text, padded, root))
        detail::throw_invalid_json(what, error);
    return root;
}

}  // namespace

Value Value::from_element(const element& e) {
    Value v;
    switch (e.type()) {
        case element_type::NULL_VALUE:
            v.kind = Kind::null;
            break;
        case element_type::BOOL:
            v.kind = Kind::boolean;
            v.boolean = bool(e);
            break;
        case element_type::INT64:
            v.kind = Kind::int64;
            v.int64 = int64_t(e);
            break;
        case element_type::UINT64:
            v.kind = Kind::uint64;
            v.uint64 = uint64_t(e);
            break;
        case element_type::DOUBLE:
            v.kind = Kind::number;
            v.number = double(e);
            break;
        case element_type::STRING:
            v.kind = Kind::string;
            v.string = std::string_view(e);
            break;
        case element_type::ARRAY:
            v.kind = Kind::array;
            for (element item : simdjson::dom::array(e))
                v.items.push_back(from_element(item));
            break;
        case element_type::OBJECT:
            v.kind = Kind::object;
            for (auto field : simdjson::dom::object(e))
                v.members.emplace_back(std::string(field.key), from_element(field.value));
            break;
    }
    return v;
}

Value Value::parse(std::string_view text, std::string_view what) {
    return from_element(parse_input(text, what));
}

// Duplicate keys make a payload mean different things to different readers (the first or
// the last wins); they are refused. Returns the first duplicated key found, if any. When
// `index_keys` is given, it also receives the index keys of the object's scalar members (a
// payload's top level), so that the top level is walked once for both.
static std::optional<std::string_view> duplicate_key(
    const element& e, std::vector<std::uint64_t>* index_keys = nullptr) {
    if (e.type() == element_type::ARRAY) {
        for (element item : simdjson::dom::array(e))
            if (auto d = duplicate_key(item)) return d;
        return std::nullopt;
    }
    if (e.type() != element_type::OBJECT) return std::nullopt;
    simdjson::dom::object object(e);
    if (index_keys) index_keys->reserve(index_keys->size() + object.size());
    // Small objects (the common case) are checked pairwise without allocating. The keys
    // seen are kept as two plain arrays: left uninitialized (no clearing per object) and
    // read a word at a time.
    constexpr std::size_t kSmall = 16;
    const char* small_data[kSmall];
    std::size_t small_size[kSmall];
    std::vector<std::string_view> large;
    std::size_t count = 0;
    for (auto field : object) {
        const std::string_view key = field.key;
        if (count < kSmall) {
            for (std::size_t j = 0; j < count; ++j)
                if (small_size[j] == key.size() &&
                    std::memcmp(small_data[j], key.data(), key.size()) == 0)
                    return key;
            small_data[count] = key.data();
            small_size[count] = key.size();
        } else {
            if (large.empty())
                for (std::size_t j = 0; j < kSmall; ++j)
                    large.emplace_back(small_data[j], small_size[j]);
            large.push_back(key);
        }
        ++count;
        const auto type = field.value.type();
        if (type == element_type::OBJECT || type == element_type::ARRAY) {
            if (auto d = duplicate_key(field.value)) return d;
        }
        if (index_keys) detail::add_index_key(*index_keys, key, field.value);
    }
    if (large.empty()) return std::nullopt;
    std::sort(large.begin(), large.end());
    auto at = std::adjacent_find(large.begin(), large.end());
    if (at != large.end()) return *at;
    return std::nullopt;
}

// Removes the whitespace outside strings from valid JSON text. Small texts (the common case)
// take a scalar pass that usually finds nothing to remove; large ones use simdjson::minify.
static void compact_in_place(std::string& text) {
    if (text.size() > 4096) {
        thread_local std::string buffer;
        if (buffer.size() < text.size()) buffer.resize(text.size());
        std::size_t length = 0;
        if (simdjson::minify(text.data(), text.size(), buffer.data(), length) ==
                simdjson::SUCCESS &&
            length != text.size())
            text.assign(buffer.data(), length);
        return;
    }
    // Strings are skipped with memchr (their bytes are most of a payload); only the bytes
    // between strings are looked at one by one, and nothing moves until a space is found.
    char* data = text.data();
    const std::size_t size = text.size();
    std::size_t in = 0, out = 0;
    while (in < size) {
        const char c = data[in];
        if (c == '"') {
            std::size_t end = in + 1;
            for (;;) {
                auto* quote = static_cast<char*>(std::memchr(data + end, '"', size - end));
                if (!quote) return;  // not valid JSON: left as it is
                std::size_t at = static_cast<std::size_t>(quote - data);
                std::size_t backslashes = 0;
                while (at - backslashes > in && data[at - backslashes - 1] == '\\')
                    ++backslashes;
                end = at + 1;
                if (backslashes % 2 == 0) break;
            }
            if (out != in) std::memmove(data + out, data + in, end - in);
            out += end - in;
            in = end;
        } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
            ++in;
        } else {
            data[out++] = c;
            ++in;
        }
    }
    text.resize(out);
}

PreparedPayload prepare_payload(std::string text, std::string_view what) {
    // Text with kParsePadding spare bytes of capacity after it (the Node binding passes its
    // payloads so) is parsed in place; other text is first copied into a padded buffer.
    element root = parse_input(text, what, text.capacity() - text.size() >= kParsePadding);
    PreparedPayload prepared;
    if (auto key = duplicate_key(root, &prepared.index_keys))
        throw InvalidInput(
            ErrorCode::invalid_json,
            std::string(what) + " has the key \"" + std::string(*key) + "\" twice in one object");
    compact_in_place(text);
    prepared.compact = std::move(text);
    return prepared;
}

element parse_stored(std::string_view compact, bool padded) {
    element root;
    if (auto error = parse_json(stored_parser(), compact, padded, root))
        throw StoreError(
            ErrorCode::corrupt_database,
            std::string("a stored payload is not valid JSON: ") + simdjson::error_message(error));
    return root;
}

namespace {
void write_value(std::string& out, const Value& v) {
    char buf[32];
    switch (v.kind) {
        case Value::Kind::null:
            out += "null";
            break;
        case Value::Kind::boolean:
            out += v.boolean ? "true" : "false";
            break;
        case Value::Kind::int64:
            out += std::to_string(v.int64);
            break;
        case Value::Kind::uint64:
            out += std::to_string(v.uint64);
            break;
        case Value::Kind::number: {
            auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v.number);
            (void)ec;
            out.append(buf, end);
            break;
        }
        case Value::Kind::string:
            append_quoted(out, v.string);
            break;
        case Value::Kind::array:
            out.push_back('[');
            for (std::size_t i = 0; i < v.items.size(); ++i) {
                if (i) out.push_back(',');
                write_value(out, v.items[i]);
            }
            out.push_back(']');
            break;
        case Value::Kind::object:
            out.push_back('{');
            for (std::size_t i = 0; i < v.members.size(); ++i) {
                if (i) out.push_back(',');
                append_quoted(out, v.members[i].first);
                out.push_back(':');
                write_value(out, v.members[i].second);
            }
            out.push_back('}');
            break;
    }
}
}  // namespace

std::string to_json(const Value& value) {
    std::string out;
    write_value(out, value);
    return out;
}
}  // namespace factstr::json
