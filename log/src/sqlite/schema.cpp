// The SQLite file's schema: created in an empty file, validated on open, and converted from
// versions 1 and 2 (see statements.hpp and CHANGELOG.md).
#include "schema.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "factstr/errors.hpp"
#include "postings.hpp"
#include "statements.hpp"

namespace factstr::sqlite {
namespace {

// A conversion's rows (group, sequence_number), ordered by both, become posting rows of
// each group's key (`key_of(group)`). The statement is reset when done.
template <class KeyOf>
void add_grouped_postings(Connection& db, Statement& rows, KeyOf&& key_of) {
    std::int64_t group = 0;
    std::vector<SequenceNumber> sequences;
    auto flush = [&] {
        if (!sequences.empty()) add_postings(db, key_of(group), sequences);
        sequences.clear();
    };
    while (rows.step()) {
        if (rows.integer(0) != group) flush();
        group = rows.integer(0);
        sequences.push_back(static_cast<SequenceNumber>(rows.integer(1)));
    }
    flush();
    rows.reset();
}

// payload_keys' rows, read in key order, become posting rows; the rest of the file is
// unchanged.
void convert_version_1(Connection& db) {
    db.exec(kPostingsTable);
    Resetting keys(db.statement(kVersion1Keys));
    add_grouped_postings(db, *keys, [](std::int64_t key) { return key; });
    db.exec(kFinishVersion2);
}

// The type index's entries up to keys_indexed_through, read in type order, become posting
// rows of the types' keys; the index is dropped.
void convert_version_2(Connection& db, TypeCache& types) {
    SequenceNumber indexed = 0;
    {
        Resetting at(db.statement(kVersion2IndexedThrough));
        if (at->step()) indexed = static_cast<SequenceNumber>(at->integer(0));
    }
    Resetting rows(db.statement(kVersion2Types));
    rows->bind(1, static_cast<std::int64_t>(indexed));
    add_grouped_postings(db, *rows, [&](std::int64_t type) { return types.key(db, type); });
    db.exec(kFinishVersion3);
}

// The file's factstr schema version (1, 2 or ours); 0 when the file is empty. Throws for
// anything else, without changing the file.
int validate_existing(Connection& db, const std::string& path) {
    std::vector<std::string> tables;
    {
        Resetting list(
            db.statement("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name"));
        while (list->step())
            tables.emplace_back(list->text(0));
    }
    if (tables.empty()) return 0;
    if (std::find(tables.begin(), tables.end(), "factstr_meta") == tables.end()) {
        std::string names;
        for (std::size_t i = 0; i < tables.size() && i < 5; ++i)
            names += (i ? ", " : "") + tables[i];
        throw StoreError(ErrorCode::schema_mismatch,
                         "sqlite:" + path +
                             " is a SQLite database but not a factstr store (it has tables " +
                             names + "); it was left untouched");
    }
    std::string format, version;
    {
        Resetting meta(db.statement("SELECT key, value FROM factstr_meta"));
        while (meta->step()) {
            if (meta->text(0) == "format") format = meta->text(1);
            if (meta->text(0) == "schema_version") version = meta->text(1);
        }
    }
    if (format != "factstr")
        throw StoreError(ErrorCode::schema_mismatch, "sqlite:" + path +
                                                         " is not a factstr store (format '" +
                                                         format + "'); it was left untouched");
    if (version == "1") return 1;
    if (version == "2") return 2;
    if (version != std::to_string(kSchemaVersion))
        throw StoreError(ErrorCode::schema_mismatch,
                         "sqlite:" + path + " has factstr schema version " + version +
                             ", this build reads versions 1 to " + std::to_string(kSchemaVersion) +
                             "; it was left untouched");
    return kSchemaVersion;
}

}  // namespace

// A non-empty file that is not a SQLite database is never opened for writing.
void refuse_foreign_file(const std::string& path) {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0 || info.st_size == 0) return;
    char header[16] = {};
    std::ifstream file(path, std::ios::binary);
    file.read(header, sizeof header);
    if (file.gcount() != sizeof header || std::memcmp(header, "SQLite format 3", 16) != 0)
        throw StoreError(ErrorCode::schema_mismatch,
                         "sqlite:" + path +
                             " is not a SQLite database (and so not a factstr store); "
                             "it was left untouched");
}

// Creates the schema in an empty file and converts a version 1 or 2 file, each in one write
// transaction (another process may be doing the same: the second finds it done).
void ensure_schema(Connection& db, TypeCache& types) {
    const std::string& path = db.path();
    if (validate_existing(db, path) == kSchemaVersion) return;
    db.exec("BEGIN IMMEDIATE");
    try {
        const int version = validate_existing(db, path);
        if (version == 0) db.exec(kSchema);
        if (version == 1) convert_version_1(db);
        if (version == 1 || version == 2) convert_version_2(db, types);
        db.exec("COMMIT");
    } catch (...) {
        sqlite3_exec(db.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
}

}  // namespace factstr::sqlite
