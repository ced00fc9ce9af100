# Shared by scripts/run, scripts/test and scripts/bench. Sourced, not run.

FACTSTR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FACTSTR_BUILD_PACKAGES=(build-essential cmake ninja-build pkg-config libsqlite3-dev libpq-dev
  libsimdjson-dev libboost-dev catch2 libcli11-dev libfmt-dev libxxhash-dev)
FACTSTR_POSTGRES_PACKAGES=(postgresql)
# The Node binding's tests (bindings/node) need node and npm. This project's machines have
# them from their nodejs package (NodeSource's, which bundles npm); a machine without them
# gets Debian's.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  FACTSTR_BUILD_PACKAGES+=(nodejs npm)
fi

log() { printf '==> %s\n' "$*" >&2; }

# Installs the Debian packages that are not installed yet.
ensure_packages() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Configures and builds into $1 with extra CMake arguments; builds only the given targets
# when FACTSTR_TARGETS is set.
build_tree() {
  local dir="$1"; shift
  cmake -S "$FACTSTR_ROOT" -B "$dir" -G Ninja "$@" >/dev/null
  if [ -n "${FACTSTR_TARGETS:-}" ]; then
    # shellcheck disable=SC2086
    cmake --build "$dir" -j "$(nproc)" --target $FACTSTR_TARGETS
  else
    cmake --build "$dir" -j "$(nproc)"
  fi
}

# Starts a throwaway PostgreSQL server on loopback (as the postgres user when run as root)
# and exports FACTSTR_TEST_POSTGRES_URL. Stops it when the calling shell exits.
start_postgres() {
  local bin
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [ -x "$bin/initdb" ] || { log "PostgreSQL server binaries not found"; return 1; }
  FACTSTR_PGDATA="$(mktemp -d /tmp/factstr-pg.XXXXXX)"
  local as=()
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$FACTSTR_PGDATA"
    as=(runuser -u postgres --)
  fi
  "${as[@]}" "$bin/initdb" -D "$FACTSTR_PGDATA/data" -U postgres -A trust --no-sync >"$FACTSTR_PGDATA/initdb.log" 2>&1 ||
    { cat "$FACTSTR_PGDATA/initdb.log" >&2; return 1; }
  local port
  for port in $(seq 55432 55462); do
    if "${as[@]}" "$bin/pg_ctl" -D "$FACTSTR_PGDATA/data" -l "$FACTSTR_PGDATA/server.log" -w -t 30 \
        -o "-p $port -k $FACTSTR_PGDATA -c listen_addresses=127.0.0.1 -c max_connections=200" \
        start >/dev/null 2>&1; then
      FACTSTR_PGBIN="$bin"
      export FACTSTR_TEST_POSTGRES_BIN="$bin"
      export FACTSTR_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
      export FACTSTR_TEST_POSTGRES_DATA="$FACTSTR_PGDATA/data"
      trap stop_postgres EXIT
      log "PostgreSQL started at $FACTSTR_TEST_POSTGRES_URL"
      return 0
    fi
  done
  cat "$FACTSTR_PGDATA/server.log" >&2 || true
  return 1
}

stop_postgres() {
  [ -n "${FACTSTR_PGDATA:-}" ] || return 0
  local as=()
  [ "$(id -u)" -eq 0 ] && as=(runuser -u postgres --)
  "${as[@]}" "$FACTSTR_PGBIN/pg_ctl" -D "$FACTSTR_PGDATA/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$FACTSTR_PGDATA"
  FACTSTR_PGDATA=""
}
