#include "factstr/json.hpp"

#include <simdjson.h>
#include <xxhash.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <limits>
#include <optional>

#include "factstr/errors.hpp"

namespace factstr::json {
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

[[noreturn]] void throw_invalid_json(std::string_view what, simdjson::error_code error) {
    throw InvalidInput(ErrorCode::invalid_json,
                       std::string(what) + " is not valid JSON: " + simdjson::error_message(error));
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
        throw_invalid_json(what, error);
    return root;
}

// Doubles that hold an integer in int64 range compare (and hash) as that integer, so that
// 1 and 1.0 are one value.
bool double_as_int64(double d, std::int64_t& out) {
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) return false;
    if (std::trunc(d) != d) return false;
    out = static_cast<std::int64_t>(d);
    return true;
}

struct Number {
    enum class Kind { int64, uint64, number } kind;
    std::int64_t i = 0;
    std::uint64_t u = 0;
    double d = 0;
};

Number canonical(Number n) {
    if (n.kind == Number::Kind::number) {
        std::int64_t i;
        if (double_as_int64(n.d, i)) return {Number::Kind::int64, i, 0, 0};
    } else if (n.kind == Number::Kind::uint64 &&
               n.u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return {Number::Kind::int64, static_cast<std::int64_t>(n.u), 0, 0};
    } else if (n.kind == Number::Kind::uint64) {
        // Beyond int64: compared and hashed through double, like JSON numbers at large.
        return {Number::Kind::number, 0, 0, static_cast<double>(n.u)};
    }
    return n;
}

bool numbers_equal(Number a, Number b) {
    a = canonical(a);
    b = canonical(b);
    if (a.kind != b.kind) return false;
    return a.kind == Number::Kind::int64 ? a.i == b.i : a.d == b.d;
}

bool number_of(const element& e, Number& out) {
    switch (e.type()) {
        case element_type::INT64:
            out = {Number::Kind::int64, int64_t(e), 0, 0};
            return true;
        case element_type::UINT64:
            out = {Number::Kind::uint64, 0, uint64_t(e), 0};
            return true;
        case element_type::DOUBLE:
            out = {Number::Kind::number, 0, 0, double(e)};
            return true;
        default:
            return false;
    }
}

bool number_of(const Value& v, Number& out) {
    switch (v.kind) {
        case Value::Kind::int64:
            out = {Number::Kind::int64, v.int64, 0, 0};
            return true;
        case Value::Kind::uint64:
            out = {Number::Kind::uint64, 0, v.uint64, 0};
            return true;
        case Value::Kind::number:
            out = {Number::Kind::number, 0, 0, v.number};
            return true;
        default:
            return false;
    }
}

// The bytes hashed for one (key, scalar) pair: the key, a NUL, a tag and the value. Built on
// the stack when they fit (nearly always), so hashing a key neither allocates nor touches
// thread-local storage.
class HashInput {
  public:
    explicit HashInput(std::string_view key) {
        append(key);
        push_back('\0');
    }
    void push_back(char c) { append(std::string_view(&c, 1)); }
    void append(std::string_view bytes) {
        if (!on_heap_ && size_ + bytes.size() <= sizeof stack_) {
            std::memcpy(stack_ + size_, bytes.data(), bytes.size());
            size_ += bytes.size();
            return;
        }
        if (!on_heap_) heap_.assign(stack_, size_);
        on_heap_ = true;
        heap_.append(bytes);
    }
    void append(const char* bytes, std::size_t size) { append(std::string_view(bytes, size)); }
    std::uint64_t hash() const {
        return on_heap_ ? XXH3_64bits(heap_.data(), heap_.size()) : XXH3_64bits(stack_, size_);
    }

  private:
    char stack_[240];
    std::size_t size_ = 0;
    bool on_heap_ = false;
    std::string heap_;
};

// The bytes hashed for a scalar: a tag and a canonical value.
void hash_input_number(HashInput& buf, Number n) {
    n = canonical(n);
    if (n.kind == Number::Kind::int64) {
        buf.push_back('i');
        buf.append(reinterpret_cast<const char*>(&n.i), sizeof n.i);
    } else {
        buf.push_back('d');
        buf.append(reinterpret_cast<const char*>(&n.d), sizeof n.d);
    }
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

bool subset_match(const Value& predicate, const element& payload) {
    switch (predicate.kind) {
        case Value::Kind::null:
            return payload.is_null();
        case Value::Kind::boolean:
            return payload.type() == element_type::BOOL && bool(payload) == predicate.boolean;
        case Value::Kind::string:
            return payload.type() == element_type::STRING &&
                   std::string_view(payload) == predicate.string;
        case Value::Kind::int64:
        case Value::Kind::uint64:
        case Value::Kind::number: {
            Number a, b;
            return number_of(predicate, a) && number_of(payload, b) && numbers_equal(a, b);
        }
        case Value::Kind::object: {
            if (payload.type() != element_type::OBJECT) return false;
            simdjson::dom::object object(payload);
            for (const auto& [key, expected] : predicate.members) {
                element actual;
                if (object.at_key(key).get(actual)) return false;
                if (!subset_match(expected, actual)) return false;
            }
            return true;
        }
        case Value::Kind::array: {
            if (payload.type() != element_type::ARRAY) return false;
            simdjson::dom::array array(payload);
            for (const Value& expected : predicate.items) {
                bool found = false;
                for (element actual : array) {
                    if (subset_match(expected, actual)) {
                        found = true;
                        break;
                    }
                }
                if (!found) return false;
            }
            return true;
        }
    }
    return false;
}

std::uint64_t type_index_key(std::string_view event_type) {
    HashInput buf(
        "\xff"
        "type");
    buf.append(event_type);
    return buf.hash();
}

bool is_indexable_scalar(const Value& value) {
    return value.kind != Value::Kind::array && value.kind != Value::Kind::object;
}

std::uint64_t index_key(std::string_view key, const element& scalar) {
    HashInput buf(key);
    Number n;
    switch (scalar.type()) {
        case element_type::NULL_VALUE:
            buf.push_back('n');
            break;
        case element_type::BOOL:
            buf.push_back(bool(scalar) ? 't' : 'f');
            break;
        case element_type::STRING:
            buf.push_back('s');
            buf.append(std::string_view(scalar));
            break;
        default:
            number_of(scalar, n);
            hash_input_number(buf, n);
            break;
    }
    return buf.hash();
}

std::uint64_t index_key(std::string_view key, const Value& scalar) {
    HashInput buf(key);
    Number n;
    switch (scalar.kind) {
        case Value::Kind::null:
            buf.push_back('n');
            break;
        case Value::Kind::boolean:
            buf.push_back(scalar.boolean ? 't' : 'f');
            break;
        case Value::Kind::string:
            buf.push_back('s');
            buf.append(scalar.string);
            break;
        default:
            number_of(scalar, n);
            hash_input_number(buf, n);
            break;
    }
    return buf.hash();
}

namespace {
// The one rule for which members of a payload's top level are indexed: the scalars. Shared by
// validation (prepare_payload) and by stored payloads read back (index_keys_of), which must
// agree key for key.
void add_index_key(std::vector<std::uint64_t>& out, std::string_view key, const element& value) {
    const auto type = value.type();
    if (type != element_type::OBJECT && type != element_type::ARRAY)
        out.push_back(index_key(key, value));
}

void collect_index_keys(const element& root, std::vector<std::uint64_t>& out) {
    if (root.type() != element_type::OBJECT) return;
    simdjson::dom::object object(root);
    out.reserve(out.size() + object.size());
    for (auto field : object)
        add_index_key(out, field.key, field.value);
}
}  // namespace

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
        if (index_keys) add_index_key(*index_keys, key, field.value);
    }
    if (large.empty()) return std::nullopt;
    std::sort(large.begin(), large.end());
    auto at = std::adjacent_find(large.begin(), large.end());
    if (at != large.end()) return *at;
    return std::nullopt;
}

std::vector<std::uint64_t> index_keys_of(std::string_view compact) {
    std::vector<std::uint64_t> keys;
    collect_index_keys(parse_stored(compact), keys);
    return keys;
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

// Text given to On-Demand: in place when padded, else copied once into a padded buffer;
// offsets into either are offsets into the text.
simdjson::padded_string_view padded_view(std::string_view text, bool padded,
                                         simdjson::padded_string& copy) {
    if (padded)
        return simdjson::padded_string_view(text.data(), text.size(), text.size() + kParsePadding);
    copy = simdjson::padded_string(text);
    return copy;
}

static_assert(kParsePadding >= simdjson::SIMDJSON_PADDING,
              "text parsed in place must carry simdjson's padding");

std::string_view trim_trailing_space(std::string_view text) {
    while (!text.empty() && (text.back() == ' ' || text.back() == '\n' || text.back() == '\r' ||
                             text.back() == '\t'))
        text.remove_suffix(1);
    return text;
}

// After a document's value has been read: anything but the end is trailing content.
simdjson::error_code at_end(simdjson::ondemand::document& document) {
    return document.current_location().error() == simdjson::OUT_OF_BOUNDS
               ? simdjson::SUCCESS
               : simdjson::TRAILING_CONTENT;
}

// The exact text of one On-Demand value, without the whitespace after it.
simdjson::error_code value_text(simdjson::ondemand::value value, std::string_view& text) {
    using namespace simdjson;
    ondemand::json_type type;
    if (auto error = value.type().get(type)) return error;
    error_code error = SUCCESS;
    if (type == ondemand::json_type::object) {
        ondemand::object object;
        error = value.get_object().get(object);
        if (!error) error = object.raw_json().get(text);
    } else if (type == ondemand::json_type::array) {
        ondemand::array array;
        error = value.get_array().get(array);
        if (!error) error = array.raw_json().get(text);
    } else {
        text = value.raw_json_token();
    }
    text = trim_trailing_space(text);
    return error;
}

simdjson::ondemand::parser& ondemand_parser() {
    thread_local simdjson::ondemand::parser parser;
    return parser;
}

}  // namespace

std::optional<std::string> member_text(std::string_view object_text, std::string_view key,
                                       std::string_view what) {
    using namespace simdjson;
    padded_string copy;
    ondemand::document document;
    ondemand::object object;
    auto error = ondemand_parser().iterate(padded_view(object_text, false, copy)).get(document);
    if (error) throw_invalid_json(what, error);
    error = document.get_object().get(object);
    if (error == INCORRECT_TYPE) return std::nullopt;  // not an object
    if (error) throw_invalid_json(what, error);
    std::optional<std::string> found;
    for (auto field : object) {
        std::string_view name;
        if ((error = field.unescaped_key().get(name))) throw_invalid_json(what, error);
        if (found || name != key) continue;  // the first such member; the rest is still read
        std::string_view text;
        if ((error = value_text(field.value(), text))) throw_invalid_json(what, error);
        // Views into the padded copy: at the same offsets in the text given.
        found = std::string(
            object_text.substr(static_cast<std::size_t>(text.data() - copy.data()), text.size()));
    }
    if ((error = at_end(document))) throw_invalid_json(what, error);
    return found;
}

std::vector<std::string_view> item_texts(std::string_view array_text, bool padded,
                                         std::string_view what) {
    using namespace simdjson;
    padded_string copy;
    const padded_string_view view = padded_view(array_text, padded, copy);
    ondemand::document document;
    ondemand::array array;
    auto error = ondemand_parser().iterate(view).get(document);
    if (!error) error = document.get_array().get(array);
    if (error) throw_invalid_json(what, error);
    std::vector<std::string_view> items;
    for (auto item : array) {
        ondemand::value value;
        std::string_view text;
        if ((error = item.get(value)) || (error = value_text(value, text)))
            throw InvalidInput(ErrorCode::invalid_json,
                               std::string(what) + ": item " + std::to_string(items.size()) +
                                   " is not valid JSON: " + simdjson::error_message(error));
        items.push_back(
            array_text.substr(static_cast<std::size_t>(text.data() - view.data()), text.size()));
    }
    if ((error = at_end(document))) throw_invalid_json(what, error);
    return items;
}

void append_quoted(std::string& out, std::string_view text) {
    static constexpr char hex[] = "0123456789abcdef";
    out.push_back('"');
    for (char c : text) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    out += "\\u00";
                    out.push_back(hex[(c >> 4) & 0xf]);
                    out.push_back(hex[c & 0xf]);
                } else {
                    out.push_back(c);
                }
        }
    }
    out.push_back('"');
}

void append_rfc3339(std::string& out, Timestamp at) {
    using namespace std::chrono;
    const auto micros = at.time_since_epoch().count();
    const auto day = floor<days>(sys_time<microseconds>(microseconds(micros)));
    const year_month_day date{day};
    const int year = static_cast<int>(date.year());
    const auto in_day = micros - duration_cast<microseconds>(day.time_since_epoch()).count();
    if (year < 0 || year > 9999) {
        // Outside four-digit years: the C library's spelling (a sign or a fifth digit).
        std::time_t seconds = static_cast<std::time_t>(micros / 1000000);
        long fraction = static_cast<long>(micros % 1000000);
        if (fraction < 0) {
            fraction += 1000000;
            --seconds;
        }
        std::tm tm{};
        gmtime_r(&seconds, &tm);
        char buf[64];
        std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
                      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, fraction);
        out += buf;
        return;
    }
    char text[28] = "0000-00-00T00:00:00.000000Z";
    auto put = [&](int at, int width, long long value) {
        for (int i = at + width - 1; i >= at; --i) {
            text[i] = static_cast<char>('0' + value % 10);
            value /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, static_cast<unsigned>(date.month()));
    put(8, 2, static_cast<unsigned>(date.day()));
    const long long seconds = in_day / 1000000;
    put(11, 2, seconds / 3600);
    put(14, 2, seconds / 60 % 60);
    put(17, 2, seconds % 60);
    put(20, 6, in_day % 1000000);
    out.append(text, 27);
}

std::string format_rfc3339(Timestamp at) {
    std::string out;
    append_rfc3339(out, at);
    return out;
}

Timestamp parse_rfc3339(std::string_view text) {
    auto fail = [&]() -> Timestamp {
        throw InvalidInput(ErrorCode::invalid_argument,
                           "not an RFC 3339 timestamp: '" + std::string(text) + "'");
    };
    auto digits = [&](std::size_t at, std::size_t count, int& out) {
        if (at + count > text.size()) return false;
        out = 0;
        for (std::size_t i = at; i < at + count; ++i) {
            if (text[i] < '0' || text[i] > '9') return false;
            out = out * 10 + (text[i] - '0');
        }
        return true;
    };
    int year, month, day, hour, minute, second;
    if (!digits(0, 4, year) || text.size() < 19 || text[4] != '-' || !digits(5, 2, month) ||
        text[7] != '-' || !digits(8, 2, day) ||
        (text[10] != 'T' && text[10] != 't' && text[10] != ' ') || !digits(11, 2, hour) ||
        text[13] != ':' || !digits(14, 2, minute) || text[16] != ':' || !digits(17, 2, second))
        return fail();
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60)
        return fail();
    std::size_t at = 19;
    long micros = 0;
    if (at < text.size() && text[at] == '.') {
        ++at;
        int count = 0;
        while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
            if (count < 6) micros = micros * 10 + (text[at] - '0');
            ++count;
            ++at;
        }
        if (count == 0) return fail();
        for (int i = count; i < 6; ++i)
            micros *= 10;
    }
    long offset_seconds = 0;
    if (at < text.size() && (text[at] == 'Z' || text[at] == 'z')) {
        ++at;
    } else if (at < text.size() && (text[at] == '+' || text[at] == '-')) {
        int oh, om;
        if (!digits(at + 1, 2, oh) || at + 3 >= text.size() || text[at + 3] != ':' ||
            !digits(at + 4, 2, om))
            return fail();
        offset_seconds = (oh * 3600L + om * 60L) * (text[at] == '-' ? -1 : 1);
        at += 6;
    } else {
        return fail();
    }
    if (at != text.size()) return fail();
    using namespace std::chrono;
    auto date = year_month_day{std::chrono::year(year), std::chrono::month(unsigned(month)),
                               std::chrono::day(unsigned(day))};
    if (!date.ok()) return fail();
    auto t = sys_days(date) + hours(hour) + minutes(minute) + seconds(second) -
             std::chrono::seconds(offset_seconds);
    return time_point_cast<microseconds>(t) + microseconds(micros);
}

std::string record_to_json(const EventRecord& record) {
    std::string out;
    out.reserve(record.payload.size() + record.event_type.size() + 96);
    out += "{\"sequence_number\":";
    out += std::to_string(record.sequence_number);
    out += ",\"occurred_at\":\"";
    append_rfc3339(out, record.occurred_at);
    out += "\",\"event_type\":";
    append_quoted(out, record.event_type);
    out += ",\"payload\":";
    out += record.payload;
    out += '}';
    return out;
}

}  // namespace factstr::json

namespace factstr::json {
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
