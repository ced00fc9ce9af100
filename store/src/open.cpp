#include <string>

#include "factstr/backend.hpp"
#include "factstr/errors.hpp"

namespace factstr {

std::unique_ptr<Backend> open_backend(std::string_view url) {
    if (url == "memory:" || url == "memory" || url == "memory://")
        return make_memory_backend();
    throw InvalidInput(ErrorCode::unsupported_url,
                       "unsupported store URL '" + std::string(url) +
                           "': expected memory:, sqlite:PATH or postgres://…");
}

}  // namespace factstr
