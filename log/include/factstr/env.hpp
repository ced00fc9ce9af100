// The Env (after LevelDB's): what the engines ask of the world outside the process — the
// wall clock, the monotonic clock, the threads the library starts and, for SQLite, file
// I/O — behind one interface, so that
// time-dependent tests and fault injection need no special builds (DESIGN.md §9).
//
// Env::system() is what every store uses unless told otherwise: the system clocks, no
// faults, and no VFS shim (SQLite's file I/O costs exactly what it costs without an Env).
// FaultInjectingEnv, below, is the ready-made one for tests.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "factstr/types.hpp"

namespace factstr {

// A file operation, as SQLite's VFS performs it, reported to Env::before_file_op.
enum class FileOp { open, read, write, sync, truncate };

// What Env::before_file_op tells the operation to do. Each fault is reported to SQLite as
// SQLite's own unix VFS reports the matching failure of the system call (io_error is EIO,
// no_space is ENOSPC):
//
//   op        io_error                 short_write               no_space
//   open      SQLITE_CANTOPEN          SQLITE_CANTOPEN           SQLITE_CANTOPEN
//   read      SQLITE_IOERR_READ        SQLITE_IOERR_READ         SQLITE_IOERR_READ
//   write     SQLITE_IOERR_WRITE       first half written, then  SQLITE_FULL, nothing
//             nothing written          SQLITE_FULL (torn write)  written
//   sync      SQLITE_IOERR_FSYNC       SQLITE_IOERR_FSYNC        SQLITE_IOERR_FSYNC
//   truncate  SQLITE_IOERR_TRUNCATE    SQLITE_IOERR_TRUNCATE     SQLITE_IOERR_TRUNCATE
//
// A failed operation has not been carried out (except the torn half of a short write). The
// store turns each into StoreError(storage_failure) naming the file and SQLite's message.
enum class FileFault {
    none,         // carry the operation out
    io_error,     // fail it as EIO
    short_write,  // writes: the first half of the bytes reach the file, then the disk is full
    no_space,     // fail it as ENOSPC (SQLITE_FULL for writes)
};

// One file operation. `path` is the file's name as SQLite opened it ("/d/x.db",
// "/d/x.db-wal", "/d/x.db-journal"); empty for SQLite's nameless temporary files.
struct FileOperation {
    FileOp op = FileOp::read;
    std::string_view path;
    std::uint64_t offset = 0;  // read, write: where in the file; truncate: the new size
    std::size_t bytes = 0;     // read, write: how many bytes; otherwise 0
};

class Env {
  public:
    Env() = default;
    // Unregisters this Env's SQLite VFS, if sqlite_vfs_name() registered one. Precondition:
    // no SQLite connection opened with that VFS is still open (a store keeps the Env alive
    // through SqliteOptions::env for as long as its connections).
    virtual ~Env();
    Env(const Env&) = delete;
    Env& operator=(const Env&) = delete;

    // The process-wide default: system_clock, steady_clock, no faults. Never destroyed;
    // thread-safe.
    static Env& system() noexcept;

    // The wall clock, UTC, microseconds: what facts record as occurred_at. May jump (the
    // system clock is set); never the ordering key. Default: std::chrono::system_clock, one
    // virtual call and one clock read (tens of ns). Called from any thread at once.
    virtual Timestamp now();

    // The clock for timeouts, leases and poll intervals: never goes backwards. Default:
    // std::chrono::steady_clock. Called from any thread at once.
    virtual std::chrono::steady_clock::time_point monotonic_now();

    // Starts a thread the library needs, named `name` for top, ps -L and gdb (the first 15
    // bytes). Every thread a store or a projection engine starts is started here, through the
    // store's Env: the stream pool's workers ("factstr-stream"), the projection engine's lease
    // loop ("factstr-lease") and PostgreSQL's statistics refresh ("factstr-analyze"). The
    // caller owns the returned thread and joins it before its store closes; no thread outlives
    // the store that started it. Default: a std::thread running `body`, named; one system
    // call. Called from any thread at once. An override must start `body` exactly once.
    virtual std::thread start_thread(std::string_view name, std::function<void()> body);

    // Called by the SQLite VFS of sqlite_vfs_name() before each open, read, write, sync and
    // truncate of a database, WAL or journal file, on the thread doing the I/O, from many
    // threads at once. Must not throw (an exception is reported as io_error) and must not
    // call into SQLite. Default: FileFault::none. Never called for Env::system().
    virtual FileFault before_file_op(const FileOperation& operation);

  private:
    friend std::string sqlite_vfs_name(Env& env);
    struct SqliteVfs;  // log/src/env/sqlite_vfs.cpp
    static void unregister_sqlite_vfs(SqliteVfs* vfs) noexcept;

    std::mutex sqlite_vfs_mutex_;
    SqliteVfs* sqlite_vfs_ = nullptr;
};

// The name of the SQLite VFS through which a connection's file I/O and SQLite's own clock
// (CURRENT_TIMESTAMP, datetime('now')) go to `env`: pass it to sqlite3_open_v2 (or to
// factstr::sqlite::Connection). The first call for an Env registers a shim over SQLite's
// default VFS (sqlite3_vfs_find(nullptr)) named "factstr-env-N"; later calls return the same
// name. The shim forwards every other method (locks, shared memory, file controls, paths,
// randomness, sleep) to the default VFS unchanged, and reports no memory-mapped I/O, so that
// every read passes through Env::before_file_op. It stays registered until the Env is
// destroyed.
//
// For Env::system() returns "" (no shim: SQLite's default VFS, at no cost). Thread-safe.
// Throws StoreError(storage_failure) when SQLite cannot register the VFS.
std::string sqlite_vfs_name(Env& env);

// An Env for tests: counts file operations by kind, fails the N-th of a kind, and carries a
// clock that the test can move. Every member is thread-safe.
//
//   FaultInjectingEnv env;
//   env.fail({.op = FileOp::write, .nth = 3});           // the third write from now: EIO
//   env.fail({.op = FileOp::sync, .and_later = true});   // the next sync and every later one
//   env.fail({.op = FileOp::write, .fault = FileFault::no_space, .path_suffix = "-wal"});
class FaultInjectingEnv : public Env {
  public:
    // Which clocks now() and monotonic_now() read. system: the system clocks plus whatever
    // advance() and set_wall_clock() added. manual: clocks that stand still until advanced;
    // the wall clock starts at `manual_start`, the monotonic clock at its epoch.
    enum class Clocks { system, manual };

    struct Fault {
        FileOp op = FileOp::write;
        // Which matching operation fails, counted from when the fault is armed: 1 is the next.
        std::uint64_t nth = 1;
        FileFault fault = FileFault::io_error;
        // Every matching operation after the nth fails too, until clear_faults().
        bool and_later = false;
        // Only operations on files whose path ends with this ("-wal", ".db"); empty: any file.
        std::string path_suffix = {};
    };

    explicit FaultInjectingEnv(Clocks clocks = Clocks::system,
                               Timestamp manual_start = Timestamp{
                                   std::chrono::sys_days{std::chrono::year{2000} / 1 / 1}});

    // Arms a fault. Several may be armed; when more than one fires for an operation, the one
    // armed first decides. Throws InvalidInput(invalid_argument) when nth is 0.
    void fail(Fault fault);
    // Disarms every fault; the counts stay.
    void clear_faults();
    // Operations of kind `op` seen since construction, failed ones included.
    std::uint64_t count(FileOp op) const;
    // Operations failed so far (so a test can show that its fault was reached).
    std::uint64_t faults_injected() const;

    // Moves both clocks forward by `by`. Throws InvalidInput(invalid_argument) when `by` is
    // negative: the monotonic clock never goes back.
    void advance(std::chrono::microseconds by);
    // Sets the wall clock's reading, forward or back (as an administrator sets a system
    // clock); the monotonic clock does not move.
    void set_wall_clock(Timestamp reading);

    Timestamp now() override;
    std::chrono::steady_clock::time_point monotonic_now() override;
    FileFault before_file_op(const FileOperation& operation) override;

  private:
    struct ArmedFault {
        Fault fault;
        std::uint64_t seen = 0;  // matching operations since armed
    };

    // The clocks' readings before the offsets.
    Timestamp wall_base() const;
    std::chrono::steady_clock::time_point monotonic_base() const;

    static constexpr std::size_t kFileOps = 5;

    const Clocks clocks_;
    const Timestamp manual_start_;
    mutable std::mutex mutex_;
    std::chrono::microseconds wall_offset_{0};
    std::chrono::microseconds monotonic_offset_{0};
    std::vector<ArmedFault> faults_;
    std::uint64_t counts_[kFileOps] = {};  // by FileOp
    std::uint64_t faults_injected_ = 0;
};

}  // namespace factstr
