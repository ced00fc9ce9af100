// factstr projections list, status and show: what a store holds, read without a worker.
#include <algorithm>
#include <cmath>

#include <fmt/color.h>
#include <fmt/format.h>

#include "cmd_projections.hpp"

namespace fcli::projections_subcommand {
namespace {

namespace fp = factstr::projections;
using fp::ProjectionStatus;

// The tables and columns a declaration creates (as the engine names them).
struct TableColumns {
    std::string name;
    std::vector<std::string> columns;
};
std::vector<TableColumns> tables_of(const fp::Projection& projection) {
    auto key_columns = [](const std::vector<fp::KeyField>& key) {
        std::vector<std::string> columns;
        for (const auto& field : key) {
            std::string column = field.column;
            if (column.empty()) {
                column = field.field;
                std::replace(column.begin(), column.end(), '.', '_');
            }
            columns.push_back(column);
        }
        return columns;
    };
    TableColumns main{projection.name, key_columns(projection.key)};
    std::vector<TableColumns> transforms;
    bool aggregates = false;
    for (const auto& c : projection.computations) {
        if (const auto* transform = std::get_if<fp::Transform>(&c.kind)) {
            TableColumns table{
                projection.name + "_" + c.column,
                key_columns(transform->key.empty() ? projection.key : transform->key)};
            for (const auto& column : transform->columns)
                table.columns.push_back(column.column.empty() ? column.field : column.column);
            transforms.push_back(std::move(table));
            continue;
        }
        aggregates = true;
        main.columns.push_back(c.column);
        if (std::holds_alternative<fp::Average>(c.kind)) {
            main.columns.push_back(c.column + "_sum");
            main.columns.push_back(c.column + "_count");
        } else if (std::holds_alternative<fp::Every>(c.kind) ||
                   std::holds_alternative<fp::Any>(c.kind)) {
            main.columns.push_back(c.column + "_matched");
            main.columns.push_back(c.column + "_satisfied");
        } else if (std::holds_alternative<fp::StateMachine>(c.kind)) {
            main.columns.push_back(c.column + "_ignored");
        }
    }
    std::vector<TableColumns> result;
    if (aggregates) result.push_back(std::move(main));
    for (auto& table : transforms)
        result.push_back(std::move(table));
    return result;
}

std::string json_quote(std::string_view text) {
    std::string out;
    factstr::json::append_quoted(out, text);
    return out;
}

}  // namespace

int run_list(const ProjectionsOptions& options, const Globals& globals) {
    factstr::Store store = open_store(globals);
    auto declared = fp::declarations(store);
    std::sort(declared.begin(), declared.end());
    std::string out;
    if (options.json) out = "[";
    std::size_t name_w = 4;
    for (const auto& [name, declaration] : declared)
        name_w = std::max(name_w, name.size());
    const bool table = !options.json && stdout_is_tty();
    if (table && !declared.empty()) {
        std::string header =
            fmt::format("{:<{}}  {:<16}  {}", "NAME", name_w, "FINGERPRINT", "TABLES");
        out += use_color(globals) ? fmt::format("{}\n", fmt::styled(header, fmt::emphasis::bold))
                                  : header + "\n";
    }
    for (const auto& [name, declaration] : declared) {
        const fp::Projection projection = fp::parse_projection(declaration);
        const std::string fingerprint = fp::fingerprint(projection);
        const auto tables = tables_of(projection);
        if (options.json) {
            if (out.size() > 1) out += ',';
            out += "{\"name\":" + json_quote(name) + ",\"fingerprint\":" + json_quote(fingerprint) +
                   ",\"tables\":[";
            for (std::size_t t = 0; t < tables.size(); ++t) {
                if (t) out += ',';
                out += "{\"name\":" + json_quote(tables[t].name) + ",\"columns\":[";
                for (std::size_t c = 0; c < tables[t].columns.size(); ++c) {
                    if (c) out += ',';
                    out += json_quote(tables[t].columns[c]);
                }
                out += "]}";
            }
            out += "],\"declaration\":" + declaration + "}";
            continue;
        }
        std::string tables_text;
        for (const auto& t : tables) {
            if (!tables_text.empty()) tables_text += ' ';
            tables_text += fmt::format("{}({})", t.name, fmt::join(t.columns, ","));
        }
        if (table)
            out += fmt::format("{:<{}}  {:<16}  {}\n", name, name_w, fingerprint.substr(0, 16),
                               tables_text);
        else
            out += fmt::format("{}\t{}\t{}\n", name, fingerprint, tables_text);
    }
    if (options.json) out += "]\n";
    if (table && declared.empty()) out = "no projections recorded in this store\n";
    write_stdout(out);
    return exit_ok;
}

namespace {

std::string status_json(const ProjectionStatus& s) {
    std::string out = "{\"name\":" + json_quote(s.name) +
                      ",\"state\":" + json_quote(fp::to_string(s.state)) +
                      fmt::format(",\"checkpoint\":{},\"head\":{},\"lag_facts\":{},\"lag_ms\":{}",
                                  s.checkpoint, s.head, s.lag_facts, s.lag_time.count());
    out += ",\"owner\":" + (s.owner ? json_quote(*s.owner) : std::string("null"));
    out += ",\"error\":" + (s.error ? json_quote(*s.error) : std::string("null"));
    out += ",\"error_position\":" +
           (s.error_position ? std::to_string(*s.error_position) : std::string("null"));
    out += ",\"rebuild_checkpoint\":" +
           (s.rebuild_checkpoint ? std::to_string(*s.rebuild_checkpoint) : std::string("null"));
    out += ",\"fingerprint\":" + json_quote(s.fingerprint) + "}";
    return out;
}

}  // namespace

int run_status(const ProjectionsOptions& options, const Globals& globals) {
    factstr::Store store = open_store(globals);
    auto statuses = fp::status(store);
    std::sort(statuses.begin(), statuses.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    bool failed = false;
    for (const auto& s : statuses)
        failed = failed || s.state == ProjectionStatus::State::failed;
    std::string out;
    if (options.json) {
        out = "[";
        for (const auto& s : statuses) {
            if (out.size() > 1) out += ',';
            out += status_json(s);
        }
        out += "]\n";
    } else if (!stdout_is_tty()) {
        for (const auto& s : statuses)
            out += fmt::format(
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n", s.name, fp::to_string(s.state),
                s.checkpoint, s.head, s.lag_facts, s.lag_time.count(), opt_text(s.owner),
                s.error_position ? std::to_string(*s.error_position) : "-", opt_text(s.error));
    } else if (statuses.empty()) {
        out = fmt::format("no projections recorded in this store (head {})\n", store.head());
    } else {
        std::size_t name_w = 4, owner_w = 5;
        for (const auto& s : statuses) {
            name_w = std::max(name_w, s.name.size());
            owner_w = std::max(owner_w, opt_text(s.owner).size());
        }
        const bool color = use_color(globals);
        std::string header =
            fmt::format("{:<{}}  {:<10}  {:>10}  {:>10}  {:>8}  {:<{}}  {}", "NAME", name_w,
                        "STATE", "CHECKPOINT", "LAG", "LAG MS", "OWNER", owner_w, "ERROR");
        out +=
            color ? fmt::format("{}\n", fmt::styled(header, fmt::emphasis::bold)) : header + "\n";
        for (const auto& s : statuses) {
            std::string state = fmt::format("{:<10}", fp::to_string(s.state));
            if (color && s.state == ProjectionStatus::State::failed)
                state = fmt::format("{}", fmt::styled(state, fmt::fg(fmt::terminal_color::red)));
            std::string error =
                s.error ? fmt::format("at #{}: {}",
                                      s.error_position ? std::to_string(*s.error_position) : "?",
                                      *s.error)
                        : "";
            out += fmt::format("{:<{}}  {}  {:>10}  {:>10}  {:>8}  {:<{}}  {}\n", s.name, name_w,
                               state, s.checkpoint, s.lag_facts, s.lag_time.count(),
                               opt_text(s.owner), owner_w, error);
        }
        out += fmt::format("head {}\n", store.head());
    }
    write_stdout(out);
    return failed ? exit_projection_failed : exit_ok;
}

namespace {

std::string cell_text(const fp::Cell& cell) {
    return std::visit(
        [](const auto& value) -> std::string {
            using T = std::decay_t<decltype(value)>;
            if constexpr (std::is_same_v<T, std::monostate>)
                return "NULL";
            else if constexpr (std::is_same_v<T, bool>)
                return value ? "true" : "false";
            else if constexpr (std::is_same_v<T, std::string>)
                return value;
            else
                return fmt::format("{}", value);
        },
        cell);
}

std::string cell_json(const fp::Cell& cell) {
    if (std::holds_alternative<std::monostate>(cell)) return "null";
    if (const auto* text = std::get_if<std::string>(&cell)) return json_quote(*text);
    if (const auto* real = std::get_if<double>(&cell))
        if (!std::isfinite(*real)) return "null";
    return cell_text(cell);
}

}  // namespace

int run_show(const ProjectionsOptions& options, const Globals& globals) {
    factstr::Store store = open_store(globals);
    fp::Engine engine(store);
    const fp::Table table = engine.read(options.table);
    std::string out;
    if (options.json) {
        out = "[";
        for (const auto& row : table.rows) {
            if (out.size() > 1) out += ',';
            out += '{';
            for (std::size_t c = 0; c < table.columns.size(); ++c)
                out += (c ? "," : "") + json_quote(table.columns[c]) + ":" + cell_json(row[c]);
            out += '}';
        }
        out += "]\n";
    } else if (!stdout_is_tty()) {
        out += fmt::format("{}\n", fmt::join(table.columns, "\t"));
        for (const auto& row : table.rows) {
            std::vector<std::string> cells;
            for (const auto& cell : row)
                cells.push_back(cell_text(cell));
            out += fmt::format("{}\n", fmt::join(cells, "\t"));
        }
    } else {
        std::vector<std::size_t> widths;
        for (const auto& column : table.columns)
            widths.push_back(column.size());
        std::vector<std::vector<std::string>> texts;
        for (const auto& row : table.rows) {
            texts.emplace_back();
            for (std::size_t c = 0; c < row.size(); ++c) {
                texts.back().push_back(cell_text(row[c]));
                widths[c] = std::max(widths[c], texts.back().back().size());
            }
        }
        auto line = [&](const std::vector<std::string>& cells) {
            std::string text;
            for (std::size_t c = 0; c < cells.size(); ++c)
                text += fmt::format("{}{:<{}}", c ? "  " : "", cells[c], widths[c]);
            while (!text.empty() && text.back() == ' ')
                text.pop_back();
            return text;
        };
        const std::string header = line(table.columns);
        out += use_color(globals) ? fmt::format("{}\n", fmt::styled(header, fmt::emphasis::bold))
                                  : header + "\n";
        for (const auto& row : texts)
            out += line(row) + "\n";
        out += fmt::format("({} row{})\n", table.rows.size(), table.rows.size() == 1 ? "" : "s");
    }
    write_stdout(out);
    return exit_ok;
}

}  // namespace fcli::projections_subcommand
