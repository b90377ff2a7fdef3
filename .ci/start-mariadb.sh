# Starts a throwaway MariaDB server for the MySQL state store tests; sourced by .ci/run (bash).
#
#   source .ci/start-mariadb.sh && hwaudit_mariadb_start   # exports TEST_MYSQL_URL, HWAUDIT_STATE_PASSWORD
#   hwaudit_mariadb_stop                                    # stops the server, deletes its files
#
# Installs mariadb-server (Debian) only when no server binary is found. The server gets its own
# data directory, socket and port, runs as the `mysql` user when started by root, and keeps real
# authentication: the tests connect over TCP as a password user, never with --skip-grant-tables.
# Knobs: HWAUDIT_MARIADB_PORT (default: a free port), HWAUDIT_STATE_PASSWORD (default: random).

hwaudit_mariadb_find() {
  PATH="$PATH:/usr/sbin:/usr/local/sbin" command -v mariadbd || PATH="$PATH:/usr/sbin:/usr/local/sbin" command -v mysqld || true
}

hwaudit_mariadb_start() {
  local server dir data sock port admin user db password i
  server="$(hwaudit_mariadb_find)"
  if [ -z "$server" ]; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "start-mariadb: no mariadbd/mysqld found and not root: install mariadb-server" >&2
      return 1
    fi
    echo "start-mariadb: installing mariadb-server" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server >/dev/null
    server="$(hwaudit_mariadb_find)"
    [ -n "$server" ] || { echo "start-mariadb: mariadb-server installed but no server binary found" >&2; return 1; }
  fi

  dir="$(mktemp -d "${TMPDIR:-/tmp}/hwaudit-mariadb.XXXXXX")"
  data="$dir/data"
  sock="$dir/mysqld.sock"
  mkdir -p "$data"
  chmod 755 "$dir"
  user=()
  admin="$(id -un)"
  if [ "$(id -u)" -eq 0 ]; then
    # mariadbd refuses to run as root without --user; drop to the package's service account.
    chown -R mysql:mysql "$dir"
    user=(--user=mysql)
    admin=root
  fi
  port="${HWAUDIT_MARIADB_PORT:-$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{process.stdout.write(String(s.address().port));s.close()})")}"

  # --no-defaults: ignore /etc/mysql (the system service's datadir, socket and port).
  mariadb-install-db --no-defaults "${user[@]}" --datadir="$data" --auth-root-authentication-method=socket \
    --skip-test-db >"$dir/install.log" 2>&1 || {
    echo "start-mariadb: mariadb-install-db failed:" >&2
    tail -n 30 "$dir/install.log" >&2
    return 1
  }
  "$server" --no-defaults "${user[@]}" --datadir="$data" --socket="$sock" --pid-file="$dir/mysqld.pid" \
    --port="$port" --bind-address=127.0.0.1 --skip-name-resolve --log-error="$dir/error.log" \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
    --innodb-buffer-pool-size=128M --max-connections=200 >"$dir/server.out" 2>&1 &
  HWAUDIT_MARIADB_PID=$!
  HWAUDIT_MARIADB_DIR="$dir"

  for i in $(seq 1 120); do
    if mariadb-admin --no-defaults --protocol=socket --socket="$sock" -u"$admin" ping >/dev/null 2>&1; then
      break
    fi
    if ! kill -0 "$HWAUDIT_MARIADB_PID" 2>/dev/null || [ "$i" -eq 120 ]; then
      echo "start-mariadb: the server did not come up:" >&2
      tail -n 30 "$dir/error.log" >&2
      return 1
    fi
    sleep 0.5
  done

  db=hwaudit_test
  password="${HWAUDIT_STATE_PASSWORD:-$(node -e "process.stdout.write(require('crypto').randomBytes(18).toString('base64url'))")}"
  # SQL on stdin keeps the password out of the process list. The grant covers hwaudit_test and the
  # hwaudit_test_* databases the tests create, one per test, so that parallel test files never meet.
  # CREATE USER and GRANT OPTION let a test open a store as a user with only the documented grant;
  # SUPER lets a test set init_connect, to give a user of its own a short wait_timeout.
  mariadb --no-defaults --protocol=socket --socket="$sock" -u"$admin" <<SQL || return 1
CREATE DATABASE IF NOT EXISTS $db CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS 'hwaudit'@'127.0.0.1' IDENTIFIED BY '${password//\'/\'\'}';
GRANT ALL PRIVILEGES ON \`hwaudit\\_test%\`.* TO 'hwaudit'@'127.0.0.1' WITH GRANT OPTION;
GRANT PROCESS, CREATE USER, SUPER ON *.* TO 'hwaudit'@'127.0.0.1';
SQL

  # The server has no certificate: the store must be told not to require TLS.
  export TEST_MYSQL_URL="mysql://hwaudit@127.0.0.1:$port/$db?ssl-mode=disabled"
  export HWAUDIT_STATE_PASSWORD="$password"
  export HWAUDIT_MARIADB_PID HWAUDIT_MARIADB_DIR
  echo "start-mariadb: $("$server" --version 2>/dev/null | head -n 1) on 127.0.0.1:$port (pid $HWAUDIT_MARIADB_PID)" >&2
}

hwaudit_mariadb_stop() {
  if [ -n "${HWAUDIT_MARIADB_PID:-}" ] && kill -0 "$HWAUDIT_MARIADB_PID" 2>/dev/null; then
    kill "$HWAUDIT_MARIADB_PID"
    wait "$HWAUDIT_MARIADB_PID" 2>/dev/null || true
  fi
  if [ -n "${HWAUDIT_MARIADB_DIR:-}" ]; then rm -rf "$HWAUDIT_MARIADB_DIR"; fi
  unset HWAUDIT_MARIADB_PID HWAUDIT_MARIADB_DIR
}
