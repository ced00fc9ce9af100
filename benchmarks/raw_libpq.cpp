// The raw libpq yardsticks, on the same server as the store: a table of the factstr facts
// table's shape in a database of their own (inserts), or the store's own database (reads).
#include <fmt/format.h>

#include <atomic>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>

#include "pg_connection.hpp"
#include "raw_engines.hpp"

namespace factstr::bench {
namespace {

// A table of the factstr facts table's shape (without the gap-free numbering), empty.
PgConn raw_connection(Bench& bench, bool recreate) {
    PgConn raw(bench.config().url, bench.raw_database());
    if (recreate)
        raw.exec(
            "DROP TABLE IF EXISTS raw_facts;"
            " CREATE TABLE raw_facts (sequence_number bigint PRIMARY KEY, occurred_at bigint "
            "NOT NULL,"
            " event_type text NOT NULL, payload text NOT NULL, batch_last bigint NOT NULL);"
            " CREATE INDEX raw_facts_by_type ON raw_facts (event_type, sequence_number);"
            " CREATE INDEX raw_facts_by_payload ON raw_facts USING gin ((payload::jsonb) "
            "jsonb_path_ops);"
            " CHECKPOINT");
    return raw;
}

std::string insert_sql(std::size_t rows) {
    std::string sql = "INSERT INTO raw_facts VALUES ";
    for (std::size_t i = 0; i < rows; ++i)
        sql += fmt::format("{}(${},${},${},${},${})", i ? "," : "", 5 * i + 1, 5 * i + 2, 5 * i + 3,
                           5 * i + 4, 5 * i + 5);
    return sql;
}

}  // namespace

double raw_pg_inserts(Bench& bench, std::size_t rows, std::size_t per_statement) {
    PgConn raw = raw_connection(bench, true);
    raw.prepare("insert", insert_sql(per_statement), static_cast<int>(5 * per_statement));
    const std::vector<std::string> texts = payloads(1, std::min<std::size_t>(rows, 10000), 1000);
    std::vector<std::string> text(5 * per_statement);
    std::vector<const char*> values(5 * per_statement);
    const std::string occurred = std::to_string(1700000000000000LL);
    auto start = Clock::now();
    for (std::size_t i = 0; i < rows;) {
        const std::size_t last = i + per_statement;
        for (std::size_t j = 0; j < per_statement; ++j, ++i) {
            text[5 * j] = std::to_string(i + 1);
            text[5 * j + 1] = occurred;
            text[5 * j + 2] = "deposited";
            text[5 * j + 3] = texts[i % texts.size()];
            text[5 * j + 4] = std::to_string(last);
            for (std::size_t k = 0; k < 5; ++k)
                values[5 * j + k] = text[5 * j + k].c_str();
        }
        raw.exec_prepared("insert", values);
    }
    return rows / seconds_since(start);
}

double raw_pg_concurrent_inserts(Bench& bench, unsigned connections,
                                 std::chrono::milliseconds duration) {
    { PgConn raw = raw_connection(bench, true); }
    std::atomic<std::int64_t> next{0};
    std::atomic<std::size_t> inserted{0};
    std::vector<std::thread> workers;
    std::exception_ptr failure;
    std::mutex failure_mutex;
    auto start = Clock::now();
    for (unsigned c = 0; c < connections; ++c) {
        workers.emplace_back([&, c] {
            try {
                PgConn raw = raw_connection(bench, false);
                raw.prepare("insert", insert_sql(1), 5);
                std::mt19937_64 random(300 + c);
                const std::string body = payload(random, 1000);
                while (Clock::now() - start < duration) {
                    const std::string seq = std::to_string(++next);
                    raw.exec_prepared("insert", {seq.c_str(), "1700000000000000", "deposited",
                                                 body.c_str(), seq.c_str()});
                    inserted.fetch_add(1, std::memory_order_relaxed);
                }
            } catch (...) {
                std::lock_guard lock(failure_mutex);
                failure = std::current_exception();
            }
        });
    }
    for (auto& w : workers)
        w.join();
    if (failure) std::rethrow_exception(failure);
    return inserted / seconds_since(start);
}

double raw_pg_type_read(Bench& bench, std::size_t size) {
    PgConn raw(bench.config().url, bench.current_database());
    raw.prepare("by_type",
                "SELECT sequence_number, occurred_at, event_type, payload FROM facts"
                " WHERE event_type = $1 ORDER BY sequence_number",
                1);
    std::size_t facts = 0, runs = 0;
    auto start = Clock::now();
    do {
        const char* type = "deposited";
        PGresult* r = PQexecPrepared(raw.get(), "by_type", 1, &type, nullptr, nullptr, 0);
        raw.check_keep(r, "by_type");
        std::vector<EventRecord> records;
        const int n = PQntuples(r);
        records.reserve(static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i)
            records.push_back(EventRecord{
                static_cast<SequenceNumber>(std::strtoull(PQgetvalue(r, i, 0), nullptr, 10)),
                Timestamp(
                    std::chrono::microseconds(std::strtoll(PQgetvalue(r, i, 1), nullptr, 10))),
                std::string(PQgetvalue(r, i, 2), static_cast<std::size_t>(PQgetlength(r, i, 2))),
                std::string(PQgetvalue(r, i, 3), static_cast<std::size_t>(PQgetlength(r, i, 3)))});
        PQclear(r);
        if (records.size() != size) throw std::runtime_error("raw libpq: wrong row count");
        facts += records.size();
        ++runs;
    } while (runs < 10 && seconds_since(start) < 1.0);
    return facts / seconds_since(start);
}

double raw_pg_scan(Bench& bench) {
    PgConn raw(bench.config().url, bench.current_database());
    raw.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    raw.exec(
        "DECLARE everything NO SCROLL CURSOR FOR SELECT sequence_number, occurred_at,"
        " event_type, payload, batch_last FROM facts ORDER BY sequence_number");
    std::size_t rows = 0, bytes = 0;
    long long last = 0;
    auto start = Clock::now();
    for (;;) {
        PGresult* r = PQexec(raw.get(), "FETCH 10000 FROM everything");
        raw.check_keep(r, "FETCH");
        const int n = PQntuples(r);
        for (int i = 0; i < n; ++i) {
            last = std::strtoll(PQgetvalue(r, i, 0), nullptr, 10);
            bytes += static_cast<std::size_t>(PQgetlength(r, i, 2) + PQgetlength(r, i, 3));
        }
        PQclear(r);
        rows += static_cast<std::size_t>(n);
        if (n == 0) break;
    }
    const double rate = rows / seconds_since(start);
    raw.exec("COMMIT");
    if (rows == 0 || bytes == 0 || last != static_cast<long long>(rows))
        throw std::runtime_error("raw scan: unexpected rows");
    return rate;
}

}  // namespace factstr::bench
