#include <charconv>
#include <string>

#include "factstr/errors.hpp"
#include "factstr/internal/backend.hpp"

namespace factstr {
namespace {

bool starts_with(std::string_view text, std::string_view prefix) {
    return text.substr(0, prefix.size()) == prefix;
}

int parse_int_option(std::string_view url, std::string_view name, std::string_view value) {
    int out = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
    if (ec != std::errc() || end != value.data() + value.size() || out < 0)
        throw InvalidInput(ErrorCode::invalid_argument,
                           "store URL '" + std::string(url) + "': option " + std::string(name) +
                               " needs a non-negative integer, got '" + std::string(value) + "'");
    return out;
}

// "host=localhost dbname=facts": a libpq key=value string starts with a keyword and '='.
bool looks_like_libpq_keywords(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size() && text[i] == ' ')
        ++i;
    const std::size_t start = i;
    while (i < text.size() && ((text[i] >= 'a' && text[i] <= 'z') || text[i] == '_'))
        ++i;
    if (i == start) return false;
    while (i < text.size() && text[i] == ' ')
        ++i;
    return i < text.size() && text[i] == '=';
}

// "scheme://user:secret@host/…" → "scheme://user:***@host/…", for messages.
std::string without_password(std::string_view url) {
    std::string out(url);
    const auto scheme_end = out.find("://");
    if (scheme_end == std::string::npos) return out;
    const auto authority = scheme_end + 3;
    const auto at = out.find('@', authority);
    const auto slash = out.find('/', authority);
    if (at == std::string::npos || (slash != std::string::npos && slash < at)) return out;
    const auto colon = out.find(':', authority);
    if (colon == std::string::npos || colon > at) return out;
    return out.replace(colon + 1, at - colon - 1, "***");
}

}  // namespace

SqliteOptions parse_sqlite_url(std::string_view url) {
    std::string_view rest = url;
    if (!starts_with(rest, "sqlite:"))
        throw InvalidInput(ErrorCode::unsupported_url,
                           "not a sqlite URL: '" + std::string(url) + "'");
    rest.remove_prefix(7);
    if (starts_with(rest, "//")) rest.remove_prefix(2);
    SqliteOptions options;
    const auto question = rest.find('?');
    options.path = std::string(rest.substr(0, question));
    if (options.path.empty())
        throw InvalidInput(ErrorCode::invalid_argument,
                           "store URL '" + std::string(url) +
                               "' names no file: use sqlite:PATH, e.g. sqlite:./facts.db");
    if (question == std::string_view::npos) return options;
    std::string_view query = rest.substr(question + 1);
    while (!query.empty()) {
        const auto amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        const auto eq = pair.find('=');
        std::string_view name = pair.substr(0, eq);
        std::string_view value = eq == std::string_view::npos ? "" : pair.substr(eq + 1);
        if (name == "sync") {
            if (value == "full")
                options.sync = SqliteOptions::Sync::full;
            else if (value == "normal")
                options.sync = SqliteOptions::Sync::normal;
            else
                throw InvalidInput(ErrorCode::invalid_argument,
                                   "store URL '" + std::string(url) +
                                       "': sync must be full or normal, got '" +
                                       std::string(value) + "'");
        } else if (name == "busy_timeout_ms") {
            options.busy_timeout_ms = parse_int_option(url, name, value);
        } else if (name == "poll_ms") {
            options.poll_interval_ms = std::max(1, parse_int_option(url, name, value));
        } else if (name == "index_batch") {
            options.index_batch = std::max(1, parse_int_option(url, name, value));
        } else {
            throw InvalidInput(ErrorCode::invalid_argument,
                               "store URL '" + std::string(url) + "': unknown option '" +
                                   std::string(name) +
                                   "' (known: sync, busy_timeout_ms, poll_ms, index_batch)");
        }
    }
    return options;
}

std::unique_ptr<Backend> open_backend(std::string_view url) {
    if (url == "memory:" || url == "memory" || url == "memory://") return make_memory_backend();
    if (starts_with(url, "sqlite:")) return make_sqlite_backend(parse_sqlite_url(url));
    if (starts_with(url, "postgres://") || starts_with(url, "postgresql://") ||
        looks_like_libpq_keywords(url))
        return make_postgres_backend(std::string(url));
    throw InvalidInput(ErrorCode::unsupported_url,
                       "unsupported store URL '" + without_password(url) +
                           "': expected memory:, sqlite:PATH or postgres://…");
}

}  // namespace factstr
