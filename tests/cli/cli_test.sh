#!/usr/bin/env bash
# Runs the `factstr` binary as a user would and checks its output and exit codes.
#   cli_test.sh FACTSTR_BINARY CASE BACKEND      (BACKEND: sqlite, postgres or memory)
# Each case runs in a fresh temporary directory; the memory backend lives for one process
# only, so its cases check what a single command does. On postgres each store is a fresh
# database on the server FACTSTR_TEST_POSTGRES_URL, dropped at the end (when the variable is
# unset the case is skipped, except in CI (CI=true), where it fails).
set -uo pipefail

FACTSTR="$1"
CASE="$2"
BACKEND="$3"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/factstr-cli-test.XXXXXX")"
PG_DATABASES=()
cleanup() {
  local db
  for db in "${PG_DATABASES[@]}"; do
    psql "$FACTSTR_TEST_POSTGRES_URL" -X -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" \
      >/dev/null 2>&1 || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK" || exit 1
unset FACTSTR_STORE NO_COLOR

FAILURES=0
fail() { echo "FAIL [$CASE/$BACKEND]: $*" >&2; FAILURES=$((FAILURES + 1)); }

# pg_url_with_db URL DBNAME: URL naming database DBNAME instead (a postgres:// or
# postgresql:// URL, query kept; or a libpq key=value string, where a later dbname wins).
pg_url_with_db() {
  local url="$1" db="$2" query="" scheme authority
  if [[ "$url" != *://* ]]; then
    printf '%s dbname=%s' "$url" "$db"
    return
  fi
  [[ "$url" == *\?* ]] && { query="?${url#*\?}"; url="${url%%\?*}"; }
  scheme="${url%%://*}"
  authority="${url#*://}"
  authority="${authority%%/*}"
  printf '%s://%s/%s%s' "$scheme" "$authority" "$db" "$query"
}
# pg_password URL: the password in a postgres:// URL or a key=value string, or nothing.
pg_password() {
  local url="$1" userinfo
  if [[ "$url" != *://* ]]; then
    [[ " $url" =~ [[:space:]]password=([^[:space:]]+) ]] && printf '%s' "${BASH_REMATCH[1]}"
    return 0
  fi
  userinfo="${url#*://}"
  userinfo="${userinfo%%/*}"
  [[ "$userinfo" == *@* ]] || return 0
  userinfo="${userinfo%@*}"
  [[ "$userinfo" == *:* ]] && printf '%s' "${userinfo#*:}"
  return 0
}
# new_store NAME: sets NEW_STORE to the URL of a new, empty store for this case (sqlite: a
# file NAME.db in $WORK; postgres: a new database factstr_cli_<case>_<pid>_NAME, dropped when
# the case ends).
new_store() {
  if [ "$BACKEND" = sqlite ]; then
    NEW_STORE="sqlite:$WORK/$1.db"
    return
  fi
  local db="factstr_cli_${CASE}_$$${1:+_$1}"
  psql "$FACTSTR_TEST_POSTGRES_URL" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $db" \
    >"$WORK/psql.out" 2>&1 || {
    echo "FAIL [$CASE/$BACKEND]: cannot create database $db: $(cat "$WORK/psql.out")" >&2
    exit 1
  }
  PG_DATABASES+=("$db")
  NEW_STORE="$(pg_url_with_db "$FACTSTR_TEST_POSTGRES_URL" "$db")"
}

case "$BACKEND" in
  sqlite) STORE="sqlite:$WORK/facts.db" ;;
  memory) STORE="memory:" ;;
  postgres)
    if [ -z "${FACTSTR_TEST_POSTGRES_URL:-}" ]; then
      if [ "${CI:-}" = true ]; then
        echo "FAIL [$CASE/$BACKEND]: FACTSTR_TEST_POSTGRES_URL is not set, and in CI the PostgreSQL tests must run (scripts/test starts a server and sets it)" >&2
        exit 1
      fi
      echo "skipped: set FACTSTR_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres) to run the PostgreSQL cases"
      exit 0
    fi
    command -v psql >/dev/null || { echo "FAIL [$CASE/$BACKEND]: psql not found (package postgresql-client)" >&2; exit 1; }
    new_store ""
    STORE="$NEW_STORE"
    ;;
  *) echo "unknown backend $BACKEND"; exit 1 ;;
esac
export FACTSTR_STORE="$STORE"

# run ARGS…: runs factstr with stdin from $IN (default empty); sets OUT, ERR, RC.
IN=/dev/null
run() {
  "$FACTSTR" "$@" <"$IN" >"$WORK/out" 2>"$WORK/err"
  RC=$?
  OUT="$(cat "$WORK/out")"
  ERR="$(cat "$WORK/err")"
  IN=/dev/null
}
expect_rc() { [ "$RC" -eq "$1" ] || fail "expected exit $1, got $RC (${*:2}); stderr: $ERR"; }
expect_out() { [ "$OUT" == "$1" ] || fail "stdout: expected <<$1>> got <<$OUT>> (${*:2})"; }
expect_out_has() { [[ "$OUT" == *"$1"* ]] || fail "stdout lacks <<$1>>: <<$OUT>> (${*:2})"; }
expect_err_has() { [[ "$ERR" == *"$1"* ]] || fail "stderr lacks <<$1>>: <<$ERR>> (${*:2})"; }
expect_err_lines() {
  local n
  n=$(printf '%s' "$ERR" | grep -c '')
  [ "$n" -eq "$1" ] || fail "expected $1 stderr line(s), got $n: <<$ERR>> (${*:2})"
}
head_of() { "$FACTSTR" stats </dev/null | awk -F'\t' '$1 == "head" {print $2}'; }
# Cases that need the store to outlive one process.
persistent_only() { [ "$BACKEND" != memory ] || { echo "skipped on $BACKEND"; exit 0; }; }


case_help() {
  run --help
  expect_rc 0 help
  expect_out_has "Exit codes:"
  expect_out_has "3  conditional append conflict"
  expect_out_has "FACTSTR_STORE"
  for sub in append query tail stats streams export import demo projections \
    "projections list" "projections status" "projections show" "projections run" \
    "projections rebuild"; do
    # shellcheck disable=SC2086
    run $sub --help
    expect_rc 0 "$sub --help"
    expect_out_has "Usage:" "$sub --help"
  done
  run projections status --help
  expect_out_has "Exit code 5 when any projection is failed" "projections status --help"
  run projections run --help
  expect_out_has "--until-caught-up" "projections run --help"
  run --help
  expect_out_has "5  a projection failed on a fact"
  run --version
  expect_rc 0 version
}

case_append() {
  run append --type Opened --payload '{"accountId":"a1"}'
  expect_rc 0 "append one"
  expect_out '{"first_sequence_number":1,"last_sequence_number":1,"committed_count":1}'
  IN=/dev/stdin
  run append <<'EOF'
{"event_type":"Deposited","payload":{"accountId":"a1","amount":5}}

{"event_type":"Deposited","payload":{"accountId":"a1","amount":7}}
{"event_type":"Withdrawn","payload":{"accountId":"a1","amount":2}}
EOF
  expect_rc 0 "append stdin"
  if [ "$BACKEND" != memory ]; then
    expect_out '{"first_sequence_number":2,"last_sequence_number":4,"committed_count":3}'
  else
    expect_out '{"first_sequence_number":1,"last_sequence_number":3,"committed_count":3}'
  fi
  IN=/dev/stdin
  run append --batch-size 2 <<'EOF'
{"event_type":"A","payload":{}}
{"event_type":"A","payload":{}}
{"event_type":"A","payload":{}}
EOF
  expect_rc 0 "append batches"
  [ "$(printf '%s\n' "$OUT" | wc -l)" -eq 2 ] || fail "batch-size 2 of 3 facts: expected 2 ranges: $OUT"
  expect_out_has '"committed_count":1}' "last batch of one"
  run append -t A -p '{}' -t B -p '{"x":[1,2]}'
  expect_rc 0 "two flags"
  expect_out_has '"committed_count":2}'

  # Conditional appends: a committed one, then a conflict (exit 3, nothing written).
  local ctx='{"filters":[{"event_types":["C"]}]}'
  run append -t C -p '{}' --if-context "$ctx" --expect none
  expect_rc 0 "append_if none"
  [ "$BACKEND" = memory ] && return
  local head
  head=$(head_of)
  run append -t C -p '{}' --if-context "$ctx" --expect none
  expect_rc 3 "append_if conflict"
  expect_err_has "conflict: expected context version none, actual $head"
  expect_err_lines 1
  [ "$(head_of)" = "$head" ] || fail "a conflict wrote something"
  run append -t C -p '{}' --if-context "$ctx" --expect "$head"
  expect_rc 0 "append_if with the right version"
}

case_query() {
  persistent_only
  "$FACTSTR" append -t Opened -p '{"accountId":"a1"}' -t Opened -p '{"accountId":"a2"}' >/dev/null
  "$FACTSTR" append -t Deposited -p '{"accountId":"a1","amount":5}' >/dev/null
  "$FACTSTR" append -t Deposited -p '{"accountId":"a2","amount":9}' >/dev/null
  run query
  expect_rc 0 query
  [ "$(printf '%s\n' "$OUT" | wc -l)" -eq 4 ] || fail "query: 4 lines expected: $OUT"
  [ "$(printf '%s\n' "$OUT" | cut -f1 | tr '\n' ' ')" = "1 2 3 4 " ] || fail "query: sequence column: $OUT"
  [ "$(printf '%s\n' "$OUT" | sed -n 3p | cut -f3,4)" = $'Deposited\t{"accountId":"a1","amount":5}' ] ||
    fail "query: type and payload columns: $OUT"
  expect_err_has "current_context_version=4 last_returned_sequence_number=4"

  run query --type Deposited --where '{"accountId":"a1"}'
  expect_rc 0
  [ "$(printf '%s\n' "$OUT" | cut -f1)" = 3 ] || fail "filtered query: $OUT"
  expect_err_has "current_context_version=3 last_returned_sequence_number=3"

  run query --where '{"accountId":"a1"}' --after 2 --json
  expect_rc 0
  [[ "$OUT" == '{"event_records":[{"sequence_number":3,'*'"last_returned_sequence_number":3,"current_context_version":3}' ]] ||
    fail "query --json: $OUT"

  run query --where '{"accountId":"a1"}' --after 3 --json
  expect_out_has '"event_records":[],"last_returned_sequence_number":null,"current_context_version":3}'

  run query --limit 2 --ndjson
  expect_rc 0
  [ "$(printf '%s\n' "$OUT" | wc -l)" -eq 2 ] || fail "limit 2: $OUT"
  [[ "$(printf '%s\n' "$OUT" | head -1)" == '{"sequence_number":1,"occurred_at":"'*'","event_type":"Opened","payload":{"accountId":"a1"}}' ]] ||
    fail "ndjson record: $OUT"
  expect_err_has "current_context_version=4 last_returned_sequence_number=2"

  run query --query '{"filters":[{"event_types":["Opened"]},{"payload_predicates":[{"amount":9}]}]}'
  [ "$(printf '%s\n' "$OUT" | cut -f1 | tr '\n' ' ')" = "1 2 4 " ] || fail "query --query: $OUT"

  run query --type Nothing
  expect_rc 0
  expect_out ""
  expect_err_has "current_context_version=none last_returned_sequence_number=none"
}

case_tail() {
  persistent_only
  for i in 1 2 3 4 5; do "$FACTSTR" append -t T -p "{\"i\":$i}" >/dev/null; done
  run tail -n 2
  expect_rc 0 "tail -n 2"
  [ "$(printf '%s\n' "$OUT" | cut -f1 | tr '\n' ' ')" = "4 5 " ] || fail "tail -n 2: $OUT"
  run tail --from 3 --ndjson
  [ "$(printf '%s\n' "$OUT" | wc -l)" -eq 2 ] || fail "tail --from 3: $OUT"
  expect_out_has '"sequence_number":4'

  # A durable cursor: the first run prints everything, the second only what is new.
  run tail --durable audit --where '{"i":2}'
  expect_rc 0 "tail --durable"
  [ "$(printf '%s\n' "$OUT" | cut -f1)" = 2 ] || fail "durable first run: $OUT"
  run tail --durable audit --where '{"i":2}'
  expect_out "" "durable second run"
  "$FACTSTR" append -t T -p '{"i":2}' >/dev/null
  run tail --durable audit --where '{"i":2}'
  [ "$(printf '%s\n' "$OUT" | cut -f1)" = 6 ] || fail "durable after append: $OUT"
}

case_tail_follow() {
  persistent_only
  "$FACTSTR" append -t Before -p '{}' >/dev/null
  "$FACTSTR" tail -f --from 0 >"$WORK/tail.out" 2>"$WORK/tail.err" &
  local pid=$!
  sleep 0.5
  "$FACTSTR" append -t Live -p '{"n":1}' >/dev/null
  "$FACTSTR" append -t Live -p '{"n":2}' -t Live -p '{"n":3}' >/dev/null
  local i
  for i in $(seq 1 50); do
    [ "$(wc -l <"$WORK/tail.out")" -ge 4 ] && break
    sleep 0.1
  done
  kill -INT "$pid"
  wait "$pid"
  local rc=$?
  [ "$rc" -eq 0 ] || fail "tail -f exited $rc after SIGINT: $(cat "$WORK/tail.err")"
  [ "$(cut -f1,3,4 "$WORK/tail.out" | tr '\n' '|')" = $'1\tBefore\t{}|2\tLive\t{"n":1}|3\tLive\t{"n":2}|4\tLive\t{"n":3}|' ] ||
    fail "tail -f output: $(cat "$WORK/tail.out")"

  # SIGTERM, and a durable follower.
  "$FACTSTR" tail -f --durable follower --ndjson >"$WORK/tail2.out" 2>"$WORK/tail2.err" &
  pid=$!
  sleep 0.5
  "$FACTSTR" append -t Live -p '{"n":4}' >/dev/null
  for i in $(seq 1 50); do
    [ "$(wc -l <"$WORK/tail2.out")" -ge 5 ] && break
    sleep 0.1
  done
  kill -TERM "$pid"
  wait "$pid"
  rc=$?
  [ "$rc" -eq 0 ] || fail "tail -f --durable exited $rc after SIGTERM: $(cat "$WORK/tail2.err")"
  [ "$(wc -l <"$WORK/tail2.out")" -eq 5 ] || fail "durable follower saw: $(cat "$WORK/tail2.out")"
  run streams
  expect_out $'follower\t5\t0\tall'
}

case_stats() {
  run stats
  expect_rc 0 stats
  if [ "$BACKEND" = memory ]; then
    expect_out_has $'facts\t0\nhead\t0\nbatches\t0\nfirst_occurred_at\tnone'
    return
  fi
  "$FACTSTR" append -t A -p '{}' -t B -p '{}' >/dev/null
  "$FACTSTR" append -t A -p '{}' >/dev/null
  run stats
  expect_rc 0
  expect_out_has $'facts\t3\nhead\t3\nbatches\t2\nfirst_occurred_at\t20'
  expect_out_has $'event_type\tA\t2\nevent_type\tB\t1'
  if [ "$BACKEND" = sqlite ]; then
    expect_out_has "store	sqlite:$WORK/facts.db"
    [[ "$OUT" =~ database_bytes$'\t'[1-9][0-9]* ]] || fail "database_bytes: $OUT"
  else
    # The store as libpq sees it (no password); the size is not available for PostgreSQL yet.
    local db="factstr_cli_${CASE}_$$" password
    printf '%s\n' "$OUT" | grep -Eq "^store"$'\t'"postgres:(.* )?dbname=$db( |\$)" ||
      fail "store line: $OUT"
    password="$(pg_password "$STORE")"
    [ -n "$password" ] && [[ "$OUT" == *"$password"* ]] && fail "the password is printed: $OUT"
    [[ "$OUT" =~ database_bytes$'\t'([1-9][0-9]*|unknown)$'\n' ]] || fail "database_bytes: $OUT"
  fi
  run stats --json
  expect_out_has '"facts":3,"head":3,"batches":2,'
  expect_out_has '"event_types":{"A":2,"B":1}}'
}

case_streams() {
  run streams
  expect_rc 0
  expect_out ""
  [ "$BACKEND" = memory ] && return
  for i in 1 2 3; do "$FACTSTR" append -t T -p "{\"i\":$i}" >/dev/null; done
  "$FACTSTR" tail --durable one --type T >/dev/null
  "$FACTSTR" append -t T -p '{}' -t U -p '{}' >/dev/null
  run streams
  expect_rc 0
  expect_out $'one\t3\t2\t{"filters":[{"event_types":["T"]}]}'
  run streams --exact --json
  expect_out '[{"name":"one","query":{"filters":[{"event_types":["T"]}]},"position":3,"lag":2,"pending":1}]'
}

case_export_import() {
  persistent_only
  "$FACTSTR" demo >/dev/null || fail "demo"
  "$FACTSTR" append -t Big -p '{"list":[1,2.5,"x",{"y":null}],"u":"é"}' >/dev/null
  # Payload text is kept as given (compacted only): numbers are not re-serialized, on the way
  # in (--payload, NDJSON) nor through export and import. 12345678901234567890123 is beyond
  # 64 bits: valid JSON, kept, and matched as the double nearest to it.
  "$FACTSTR" append -t Digits -p '{ "d": 1.10, "e": 1E2, "z": -0.0, "p": 1.00000000000000001, "big": 12345678901234567890123 }' >/dev/null ||
    fail "append of numbers in their own spelling"
  IN=/dev/stdin
  run append <<'EOF'
{"event_type":"Digits","payload":[1.50, 2e0, -12345678901234567890123]}
EOF
  expect_rc 0 "NDJSON append of numbers in their own spelling"
  run query --type Digits
  expect_out_has '{"d":1.10,"e":1E2,"z":-0.0,"p":1.00000000000000001,"big":12345678901234567890123}'
  expect_out_has '[1.50,2e0,-12345678901234567890123]'
  run query --where '{"big":12345678901234567890123}'
  expect_out_has '"big":12345678901234567890123' "a predicate on a number beyond 64 bits"
  run export
  expect_rc 0 export
  cp "$WORK/out" "$WORK/one.ndjson"
  local n
  n=$(wc -l <"$WORK/one.ndjson")
  [ "$n" -eq "$(head_of)" ] || fail "export: $n lines for head $(head_of)"
  grep -q '"event_type":"MoneyDeposited","payload":{"accountId":"alice","amount":100},"batch_last":6}' "$WORK/one.ndjson" ||
    fail "export: batch_last of the deposits batch: $(sed -n 4p "$WORK/one.ndjson")"

  # Into a fresh store: an identical export (numbers, batches, occurred_at, facts).
  new_store two
  local two="$NEW_STORE"
  run --store "$two" import "$WORK/one.ndjson"
  expect_rc 0 import
  expect_out_has "imported $n facts"
  expect_out_has "as sequence numbers 1..$n"
  "$FACTSTR" --store "$two" export -o "$WORK/two.ndjson" 2>/dev/null || fail "export -o"
  cmp -s "$WORK/one.ndjson" "$WORK/two.ndjson" ||
    fail "round trip differs: $(diff "$WORK/one.ndjson" "$WORK/two.ndjson" | head -5)"
  [ ! -e "$WORK/two.ndjson.partial" ] || fail "export -o left its .partial file"

  # From stdin too.
  new_store three
  local three="$NEW_STORE"
  IN="$WORK/one.ndjson"
  run --store "$three" import
  expect_rc 0 "import from stdin"
  "$FACTSTR" --store "$three" export 2>/dev/null >"$WORK/three.ndjson"
  cmp -s "$WORK/one.ndjson" "$WORK/three.ndjson" || fail "stdin round trip differs"

  # A non-empty store is refused, unless --append (numbers reassigned).
  run --store "$two" import "$WORK/one.ndjson"
  expect_rc 2 "import into a non-empty store"
  expect_err_has "the store is not empty (head $n)"
  [ "$("$FACTSTR" --store "$two" stats | awk -F'\t' '$1=="head"{print $2}')" = "$n" ] ||
    fail "refused import wrote something"
  run --store "$two" import --append "$WORK/one.ndjson"
  expect_rc 0 "import --append"
  expect_out_has "as sequence numbers $((n + 1))..$((2 * n))"
  expect_out_has "reassigned"
  run --store "$two" stats
  expect_out_has $'batches\t'"$(( 2 * $("$FACTSTR" stats | awk -F'\t' '$1=="batches"{print $2}') ))"
}

case_demo() {
  run demo
  expect_rc 0 demo
  expect_out_has "CONFLICT (expected"
  expect_out_has "facts appended by this run: 11 (#1..#11)"
  expect_out_has "balance alice          60"
  [ "$BACKEND" = memory ] && return
  run demo
  expect_rc 0 "demo again"
  expect_out_has "(run 2)"
  expect_out_has "facts appended by this run: 11 (#12..#22)"
  expect_out_has "balance carol-2"
}

case_bad_input() {
  # Invalid JSON on line 37 of stdin: one line naming it, exit 2, nothing written.
  local head_before=0
  if [ "$BACKEND" != memory ]; then
    "$FACTSTR" append -t Seed -p '{}' >/dev/null
    head_before=1
  fi
  for i in $(seq 1 36); do echo "{\"event_type\":\"E\",\"payload\":{\"i\":$i}}"; done >"$WORK/in.ndjson"
  echo '{"event_type":"E","payload":{"i":37}' >>"$WORK/in.ndjson"
  echo '{"event_type":"E","payload":{"i":38}}' >>"$WORK/in.ndjson"
  IN="$WORK/in.ndjson"
  run append
  expect_rc 2 "invalid JSON"
  expect_err_has "factstr append: stdin line 37: invalid JSON: "
  expect_err_lines 1 "invalid JSON"
  [ "$BACKEND" != memory ] && { [ "$(head_of)" = "$head_before" ] || fail "invalid input wrote facts"; }

  printf '%s\n' '{"event_type":"E","payload":{}}' '{"payload":{}}' >"$WORK/in2.ndjson"
  IN="$WORK/in2.ndjson"
  run append
  expect_rc 2 "missing event_type"
  expect_err_has 'stdin line 2: "event_type" must be a non-empty string'

  run append -i "$WORK/in.ndjson"
  expect_rc 2 "file input"
  expect_err_has "$WORK/in.ndjson line 37: invalid JSON"

  run import "$WORK/in.ndjson"
  expect_rc 2 "import invalid JSON"
  expect_err_has "$WORK/in.ndjson line 37: invalid JSON"
  [ "$BACKEND" != memory ] && { [ "$(head_of)" = "$head_before" ] || fail "invalid import wrote facts"; }

  run append -t A -p '{nope}'
  expect_rc 2 "bad --payload"
  expect_err_has "--payload #1: invalid JSON"
  run query --where '[1,'
  expect_rc 2 "bad --where"
  expect_err_has "--where #1: invalid JSON"
  run query --query '{"filters":"x"}'
  expect_rc 2 "bad --query"
  expect_err_lines 1 "bad --query"
  run append -t A --if-context '{}' --expect soon
  expect_rc 2 "bad --expect"
  expect_err_has "--expect: expected a sequence number or 'none', got 'soon'"

  # Usage errors.
  run frobnicate
  expect_rc 2 "unknown subcommand"
  expect_err_has "unknown subcommand 'frobnicate'"
  expect_err_lines 1 "unknown subcommand"
  run
  expect_rc 2 "no subcommand"
  run query --bogus
  expect_rc 2 "unknown option"
  expect_err_lines 1 "unknown option"

  # Unknown URL scheme.
  run --store "mongodb://localhost/x" stats
  expect_rc 2 "unknown scheme"
  expect_err_has "unsupported store URL 'mongodb://localhost/x'"
  expect_err_lines 1 "unknown scheme"
  FACTSTR_STORE="nope:x" run query
  expect_rc 2 "unknown scheme from FACTSTR_STORE"

  if [ "$BACKEND" = postgres ]; then
    bad_input_postgres
  else
    bad_input_sqlite_files
  fi
  true
}

# PostgreSQL: a server that cannot be reached (or a database that does not exist) is a store
# failure, exit 4, one line on stderr that never shows the password.
bad_input_postgres() {
  local store sub
  printf '%s\n' '{"event_type":"E","payload":{}}' >"$WORK/in3.ndjson"
  for store in "postgres://postgres:s3cret-pw@127.0.0.1:1/x" \
               "postgresql://postgres:s3cret-pw@127.0.0.1:1/x?connect_timeout=5" \
               "host=127.0.0.1 port=1 user=postgres password=s3cret-pw dbname=x"; do
    for sub in stats query "append -t A" tail export streams demo "import $WORK/in3.ndjson"; do
      # shellcheck disable=SC2086
      run --store "$store" $sub
      expect_rc 4 "unreachable server: $sub ($store)"
      expect_err_has "cannot connect" "unreachable server: $sub"
      expect_err_lines 1 "unreachable server: $sub ($store)"
      [[ "$ERR" == *s3cret-pw* ]] && fail "the password is printed: $ERR ($sub)"
      [[ "$OUT" == *s3cret-pw* ]] && fail "the password is printed on stdout: $OUT ($sub)"
    done
  done
  FACTSTR_STORE="postgres://postgres:s3cret-pw@127.0.0.1:1/x" run stats
  expect_rc 4 "unreachable server from FACTSTR_STORE"
  [[ "$ERR" == *s3cret-pw* ]] && fail "the password is printed: $ERR (FACTSTR_STORE)"

  # A database that does not exist on the real server (the server's password, if the URL
  # has one, is not printed either).
  local missing password
  missing="$(pg_url_with_db "$FACTSTR_TEST_POSTGRES_URL" "factstr_cli_missing_$$")"
  password="$(pg_password "$FACTSTR_TEST_POSTGRES_URL")"
  run --store "$missing" stats
  expect_rc 4 "a database that does not exist"
  expect_err_has "factstr_cli_missing_$$" "a database that does not exist"
  expect_err_lines 1 "a database that does not exist"
  [ -n "$password" ] && [[ "$ERR" == *"$password"* ]] && fail "the password is printed: $ERR"
  true
}

# SQLite files: an unknown option, a file that is not a factstr database, a directory.
bad_input_sqlite_files() {
  run --store "sqlite:$WORK/x.db?frob=1" stats
  expect_rc 2 "unknown sqlite option"
  expect_err_has "unknown option 'frob'"

  # A file that is not a factstr database: exit 4, the file is left exactly as it was.
  printf 'my notes\nnot a database\n' >"$WORK/notes.txt"
  cp "$WORK/notes.txt" "$WORK/notes.orig"
  for sub in stats query "append -t A" tail export streams demo; do
    # shellcheck disable=SC2086
    run --store "sqlite:$WORK/notes.txt" $sub
    expect_rc 4 "not a database: $sub"
    expect_err_has "is not a SQLite database" "$sub"
    expect_err_lines 1 "not a database: $sub"
  done
  IN="$WORK/in2.ndjson"
  printf '%s\n' '{"event_type":"E","payload":{}}' >"$WORK/in3.ndjson"
  run --store "sqlite:$WORK/notes.txt" import "$WORK/in3.ndjson"
  expect_rc 4 "import into a non-database"
  cmp -s "$WORK/notes.txt" "$WORK/notes.orig" || fail "the text file was modified"
  ls "$WORK"/notes.txt-* >/dev/null 2>&1 && fail "side files were created next to the text file"

  # A directory where a file is expected.
  mkdir "$WORK/dir"
  run --store "sqlite:$WORK/dir" stats
  expect_rc 4 "a directory"
}

# Projections: a worker run until caught up, the derived table (show, status, SQL), a
# declaration error, a changed declaration refused then rebuilt, a worker stopped by SIGTERM,
# and a projection that fails on a fact.
write_accounts_declaration() {  # FILE [EXTRA_COMPUTATION_JSON]
  cat >"$1" <<EOF
{"name":"accounts","key":["accountId"],"computations":[
 {"column":"deposits","kind":"count","filter":{"event_types":["deposited"]}},
 {"column":"balance","kind":"weighted_sum","type":"integer","terms":[
   {"filter":{"event_types":["deposited"]},"weight":1,"field":"amount"},
   {"filter":{"event_types":["withdrawn"]},"weight":-1,"field":"amount"}]},
 {"column":"status","kind":"state_machine","states":["open","frozen","closed"],"initial":"open",
  "transitions":[{"from":["open"],"on":{"event_types":["frozen"]},"to":"frozen"},
                 {"from":["frozen"],"on":{"event_types":["unfrozen"]},"to":"open"},
                 {"from":["open","frozen"],"on":{"event_types":["closed"]},"to":"closed"}]}${2:+,$2}]}
EOF
}

case_projections() {
  write_accounts_declaration "$WORK/accounts.json"
  printf '%s\n' '{"name":"accounts","key":["accountId"],"computations":[{"column":"n","kind":"frobnicate"}]}' >"$WORK/bad.json"
  printf '%s\n' '{"name":"accounts",' >"$WORK/broken.json"
  run projections run --until-caught-up "$WORK/bad.json"
  expect_rc 2 "an invalid declaration"
  expect_err_has "$WORK/bad.json: invalid declaration"
  expect_err_lines 1 "an invalid declaration"
  run projections run --until-caught-up "$WORK/broken.json"
  expect_rc 2 "a declaration that is not JSON"
  expect_err_has "$WORK/broken.json"
  run projections run --until-caught-up "$WORK/missing.json"
  expect_rc 2 "a missing file"
  run projections run --until-caught-up "$WORK/accounts.json" "$WORK/accounts.json"
  expect_rc 2 "declared twice"
  expect_err_has "projection 'accounts' is declared twice"
  run projections show nothing
  expect_rc 2 "show an unknown table"
  expect_err_has "no projection has a table named 'nothing'"
  if [ "$BACKEND" = memory ]; then
    # The store lives in one process: a run on it is all there is to see.
    run projections run --until-caught-up "$WORK/accounts.json"
    expect_rc 0 "run on memory"
    expect_err_has "caught up with head 0"
    run projections status
    expect_rc 0
    expect_out ""
    return
  fi

  "$FACTSTR" append -t deposited -p '{"accountId":"a1","amount":100}' \
    -t deposited -p '{"accountId":"a2","amount":5}' -t deposited -p '{"accountId":"a1","amount":50}' \
    -t withdrawn -p '{"accountId":"a1","amount":30}' -t frozen -p '{"accountId":"a1"}' >/dev/null
  "$FACTSTR" append -t closed -p '{"accountId":"a2"}' -t unfrozen -p '{"accountId":"a1"}' \
    -t withdrawn -p '{"accountId":"a3","amount":7}' -t unfrozen -p '{"accountId":"a2"}' \
    -t other -p '{"accountId":"a1","amount":1000}' >/dev/null
  run projections run --until-caught-up --worker-id cli-test "$WORK/accounts.json"
  expect_rc 0 "run until caught up"
  expect_err_has "caught up with head 10"
  expect_err_has "accounts caught_up checkpoint 10/10 lag 0 facts"
  run projections show accounts
  expect_rc 0 show
  expect_out $'account_id\tdeposits\tbalance\tstatus\tstatus_ignored\na1\t2\t120\topen\t0\na2\t1\t5\tclosed\t1\na3\t0\t-7\topen\t0' "show"
  run projections show accounts --json
  expect_out '[{"account_id":"a1","deposits":2,"balance":120,"status":"open","status_ignored":0},{"account_id":"a2","deposits":1,"balance":5,"status":"closed","status_ignored":1},{"account_id":"a3","deposits":0,"balance":-7,"status":"open","status_ignored":0}]' "show --json"
  run projections status --json
  expect_rc 0 "status"
  [[ "$OUT" == '[{"name":"accounts","state":"stopped","checkpoint":10,"head":10,"lag_facts":0,"lag_ms":0,"owner":null,"error":null,"error_position":null,"rebuild_checkpoint":null,"fingerprint":"'*'"}]' ]] ||
    fail "status --json: $OUT"
  run projections status
  expect_out $'accounts\tstopped\t10\t10\t0\t0\t-\t-\t-' "status piped"
  run projections list
  expect_rc 0 list
  [[ "$OUT" == $'accounts\t'*$'\taccounts(account_id,deposits,balance,status,status_ignored)' ]] ||
    fail "list: $OUT"
  run projections list --json
  expect_out_has '"tables":[{"name":"accounts","columns":["account_id","deposits","balance","status","status_ignored"]}],"declaration":{"name":"accounts","key":[{"field":"accountId"'
  local sql='SELECT account_id, deposits, balance, status FROM accounts ORDER BY account_id'
  if [ "$BACKEND" = sqlite ]; then
    if command -v sqlite3 >/dev/null; then
      [ "$(sqlite3 -separator ' ' "$WORK/facts.db" "$sql")" = $'a1 2 120 open\na2 1 5 closed\na3 0 -7 open' ] ||
        fail "sqlite3 sees: $(sqlite3 "$WORK/facts.db" 'SELECT * FROM accounts' 2>&1)"
    else
      echo "note: sqlite3 is not installed; the SQL check is skipped"
    fi
  else
    [ "$(psql "$STORE" -X -q -A -t -F ' ' -c "$sql")" = $'a1 2 120 open\na2 1 5 closed\na3 0 -7 open' ] ||
      fail "psql sees: $(psql "$STORE" -X -A -t -c 'SELECT * FROM accounts' 2>&1)"
  fi

  # A changed declaration is refused (exit 3, pointing at rebuild); rebuild replaces it.
  write_accounts_declaration "$WORK/accounts2.json" \
    '{"column":"withdrawals","kind":"count","filter":{"event_types":["withdrawn"]}}'
  run projections run --until-caught-up "$WORK/accounts2.json"
  expect_rc 3 "a changed declaration"
  expect_err_has "factstr projections rebuild $WORK/accounts2.json"
  expect_err_lines 1 "a changed declaration"
  run projections rebuild "$WORK/accounts2.json"
  expect_rc 0 rebuild
  expect_out_has "accounts: rebuilt through #10"
  run projections show accounts
  expect_out $'account_id\tdeposits\tbalance\tstatus\tstatus_ignored\twithdrawals\na1\t2\t120\topen\t0\t1\na2\t1\t5\tclosed\t1\t0\na3\t0\t-7\topen\t0\t1' "show after rebuild"
  run projections run --until-caught-up "$WORK/accounts.json"
  expect_rc 3 "the old declaration after the rebuild"

  # A worker until SIGTERM follows new facts, then releases its lease.
  "$FACTSTR" projections run --report-ms 0 --worker-id live-worker "$WORK/accounts2.json" \
    >"$WORK/run.out" 2>"$WORK/run.err" &
  local pid=$! i
  for i in $(seq 1 50); do
    [[ "$("$FACTSTR" projections status 2>/dev/null)" == *live-worker* ]] && break
    sleep 0.1
  done
  run projections status
  expect_out $'accounts\tcaught_up\t10\t10\t0\t0\tlive-worker\t-\t-' "status with a live worker"
  "$FACTSTR" append -t deposited -p '{"accountId":"a3","amount":17}' >/dev/null
  for i in $(seq 1 50); do
    [[ "$("$FACTSTR" projections show accounts)" == *$'a3\t1\t10\t'* ]] && break
    sleep 0.1
  done
  run projections show accounts
  expect_out_has $'a3\t1\t10\topen\t0\t1' "the live worker applied a new fact"
  kill -TERM "$pid"
  wait "$pid"
  local rc=$?
  [ "$rc" -eq 0 ] || fail "run exited $rc after SIGTERM: $(cat "$WORK/run.err")"
  grep -q "leases released" "$WORK/run.err" || fail "run stderr: $(cat "$WORK/run.err")"
  run projections status
  expect_out $'accounts\tstopped\t11\t11\t0\t0\t-\t-\t-' "status after the worker stopped"

  # A fact the projection cannot apply: run exits 5 naming it, status shows it (exit 5),
  # the derived data stays as it was before that fact.
  "$FACTSTR" append -t deposited -p '{"accountId":"a1","amount":"lots"}' >/dev/null
  run projections run --until-caught-up "$WORK/accounts2.json"
  expect_rc 5 "a failing projection"
  expect_err_has "projection 'accounts' failed at #12"
  run projections status --json
  expect_rc 5 "status of a failed projection"
  expect_out_has '"state":"failed","checkpoint":11,"head":12,"lag_facts":1,'
  expect_out_has '"error_position":12,'
  run projections status
  expect_rc 5 "status piped, failed"
  [[ "$OUT" == $'accounts\tfailed\t11\t12\t1\t'*$'\t-\t12\t'*amount* ]] || fail "status piped, failed: $OUT"
  run projections show accounts
  expect_out_has $'a1\t2\t120\topen\t0\t1' "values before the failing fact"
}

"case_$CASE"
if [ "$FAILURES" -ne 0 ]; then
  echo "$CASE/$BACKEND: $FAILURES failure(s)" >&2
  exit 1
fi
echo "$CASE/$BACKEND: ok"
