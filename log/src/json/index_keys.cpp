// Index keys: stable 64-bit hashes of top-level (key, scalar) pairs and of event types, as
// stored in persistent indexes. Never change what is hashed without a schema version bump.
#include <simdjson.h>
#include <xxhash.h>

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "factstr/json.hpp"
#include "shared.hpp"

namespace factstr::json {
namespace {

using detail::Number;
using simdjson::dom::element;
using simdjson::dom::element_type;

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
    n = detail::canonical(n);
    if (n.kind == Number::Kind::int64) {
        buf.push_back('i');
        buf.append(reinterpret_cast<const char*>(&n.i), sizeof n.i);
    } else {
        buf.push_back('d');
        buf.append(reinterpret_cast<const char*>(&n.d), sizeof n.d);
    }
}

}  // namespace

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
            detail::number_of(scalar, n);
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
            detail::number_of(scalar, n);
            hash_input_number(buf, n);
            break;
    }
    return buf.hash();
}

namespace {

void collect_index_keys(const element& root, std::vector<std::uint64_t>& out) {
    if (root.type() != element_type::OBJECT) return;
    simdjson::dom::object object(root);
    out.reserve(out.size() + object.size());
    for (auto field : object)
        detail::add_index_key(out, field.key, field.value);
}

}  // namespace

std::vector<std::uint64_t> index_keys_of(std::string_view compact) {
    std::vector<std::uint64_t> keys;
    collect_index_keys(parse_stored(compact), keys);
    return keys;
}

}  // namespace factstr::json
