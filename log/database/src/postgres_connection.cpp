#include "factstr/database/postgres_connection.hpp"

#include <charconv>
#include <cstring>

namespace factstr::postgres {
namespace {

std::string trim(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\r'))
        text.pop_back();
    // libpq joins the lines of one message with a newline and a tab; one line for messages.
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        if (c == '\n' || c == '\t' || c == '\r') c = ' ';
        if (c == ' ' && !out.empty() && out.back() == ' ') continue;
        out.push_back(c);
    }
    return out;
}

bool is_lost(PGconn* conn) {
    return conn == nullptr || PQstatus(conn) != CONNECTION_OK;
}

// Server notices (and the FATAL message of a terminated session) are not printed to stderr;
// failures reach the caller as exceptions.
void ignore_notice(void*, const char*) {}

}  // namespace

// ---- Conninfo ------------------------------------------------------------------------------

Conninfo Conninfo::parse(std::string_view conninfo) {
    std::string text(conninfo);
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse(text.c_str(), &error);
    if (!options) {
        std::string message = error ? trim(error) : "out of memory";
        if (error) PQfreemem(error);
        throw InvalidInput(ErrorCode::invalid_argument, "invalid PostgreSQL connection string '" +
                                                            redact_raw_conninfo(conninfo) +
                                                            "': " + redact_raw_conninfo(message));
    }
    Conninfo info;
    for (PQconninfoOption* o = options; o->keyword; ++o) {
        if (!o->val) continue;
        if (std::strcmp(o->keyword, "password") == 0) info.password_ = o->val;
        info.params_.emplace_back(o->keyword, o->val);
    }
    PQconninfoFree(options);
    info.describe();
    return info;
}

Conninfo Conninfo::with(std::string_view keyword, std::string value) const {
    Conninfo copy = *this;
    bool found = false;
    for (auto& [k, v] : copy.params_) {
        if (k == keyword) {
            v = value;
            found = true;
        }
    }
    if (!found) copy.params_.emplace_back(std::string(keyword), value);
    if (keyword == "password") copy.password_ = std::move(value);
    copy.describe();
    return copy;
}

std::string Conninfo::to_conninfo() const {
    std::string out;
    for (const auto& [k, v] : params_) {
        if (!out.empty()) out += ' ';
        out += k + "='";
        for (char c : v) {
            if (c == '\'' || c == '\\') out += '\\';
            out += c;
        }
        out += '\'';
    }
    return out;
}

void Conninfo::describe() {
    description_ = "postgres:";
    bool first = true;
    for (const auto& [k, v] : params_) {
        if (k == "password") continue;
        if (!first) description_ += ' ';
        first = false;
        description_ += k + "=" + v;
    }
    description_ = redact(description_);
}

std::string Conninfo::redact(std::string text) const {
    if (password_.empty()) return text;
    std::size_t at = 0;
    while ((at = text.find(password_, at)) != std::string::npos) {
        text.replace(at, password_.size(), "***");
        at += 3;
    }
    return text;
}

std::string redact_raw_conninfo(std::string_view conninfo) {
    std::string text(conninfo);
    // URL form: scheme://user:password@host…
    const auto scheme = text.find("://");
    if (scheme != std::string::npos) {
        const auto start = scheme + 3;
        auto end = text.find_first_of("/?", start);
        if (end == std::string::npos) end = text.size();
        const auto at = text.rfind('@', end);
        if (at != std::string::npos && at >= start) {
            const auto colon = text.find(':', start);
            if (colon != std::string::npos && colon < at)
                text.replace(colon + 1, at - colon - 1, "***");
        }
    }
    // key=value form (also a URL query parameter): password=secret or password='se cret'.
    std::size_t from = 0;
    while ((from = text.find("password", from)) != std::string::npos) {
        std::size_t i = from + 8;
        while (i < text.size() && text[i] == ' ')
            ++i;
        if (i >= text.size() || text[i] != '=') {
            from = i;
            continue;
        }
        ++i;
        while (i < text.size() && text[i] == ' ')
            ++i;
        std::size_t end = i;
        if (end < text.size() && text[end] == '\'') {
            ++end;
            while (end < text.size() && text[end] != '\'')
                end += text[end] == '\\' ? 2 : 1;
            end = std::min(end + 1, text.size());
        } else {
            while (end < text.size() && text[end] != ' ' && text[end] != '&')
                ++end;
        }
        text.replace(i, end - i, "***");
        from = i + 3;
    }
    return text;
}

// ---- Connection ----------------------------------------------------------------------------

Connection::Connection(const Conninfo& info, bool prepare_statements)
    : info_(info), prepare_(prepare_statements) {
    connect();
}

// A new session: notices are dropped, and no statement is prepared in it yet.
void Connection::start_session() {
    PQsetNoticeProcessor(conn_, ignore_notice, nullptr);
    prepared_.clear();
    if (prepare_) exec("SET plan_cache_mode = force_custom_plan", "configuring the session");
}

Connection::~Connection() {
    if (conn_) PQfinish(conn_);
}

void Connection::connect() {
    std::vector<const char*> keywords, values;
    bool has_encoding = false, has_name = false;
    for (const auto& [k, v] : info_.parameters()) {
        if (k == "client_encoding") has_encoding = true;
        if (k == "application_name") has_name = true;
        keywords.push_back(k.c_str());
        values.push_back(v.c_str());
    }
    // Payloads and names travel as UTF-8 whatever the client locale says.
    if (!has_encoding) {
        keywords.push_back("client_encoding");
        values.push_back("UTF8");
    }
    if (!has_name) {
        keywords.push_back("application_name");
        values.push_back("factstr");
    }
    keywords.push_back(nullptr);
    values.push_back(nullptr);
    conn_ = PQconnectdbParams(keywords.data(), values.data(), 0);
    if (!conn_)
        throw PgError(ErrorCode::connection_failure,
                      info_.description() + ": cannot connect: out of memory", true, "");
    if (PQstatus(conn_) != CONNECTION_OK) {
        std::string message = info_.redact(trim(PQerrorMessage(conn_)));
        PQfinish(conn_);
        conn_ = nullptr;
        throw PgError(ErrorCode::connection_failure,
                      info_.description() + ": cannot connect: " + message, true, "");
    }
    start_session();
}

bool Connection::ensure_ok() {
    // An idle connection the server ended (terminated, restarted) has its FATAL message and
    // end of file waiting: reading what arrived (without blocking) notices it before anything
    // is sent, so that nothing is sent on a connection that is known to be gone.
    if (conn_ && PQstatus(conn_) == CONNECTION_OK && PQpipelineStatus(conn_) == PQ_PIPELINE_OFF &&
        PQconsumeInput(conn_) == 1 && PQstatus(conn_) == CONNECTION_OK)
        return false;
    if (conn_) {
        PQreset(conn_);
        if (PQstatus(conn_) == CONNECTION_OK && PQpipelineStatus(conn_) == PQ_PIPELINE_OFF) {
            start_session();
            return true;
        }
        PQfinish(conn_);
        conn_ = nullptr;
    }
    connect();
    return true;
}

void Connection::fail(const PGresult* result, std::string_view doing,
                      std::optional<std::size_t> command, bool unsent) {
    const bool lost = is_lost(conn_);
    std::string sqlstate;
    if (result) {
        if (const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE)) sqlstate = state;
    }
    std::string message;
    if (result && PQresultErrorMessage(result)[0] != '\0')
        message = PQresultErrorMessage(result);
    else if (conn_)
        message = PQerrorMessage(conn_);
    message = info_.redact(trim(std::move(message)));
    if (message.empty()) message = "unknown error";
    // Class 08 (connection exception), 57P0x (server shutting down this session).
    const bool connection_error =
        lost || sqlstate.rfind("08", 0) == 0 || sqlstate.rfind("57P0", 0) == 0;
    throw PgError(connection_error ? ErrorCode::connection_failure : ErrorCode::storage_failure,
                  info_.description() + ": " + std::string(doing) + " failed: " + message +
                      (sqlstate.empty() ? "" : " (SQLSTATE " + sqlstate + ")"),
                  connection_error, sqlstate,
                  // Only an answer from the server (it carries a SQLSTATE) says where it stopped.
                  sqlstate.empty() && !unsent ? std::nullopt : command);
}

Result Connection::exec(const char* sql, std::string_view doing) {
    Result result(PQexec(conn_, sql));
    const auto status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) fail(result.get(), doing);
    return result;
}

Result Connection::exec_params(const std::string& sql,
                               const std::vector<std::optional<std::string>>& params,
                               std::string_view doing) {
    if (prepare_) return std::move(pipeline({Command{sql, params}}, doing)[0]);
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params)
        values.push_back(p ? p->c_str() : nullptr);
    Result result(PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                               values.data(), nullptr, nullptr, 0));
    const auto status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) fail(result.get(), doing, 0);
    return result;
}

std::vector<Result> Connection::pipeline(const std::vector<Command>& commands,
                                         std::string_view doing) {
    constexpr std::size_t kMaxPrepared = 512;
    if (PQenterPipelineMode(conn_) != 1) fail(nullptr, doing);
    // What the server answers, in order: per command, the result of preparing it (the first
    // time) and its own result.
    struct Answer {
        std::size_t command;
        const std::string* prepared_as;  // set for the answer to a Parse
    };
    std::vector<Answer> answers;
    answers.reserve(commands.size() * 2);
    // Statements this pipeline prepares (reserved: at most one per command, so the pointers
    // to them stay valid), by SQL text so that a text repeated in the pipeline is prepared once.
    std::vector<std::string> names;
    names.reserve(commands.size());
    std::unordered_map<std::string_view, const std::string*> preparing;
    std::size_t sent = 0;
    for (const Command& command : commands) {
        std::vector<const char*> values;
        values.reserve(command.params.size());
        for (const auto& p : command.params)
            values.push_back(p ? p->c_str() : nullptr);
        const int n = static_cast<int>(values.size());
        int ok = 1;
        const std::string* name = nullptr;
        if (prepare_) {
            if (auto found = prepared_.find(command.sql); found != prepared_.end()) {
                name = &found->second;
            } else if (auto pending = preparing.find(command.sql); pending != preparing.end()) {
                name = pending->second;
            } else if (prepared_.size() + names.size() < kMaxPrepared) {
                names.push_back("factstr_" + std::to_string(++next_statement_));
                name = &names.back();
                preparing.emplace(command.sql, name);
                ok = PQsendPrepare(conn_, name->c_str(), command.sql.c_str(), n, nullptr);
                answers.push_back(Answer{sent, name});
            }
        }
        if (ok == 1)
            ok = name ? PQsendQueryPrepared(conn_, name->c_str(), n, values.data(), nullptr,
                                            nullptr, 0)
                      : PQsendQueryParams(conn_, command.sql.c_str(), n, nullptr, values.data(),
                                          nullptr, nullptr, 0);
        if (ok != 1) break;
        answers.push_back(Answer{sent, nullptr});
        ++sent;
    }
    if (sent < commands.size() || PQpipelineSync(conn_) != 1) {
        // Commands from `sent` on never left this process.
        if (is_lost(conn_)) {
            if (sent < commands.size()) fail(nullptr, doing, sent, true);
            fail(nullptr, doing);
        }
        // Not lost but refused: leave pipeline mode by dropping the connection.
        PQfinish(conn_);
        conn_ = nullptr;
        prepared_.clear();
        throw PgError(ErrorCode::connection_failure,
                      info_.description() + ": " + std::string(doing) + " failed: cannot send",
                      true, "");
    }
    std::vector<Result> results;
    results.reserve(commands.size());
    Result first_error;
    std::size_t first_error_at = 0;
    // The connection broke: the server's first error, if one came, says where it stopped.
    auto fail_lost = [&](const PGresult* last) {
        if (first_error) fail(first_error.get(), doing, first_error_at);
        fail(last, doing);
    };
    for (const Answer& answer : answers) {
        Result r(PQgetResult(conn_));
        if (!r) {
            if (is_lost(conn_)) fail_lost(nullptr);
            continue;  // defensive: should not happen
        }
        const auto status = PQresultStatus(r.get());
        const bool failed = status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK;
        if (failed && !first_error) {
            first_error = std::move(r);
            first_error_at = answer.command;
            if (is_lost(conn_)) fail_lost(nullptr);
        }
        if (answer.prepared_as) {
            // A statement exists once its Parse succeeded, whatever becomes of the rest.
            if (!failed) prepared_.emplace(commands[answer.command].sql, *answer.prepared_as);
        } else {
            results.push_back(failed ? Result() : std::move(r));
        }
        Result end(PQgetResult(conn_));  // NULL after each answer
        if (end && is_lost(conn_)) fail_lost(end.get());
    }
    // The sync point.
    for (;;) {
        Result r(PQgetResult(conn_));
        if (!r) {
            if (is_lost(conn_)) fail_lost(nullptr);
            continue;
        }
        if (PQresultStatus(r.get()) == PGRES_PIPELINE_SYNC) break;
        if (is_lost(conn_)) fail_lost(r.get());
    }
    if (PQexitPipelineMode(conn_) != 1) fail(nullptr, doing);
    if (first_error) fail(first_error.get(), doing, first_error_at);
    return results;
}

void Connection::rollback_quietly() {
    if (!conn_ || PQstatus(conn_) != CONNECTION_OK) return;
    const auto status = PQtransactionStatus(conn_);
    if (status == PQTRANS_INTRANS || status == PQTRANS_INERROR) PQclear(PQexec(conn_, "ROLLBACK"));
}

// ---- values --------------------------------------------------------------------------------

std::int64_t get_int(const PGresult* result, int row, int column) {
    const std::string_view text = get_text(result, row, column);
    std::int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size())
        throw StoreError(
            ErrorCode::corrupt_database,
            "postgres: expected an integer in a result, got '" + std::string(text) + "'");
    return value;
}

void append_array_element(std::string& out, std::string_view text) {
    out.push_back('"');
    for (char c : text) {
        if (c == '"' || c == '\\') out.push_back('\\');
        out.push_back(c);
    }
    out.push_back('"');
}

}  // namespace factstr::postgres
