#include "store_factory.hpp"

namespace factstr::testing {

const char* backend_name() {
    return "memory";
}
Store make_store() {
    return memory_store();
}
std::optional<Store> reopen_store() {
    return std::nullopt;
}

}  // namespace factstr::testing
