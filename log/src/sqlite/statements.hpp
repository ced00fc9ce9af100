// The SQL of the SQLite engine, in one place: the schema (version 3), the conversions from
// versions 1 and 2, and every statement the engine prepares.
#pragma once

namespace factstr::sqlite {

inline constexpr int kSchemaVersion = 3;

// The posting list table: in the schema, and added by the version 1 conversion.
#define POSTINGS_TABLE                                                                          \
    "CREATE TABLE payload_postings (key_hash INTEGER NOT NULL, last_sequence INTEGER NOT NULL," \
    " entries INTEGER NOT NULL, sequences BLOB NOT NULL,"                                       \
    " PRIMARY KEY (key_hash, last_sequence)) WITHOUT ROWID;"

inline constexpr const char* kSchema = R"sql(
CREATE TABLE factstr_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE event_types (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE facts (
  sequence_number INTEGER PRIMARY KEY,
  occurred_at INTEGER NOT NULL,
  type_id INTEGER NOT NULL,
  payload TEXT NOT NULL,
  batch_last INTEGER NOT NULL
);
)sql" POSTINGS_TABLE R"sql(
CREATE TABLE key_index_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  keys_indexed_through INTEGER NOT NULL
);
INSERT INTO key_index_state (id, keys_indexed_through) VALUES (1, 0);
CREATE TABLE durable_streams (
  name TEXT PRIMARY KEY,
  position INTEGER NOT NULL,
  query_json TEXT NOT NULL,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO factstr_meta (key, value) VALUES ('format', 'factstr'), ('schema_version', '3');
)sql";

// Version 1 -> 2: payload_keys (one row per key per fact) becomes payload_postings.
inline constexpr const char* kPostingsTable = POSTINGS_TABLE;
#undef POSTINGS_TABLE
inline constexpr const char* kVersion1Keys =
    "SELECT key_hash, sequence_number FROM payload_keys ORDER BY key_hash, sequence_number";
inline constexpr const char* kFinishVersion2 =
    "DROP TABLE payload_keys; UPDATE factstr_meta SET value = '2' WHERE key = 'schema_version'";
// Version 2 -> 3: the facts_by_type index becomes posting lists of the types' keys (for the
// facts the key index covers; the others are in every process's tail). index_state is
// renamed: a process of an older build that has the file open fails at its next read or
// write, instead of folding facts into the key index without their types.
inline constexpr const char* kVersion2Types =
    "SELECT type_id, sequence_number FROM facts WHERE sequence_number <= ?1"
    " ORDER BY type_id, sequence_number";
inline constexpr const char* kVersion2IndexedThrough =
    "SELECT keys_indexed_through FROM index_state";
inline constexpr const char* kFinishVersion3 =
    "DROP INDEX IF EXISTS facts_by_type; ALTER TABLE index_state RENAME TO key_index_state;"
    " UPDATE factstr_meta SET value = '3' WHERE key = 'schema_version'";

#define FACT_COLUMNS "sequence_number, occurred_at, type_id, payload, batch_last"
inline constexpr const char* kBegin = "BEGIN";
inline constexpr const char* kBeginImmediate = "BEGIN IMMEDIATE";
inline constexpr const char* kCommit = "COMMIT";
inline constexpr const char* kRollback = "ROLLBACK";
inline constexpr const char* kHead = "SELECT max(sequence_number) FROM facts";
inline constexpr const char* kScanAsc =
    "SELECT " FACT_COLUMNS
    " FROM facts WHERE sequence_number > ?1 AND sequence_number <= ?2 ORDER BY sequence_number";
inline constexpr const char* kScanDesc =
    "SELECT " FACT_COLUMNS
    " FROM facts WHERE sequence_number > ?1 AND sequence_number <= ?2"
    " ORDER BY sequence_number DESC";
// A key's posting rows that may hold sequence numbers in (?2, ?3]: ascending, a reader stops
// at the first number above ?3; descending, they start at the row that covers ?3.
inline constexpr const char* kPostingsAsc =
    "SELECT sequences FROM payload_postings WHERE key_hash = ?1 AND last_sequence > ?2"
    " ORDER BY last_sequence";
inline constexpr const char* kPostingsDesc =
    "SELECT sequences FROM payload_postings WHERE key_hash = ?1 AND last_sequence > ?2"
    " AND last_sequence <= coalesce((SELECT min(last_sequence) FROM payload_postings"
    " WHERE key_hash = ?1 AND last_sequence >= ?3), ?3)"
    " ORDER BY last_sequence DESC";
// How common a key is, roughly (its newest rows' entries; enough to pick the rarest key).
inline constexpr const char* kPostingProbe =
    "SELECT coalesce(sum(entries), 0) FROM (SELECT entries FROM payload_postings"
    " WHERE key_hash = ?1 ORDER BY last_sequence DESC LIMIT 8)";
// How many of a key's indexed facts lie in (?2, ?3], roughly (the rows ending there).
inline constexpr const char* kPostingCount =
    "SELECT coalesce(sum(entries), 0) FROM payload_postings"
    " WHERE key_hash = ?1 AND last_sequence > ?2 AND last_sequence <= ?3";
inline constexpr const char* kNewestPosting =
    "SELECT last_sequence, entries, sequences FROM payload_postings WHERE key_hash = ?1"
    " ORDER BY last_sequence DESC LIMIT 1";
inline constexpr const char* kExtendPosting =
    "UPDATE payload_postings SET last_sequence = ?3, entries = ?4, sequences = ?5"
    " WHERE key_hash = ?1 AND last_sequence = ?2";
inline constexpr const char* kInsertPosting =
    "INSERT INTO payload_postings (key_hash, last_sequence, entries, sequences)"
    " VALUES (?1, ?2, ?3, ?4)";
inline constexpr const char* kBatchLastAt =
    "SELECT batch_last FROM facts WHERE sequence_number = ?1";
inline constexpr const char* kInsertFact =
    "INSERT INTO facts (" FACT_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5)";
inline constexpr const char* kTypeByName = "SELECT id FROM event_types WHERE name = ?1";
inline constexpr const char* kTypeById = "SELECT name FROM event_types WHERE id = ?1";
inline constexpr const char* kInsertType = "INSERT INTO event_types (name) VALUES (?1)";
inline constexpr const char* kLoadCursor = "SELECT position FROM durable_streams WHERE name = ?1";
inline constexpr const char* kSaveCursor =
    "INSERT INTO durable_streams (name, position, query_json, updated_at) VALUES (?1, ?2, ?3, ?4)"
    " ON CONFLICT (name) DO UPDATE SET position = max(position, excluded.position),"
    " query_json = excluded.query_json, updated_at = excluded.updated_at";
inline constexpr const char* kCursors =
    "SELECT name, position, query_json FROM durable_streams ORDER BY name";
inline constexpr const char* kDataVersion = "PRAGMA data_version";
inline constexpr const char* kIndexedThrough = "SELECT keys_indexed_through FROM key_index_state";
inline constexpr const char* kSetIndexedThrough =
    "UPDATE key_index_state SET keys_indexed_through = ?1";
inline constexpr const char* kFactAt =
    "SELECT " FACT_COLUMNS " FROM facts WHERE sequence_number = ?1";
inline constexpr const char* kPayloadsAsc =
    "SELECT sequence_number, type_id, payload FROM facts"
    " WHERE sequence_number > ?1 AND sequence_number <= ?2 ORDER BY sequence_number";

#undef FACT_COLUMNS

}  // namespace factstr::sqlite
