// Envelopes: members and array items read as the text they were given (On-Demand, no
// copy of the values), strings quoted, and an EventRecord written as one JSON object.
#include <simdjson.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "factstr/errors.hpp"
#include "factstr/json.hpp"
#include "shared.hpp"

namespace factstr::json {
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
    if (error) detail::throw_invalid_json(what, error);
    error = document.get_object().get(object);
    if (error == INCORRECT_TYPE) return std::nullopt;  // not an object
    if (error) detail::throw_invalid_json(what, error);
    std::optional<std::string> found;
    for (auto field : object) {
        std::string_view name;
        if ((error = field.unescaped_key().get(name))) detail::throw_invalid_json(what, error);
        if (found || name != key) continue;  // the first such member; the rest is still read
        std::string_view text;
        if ((error = value_text(field.value(), text))) detail::throw_invalid_json(what, error);
        // Views into the padded copy: at the same offsets in the text given.
        found = std::string(
            object_text.substr(static_cast<std::size_t>(text.data() - copy.data()), text.size()));
    }
    if ((error = at_end(document))) detail::throw_invalid_json(what, error);
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
    if (error) detail::throw_invalid_json(what, error);
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
    if ((error = at_end(document))) detail::throw_invalid_json(what, error);
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
