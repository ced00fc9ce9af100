#include "tables.hpp"

#include <array>

namespace factstr::projections::detail {

bool reserved_table_name(std::string_view name) {
    static constexpr std::array<std::string_view, 9> kStoreTables = {
        "facts",       "facts_by_type",   "event_types",     "payload_postings", "payload_keys",
        "index_state", "key_index_state", "durable_streams", "sqlite_sequence"};
    if (name.substr(0, 8) == "factstr_") return true;
    for (std::string_view table : kStoreTables)
        if (name == table) return true;
    return false;
}

void refuse_changed_declaration(const Plan& plan, const std::string& stored_fingerprint) {
    throw StoreError(ErrorCode::declaration_changed,
                     "projection '" + plan.name() +
                         "' holds derived data of another declaration (fingerprint " +
                         stored_fingerprint + ", this one " + plan.fingerprint() +
                         "); rebuild it to switch over");
}

void refuse_taken_table(const Plan& plan, const std::string& table, const std::string& where) {
    throw InvalidInput(ErrorCode::invalid_declaration,
                       "projection '" + plan.name() + "': a table named '" + table +
                           "' already exists" + (where.empty() ? "" : " in " + where) +
                           " and is not this projection's");
}

std::unique_ptr<DerivedTables> open_tables(Store& store) {
    const DatabaseLocation location = store.backend().location();
    switch (location.kind) {
        case DatabaseLocation::Kind::memory:
            return open_memory_tables(location);
        case DatabaseLocation::Kind::sqlite:
            return open_sqlite_tables(location);
        case DatabaseLocation::Kind::postgres:
            return open_postgres_tables(location);
    }
    throw StoreError(ErrorCode::storage_failure, "unknown store kind");
}

const char* Dialect::type_name(ColumnType type) const {
    switch (type) {
        case ColumnType::integer:
            return postgres ? "bigint" : "INTEGER";
        case ColumnType::real:
            return postgres ? "double precision" : "REAL";
        case ColumnType::text:
            return postgres ? "text" : "TEXT";
        case ColumnType::boolean:
            return postgres ? "boolean" : "INTEGER";
    }
    return "TEXT";
}

std::string Dialect::quote(std::string_view identifier) const {
    // Identifiers are validated ([a-z_][a-z0-9_]*); quoting keeps keywords usable as names.
    std::string quoted;
    quoted.reserve(identifier.size() + 2);
    quoted += '"';
    quoted += identifier;
    quoted += '"';
    return quoted;
}

Table empty_table(const TableSpec& spec, std::vector<ColumnType>& types) {
    Table table;
    types.clear();
    for (const KeyField& key : spec.key) {
        table.columns.push_back(key.column);
        types.push_back(key.type);
    }
    for (const PhysicalColumn& column : spec.columns) {
        table.columns.push_back(column.name);
        types.push_back(column.type);
    }
    return table;
}

std::string Dialect::select_all(const TableSpec& table) const {
    std::string sql = "SELECT ";
    std::string order;
    for (const KeyField& key : table.key)
        order += (order.empty() ? "" : ", ") + quote(key.column);
    sql += order;
    for (const PhysicalColumn& column : table.columns)
        sql += ", " + quote(column.name);
    return sql + " FROM " + quote(table.name) + " ORDER BY " + order;
}

std::string Dialect::create_table(const TableSpec& table, bool rebuild) const {
    std::string sql = "CREATE TABLE IF NOT EXISTS " + quote(table.physical_name(rebuild)) + " (";
    std::string primary;
    for (const KeyField& key : table.key) {
        sql += quote(key.column) + " " + type_name(key.type) + " NOT NULL, ";
        primary += (primary.empty() ? "" : ", ") + quote(key.column);
    }
    for (const PhysicalColumn& column : table.columns) {
        sql += quote(column.name) + " " + type_name(column.type);
        // Counters and sums start at 0 and are never NULL; averages are NULL until a fact
        // matched; transform columns are NULL when the field was absent.
        if (!table.transform && column.op != Op::average) sql += " NOT NULL";
        sql += ", ";
    }
    sql += "PRIMARY KEY (" + primary + "))";
    return sql;
}

namespace {
// Appends every part to `out` (string concatenation with operator+ on temporaries trips a
// GCC 12 -Wrestrict false positive in optimized builds).
template <class... Parts>
void append_all(std::string& out, const Parts&... parts) {
    (out.append(std::string_view(parts)), ...);
}
}  // namespace

std::string Dialect::update_assignments(const TableSpec& table) const {
    std::string sql;
    auto cur = [&](int index) { return "cur." + quote(table.columns[index].name); };
    auto ex = [&](int index) { return "excluded." + quote(table.columns[index].name); };
    for (std::size_t c = 0; c < table.columns.size(); ++c) {
        const PhysicalColumn& column = table.columns[c];
        const int i = static_cast<int>(c);
        if (!sql.empty()) sql += ", ";
        append_all(sql, quote(column.name), " = ");
        const char* empty =
            column.when_empty ? (postgres ? "true" : "1") : (postgres ? "false" : "0");
        switch (column.op) {
            case Op::add:
                append_all(sql, cur(i), " + ", ex(i));
                break;
            case Op::set:
                append_all(sql, ex(i));
                break;
            case Op::average:
                append_all(sql, "(", cur(column.a), " + ", ex(column.a), ") / NULLIF(",
                           cur(column.b), " + ", ex(column.b), ", 0)");
                break;
            case Op::every:
                append_all(sql, "CASE WHEN ", cur(column.b), " + ", ex(column.b), " = 0 THEN ",
                           empty, " ELSE ", cur(column.a), " + ", ex(column.a), " = ",
                           cur(column.b), " + ", ex(column.b), " END");
                break;
            case Op::any:
                append_all(sql, "CASE WHEN ", cur(column.b), " + ", ex(column.b), " = 0 THEN ",
                           empty, " ELSE ", cur(column.a), " + ", ex(column.a), " > 0 END");
                break;
        }
    }
    return sql;
}

}  // namespace factstr::projections::detail
