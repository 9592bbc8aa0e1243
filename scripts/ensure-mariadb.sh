# shellcheck shell=bash
# ensure_mariadb makes TERN_TEST_DSN point at a server that answers: the one
# already there, or a private MariaDB it installs (apt) and starts.
ensure_mariadb() {
  export TERN_TEST_DSN="${TERN_TEST_DSN:-root@tcp(127.0.0.1:3306)/}"
  if _dsn_answers "$TERN_TEST_DSN"; then
    _raise_max_connections "$TERN_TEST_DSN"
    return 0
  fi
  echo "== no MySQL server answers at TERN_TEST_DSN; starting a private MariaDB"
  ensure_mariadbd
  local mariadbd=mariadbd
  command -v mariadbd >/dev/null 2>&1 || mariadbd=/usr/sbin/mariadbd
  local d="${TERN_MARIADB_DIR:-/tmp/tern-mariadb}" port="${TERN_MARIADB_PORT:-33306}"
  if [ ! -d "$d/mysql" ]; then
    mkdir -p "$d"
    mariadb-install-db --no-defaults --user=root --datadir="$d" \
      --auth-root-authentication-method=normal --skip-test-db >/dev/null
  fi
  if ! _port_answers "$port"; then
    "$mariadbd" --no-defaults --user=root --datadir="$d" --socket="$d.sock" --port="$port" \
      --bind-address=127.0.0.1 --character-set-server=utf8mb4 \
      --collation-server=utf8mb4_general_ci --max-connections=1000 >"$d.log" 2>&1 &
  fi
  export TERN_TEST_DSN="root@tcp(127.0.0.1:$port)/"
  for _ in $(seq 1 100); do
    if _dsn_answers "$TERN_TEST_DSN"; then return 0; fi
    sleep 0.2
  done
  echo "MariaDB did not start; see $d.log" >&2
  return 1
}

# ensure_mariadbd installs the MariaDB server programs (apt) when missing:
# the soak (e2e TestSoak) starts and restarts a mariadbd of its own,
# whatever server TERN_TEST_DSN points at.
ensure_mariadbd() {
  if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server mariadb-client >/dev/null
  fi
}

_port_answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# _dsn_answers checks host:port of a go-sql-driver DSN with the mariadb client.
_dsn_answers() {
  local dsn="$1" user hostport host port pass=""
  user="${dsn%%@*}"; user="${user%%:*}"
  case "${dsn%%@*}" in *:*) pass="${dsn%%@*}"; pass="${pass#*:}";; esac
  hostport="$(sed -n 's/.*tcp(\([^)]*\)).*/\1/p' <<<"$dsn")"
  host="${hostport%%:*}"; port="${hostport##*:}"
  [ -n "$host" ] || return 1
  if command -v mariadb >/dev/null 2>&1; then
    MYSQL_PWD="$pass" mariadb --protocol=tcp -h"$host" -P"$port" -u"$user" -e 'SELECT 1' >/dev/null 2>&1
  else
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
  fi
}

# _raise_max_connections lifts a running server's max_connections to 1000
# when it is lower and the user may (best effort): the suite's packages run
# in parallel, and the e2e and soak tests start several tern processes.
_raise_max_connections() {
  local dsn="$1" user hostport host port pass=""
  command -v mariadb >/dev/null 2>&1 || return 0
  user="${dsn%%@*}"; user="${user%%:*}"
  case "${dsn%%@*}" in *:*) pass="${dsn%%@*}"; pass="${pass#*:}";; esac
  hostport="$(sed -n 's/.*tcp(\([^)]*\)).*/\1/p' <<<"$dsn")"
  host="${hostport%%:*}"; port="${hostport##*:}"
  MYSQL_PWD="$pass" mariadb --protocol=tcp -h"$host" -P"$port" -u"$user" \
    -e 'SET GLOBAL max_connections = GREATEST(@@max_connections, 1000)' >/dev/null 2>&1 || true
}
