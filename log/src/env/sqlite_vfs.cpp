// The SQLite VFS of an Env: a shim over SQLite's default VFS that asks Env::before_file_op
// before each open, read, write, sync and truncate, and reads SQLite's clock from Env::now().
// Everything else is forwarded to the default VFS and its files unchanged.
#include <sqlite3.h>

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>

#include "factstr/env.hpp"
#include "factstr/errors.hpp"

namespace factstr {

namespace {

// One registered shim: SQLite's vfs object, with pAppData pointing back here.
struct RegisteredVfs {
    sqlite3_vfs vfs{};
    sqlite3_vfs* real = nullptr;  // the default VFS underneath
    Env* env = nullptr;
    std::string name;
};

}  // namespace

struct Env::SqliteVfs : RegisteredVfs {};

namespace {

// SQLite allocates szOsFile bytes per open file: our header, then the default VFS's file.
struct EnvFile {
    sqlite3_file base;  // first, so that SQLite's sqlite3_file* is an EnvFile*
    Env* env;
    const char* path;  // SQLite keeps the name valid until xClose; null for temporary files
    sqlite3_file* real;
};
static_assert(sizeof(EnvFile) % 8 == 0, "the default VFS's file follows at 8-byte alignment");

RegisteredVfs& shim_of(sqlite3_vfs* vfs) {
    return *static_cast<RegisteredVfs*>(vfs->pAppData);
}
EnvFile& env_file(sqlite3_file* file) {
    return *reinterpret_cast<EnvFile*>(file);
}
sqlite3_file* real_file_after(sqlite3_file* file) {
    return reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + sizeof(EnvFile));
}

FileFault ask(Env& env, FileOp op, const char* path, std::uint64_t offset, std::size_t bytes) {
    try {
        return env.before_file_op(FileOperation{op, path ? path : "", offset, bytes});
    } catch (...) {
        return FileFault::io_error;  // an exception must not unwind through SQLite
    }
}

// --- sqlite3_io_methods: the faultable ones ---

int file_read(sqlite3_file* file, void* buffer, int amount, sqlite3_int64 offset) {
    auto& f = env_file(file);
    if (ask(*f.env, FileOp::read, f.path, static_cast<std::uint64_t>(offset),
            static_cast<std::size_t>(amount)) != FileFault::none) {
        return SQLITE_IOERR_READ;
    }
    return f.real->pMethods->xRead(f.real, buffer, amount, offset);
}

int file_write(sqlite3_file* file, const void* buffer, int amount, sqlite3_int64 offset) {
    auto& f = env_file(file);
    switch (ask(*f.env, FileOp::write, f.path, static_cast<std::uint64_t>(offset),
                static_cast<std::size_t>(amount))) {
        case FileFault::none:
            return f.real->pMethods->xWrite(f.real, buffer, amount, offset);
        case FileFault::io_error:
            return SQLITE_IOERR_WRITE;
        case FileFault::short_write: {
            // What os_unix.c reports when write(2) stops short: the disk is full.
            const int written = amount / 2;
            if (written > 0) {
                const int rc = f.real->pMethods->xWrite(f.real, buffer, written, offset);
                if (rc != SQLITE_OK) return rc;
            }
            return SQLITE_FULL;
        }
        case FileFault::no_space:
            return SQLITE_FULL;
    }
    return SQLITE_IOERR_WRITE;
}

int file_sync(sqlite3_file* file, int flags) {
    auto& f = env_file(file);
    if (ask(*f.env, FileOp::sync, f.path, 0, 0) != FileFault::none) return SQLITE_IOERR_FSYNC;
    return f.real->pMethods->xSync(f.real, flags);
}

int file_truncate(sqlite3_file* file, sqlite3_int64 size) {
    auto& f = env_file(file);
    if (ask(*f.env, FileOp::truncate, f.path, static_cast<std::uint64_t>(size), 0) !=
        FileFault::none) {
        return SQLITE_IOERR_TRUNCATE;
    }
    return f.real->pMethods->xTruncate(f.real, size);
}

// --- sqlite3_io_methods: forwarded ---

int file_close(sqlite3_file* file) {
    auto& f = env_file(file);
    return f.real->pMethods->xClose(f.real);
}
int file_size(sqlite3_file* file, sqlite3_int64* size) {
    auto& f = env_file(file);
    return f.real->pMethods->xFileSize(f.real, size);
}
int file_lock(sqlite3_file* file, int level) {
    auto& f = env_file(file);
    return f.real->pMethods->xLock(f.real, level);
}
int file_unlock(sqlite3_file* file, int level) {
    auto& f = env_file(file);
    return f.real->pMethods->xUnlock(f.real, level);
}
int file_check_reserved_lock(sqlite3_file* file, int* held) {
    auto& f = env_file(file);
    return f.real->pMethods->xCheckReservedLock(f.real, held);
}
int file_control(sqlite3_file* file, int op, void* argument) {
    auto& f = env_file(file);
    return f.real->pMethods->xFileControl(f.real, op, argument);
}
int file_sector_size(sqlite3_file* file) {
    auto& f = env_file(file);
    return f.real->pMethods->xSectorSize(f.real);
}
int file_device_characteristics(sqlite3_file* file) {
    auto& f = env_file(file);
    return f.real->pMethods->xDeviceCharacteristics(f.real);
}
int file_shm_map(sqlite3_file* file, int region, int size, int extend, void volatile** memory) {
    auto& f = env_file(file);
    return f.real->pMethods->xShmMap(f.real, region, size, extend, memory);
}
int file_shm_lock(sqlite3_file* file, int offset, int n, int flags) {
    auto& f = env_file(file);
    return f.real->pMethods->xShmLock(f.real, offset, n, flags);
}
void file_shm_barrier(sqlite3_file* file) {
    auto& f = env_file(file);
    f.real->pMethods->xShmBarrier(f.real);
}
int file_shm_unmap(sqlite3_file* file, int delete_flag) {
    auto& f = env_file(file);
    return f.real->pMethods->xShmUnmap(f.real, delete_flag);
}

// Version 1 for a default-VFS file without shared memory, version 2 otherwise. Never
// version 3: without xFetch SQLite does not memory-map the file, so every read comes
// through file_read.
constexpr sqlite3_io_methods io_methods(int version) {
    return sqlite3_io_methods{
        version,
        file_close,
        file_read,
        file_write,
        file_truncate,
        file_sync,
        file_size,
        file_lock,
        file_unlock,
        file_check_reserved_lock,
        file_control,
        file_sector_size,
        file_device_characteristics,
        version >= 2 ? file_shm_map : nullptr,
        version >= 2 ? file_shm_lock : nullptr,
        version >= 2 ? file_shm_barrier : nullptr,
        version >= 2 ? file_shm_unmap : nullptr,
        nullptr,
        nullptr,
    };
}
constexpr sqlite3_io_methods kIoMethodsV1 = io_methods(1);
constexpr sqlite3_io_methods kIoMethodsV2 = io_methods(2);

// --- sqlite3_vfs ---

int vfs_open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
    auto& shim = shim_of(vfs);
    auto& f = env_file(file);
    f.base.pMethods = nullptr;
    f.env = shim.env;
    f.path = name;
    f.real = real_file_after(file);
    if (ask(*f.env, FileOp::open, name, 0, 0) != FileFault::none) return SQLITE_CANTOPEN;
    const int rc = shim.real->xOpen(shim.real, name, f.real, flags, out_flags);
    // When the default VFS set pMethods, SQLite calls xClose even after a failed open.
    if (f.real->pMethods != nullptr) {
        f.base.pMethods = f.real->pMethods->iVersion >= 2 ? &kIoMethodsV2 : &kIoMethodsV1;
    }
    return rc;
}

int vfs_delete(sqlite3_vfs* vfs, const char* name, int sync_directory) {
    auto* real = shim_of(vfs).real;
    return real->xDelete(real, name, sync_directory);
}
int vfs_access(sqlite3_vfs* vfs, const char* name, int flags, int* result) {
    auto* real = shim_of(vfs).real;
    return real->xAccess(real, name, flags, result);
}
int vfs_full_pathname(sqlite3_vfs* vfs, const char* name, int size, char* out) {
    auto* real = shim_of(vfs).real;
    return real->xFullPathname(real, name, size, out);
}
void* vfs_dl_open(sqlite3_vfs* vfs, const char* name) {
    auto* real = shim_of(vfs).real;
    return real->xDlOpen(real, name);
}
void vfs_dl_error(sqlite3_vfs* vfs, int size, char* message) {
    auto* real = shim_of(vfs).real;
    real->xDlError(real, size, message);
}
void (*vfs_dl_sym(sqlite3_vfs* vfs, void* library, const char* symbol))(void) {
    auto* real = shim_of(vfs).real;
    return real->xDlSym(real, library, symbol);
}
void vfs_dl_close(sqlite3_vfs* vfs, void* library) {
    auto* real = shim_of(vfs).real;
    real->xDlClose(real, library);
}
int vfs_randomness(sqlite3_vfs* vfs, int size, char* out) {
    auto* real = shim_of(vfs).real;
    return real->xRandomness(real, size, out);
}
int vfs_sleep(sqlite3_vfs* vfs, int microseconds) {
    auto* real = shim_of(vfs).real;
    return real->xSleep(real, microseconds);
}
int vfs_get_last_error(sqlite3_vfs* vfs, int size, char* message) {
    auto* real = shim_of(vfs).real;
    return real->xGetLastError ? real->xGetLastError(real, size, message) : 0;
}

// SQLite's clock: milliseconds since the Julian epoch (-4713-11-24 12:00 UTC).
constexpr sqlite3_int64 kUnixEpochAsJulianMs = 210866760000000;

int vfs_current_time_int64(sqlite3_vfs* vfs, sqlite3_int64* julian_ms) {
    try {
        const auto now = shim_of(vfs).env->now();
        *julian_ms = kUnixEpochAsJulianMs +
                     std::chrono::floor<std::chrono::milliseconds>(now).time_since_epoch().count();
        return SQLITE_OK;
    } catch (...) {
        return SQLITE_ERROR;
    }
}
int vfs_current_time(sqlite3_vfs* vfs, double* julian_days) {
    sqlite3_int64 julian_ms = 0;
    const int rc = vfs_current_time_int64(vfs, &julian_ms);
    *julian_days = static_cast<double>(julian_ms) / 86400000.0;
    return rc;
}

std::atomic<std::uint64_t> next_vfs_number{1};

}  // namespace

void Env::unregister_sqlite_vfs(SqliteVfs* vfs) noexcept {
    if (vfs == nullptr) return;
    sqlite3_vfs_unregister(&vfs->vfs);
    delete vfs;
}

std::string sqlite_vfs_name(Env& env) {
    if (&env == &Env::system()) return {};
    std::lock_guard lock(env.sqlite_vfs_mutex_);
    if (env.sqlite_vfs_ != nullptr) return env.sqlite_vfs_->name;

    sqlite3_vfs* real = sqlite3_vfs_find(nullptr);
    if (real == nullptr) {
        throw StoreError(ErrorCode::storage_failure,
                         "sqlite: cannot register the Env's VFS: SQLite has no default VFS");
    }
    auto shim = std::make_unique<Env::SqliteVfs>();
    shim->real = real;
    shim->env = &env;
    shim->name = "factstr-env-" + std::to_string(next_vfs_number.fetch_add(1));
    sqlite3_vfs& vfs = shim->vfs;
    vfs.iVersion = 2;  // up to xCurrentTimeInt64; no system-call overrides
    vfs.szOsFile = static_cast<int>(sizeof(EnvFile)) + real->szOsFile;
    vfs.mxPathname = real->mxPathname;
    vfs.zName = shim->name.c_str();
    vfs.pAppData = static_cast<RegisteredVfs*>(shim.get());
    vfs.xOpen = vfs_open;
    vfs.xDelete = vfs_delete;
    vfs.xAccess = vfs_access;
    vfs.xFullPathname = vfs_full_pathname;
    vfs.xDlOpen = vfs_dl_open;
    vfs.xDlError = vfs_dl_error;
    vfs.xDlSym = vfs_dl_sym;
    vfs.xDlClose = vfs_dl_close;
    vfs.xRandomness = vfs_randomness;
    vfs.xSleep = vfs_sleep;
    vfs.xCurrentTime = vfs_current_time;
    vfs.xGetLastError = vfs_get_last_error;
    vfs.xCurrentTimeInt64 = vfs_current_time_int64;
    const int rc = sqlite3_vfs_register(&vfs, 0);
    if (rc != SQLITE_OK) {
        throw StoreError(ErrorCode::storage_failure, "sqlite: cannot register the Env's VFS " +
                                                         shim->name + ": " + sqlite3_errstr(rc));
    }
    env.sqlite_vfs_ = shim.release();
    return env.sqlite_vfs_->name;
}

}  // namespace factstr
