#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server: installs PostgreSQL from Debian when
# missing (through install-deps.sh --test), initdb's a cluster under /tmp as an unprivileged
# user, starts it on a free loopback port with password authentication, exports
#   TRIAGE_TEST_PG_URL   postgres://triage:PASSWORD@127.0.0.1:PORT/postgres?sslmode=disable
#   TRIAGE_TEST_PG_CTL   a script taking start|stop, for tests that stop the server mid-run
#   TRIAGE_FLEET_TESTS_REQUIRED=1  so the fleet tests fail rather than skip without it
# runs the command, then stops the server and removes the cluster, whatever happened.
set -euo pipefail
cd "$(dirname "$0")/.."

find_bin() {
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$d/initdb" ] && { echo "$d"; return 0; }
    done
    return 1
}
bin=$(find_bin || true)
if [ -z "$bin" ]; then
    scripts/install-deps.sh --test
    bin=$(find_bin) || { echo "with-postgres: PostgreSQL is not installed and could not be" >&2; exit 1; }
fi

dir=$(mktemp -d /tmp/triage-pg.XXXXXX)
chmod 755 "$dir"
# PostgreSQL refuses to run as root: run it as the postgres user (made by the Debian
# package), else nobody.
as_user=()
if [ "$(id -u)" -eq 0 ]; then
    user=postgres
    id "$user" >/dev/null 2>&1 || user=nobody
    chown "$user" "$dir"
    as_user=(runuser -u "$user" --)
fi
password=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$password" > "$dir/pwfile"
[ ${#as_user[@]} -gt 0 ] && chown "$user" "$dir/pwfile"
chmod 600 "$dir/pwfile"

port=""
for _ in $(seq 1 50); do
    candidate=$(( 20000 + RANDOM % 40000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then port=$candidate; break; fi
done
[ -n "$port" ] || { echo "with-postgres: no free port found" >&2; exit 1; }

"${as_user[@]}" "$bin/initdb" -D "$dir/data" -U triage --pwfile="$dir/pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-instructions >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; rm -rf "$dir"; exit 1; }
rm -f "$dir/pwfile"

cat > "$dir/ctl" <<CTL
#!/usr/bin/env bash
# start | stop the test cluster (immediate stop: like a crash or a pulled cable).
case "\$1" in
    start) exec ${as_user[*]} "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null ;;
    stop) exec ${as_user[*]} "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null ;;
    *) echo "usage: \$0 start|stop" >&2; exit 64 ;;
esac
CTL
chmod 755 "$dir/ctl"

cleanup() {
    "$dir/ctl" stop 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM
"$dir/ctl" start || { cat "$dir/server.log" >&2; exit 1; }

export TRIAGE_TEST_PG_URL="postgres://triage:$password@127.0.0.1:$port/postgres?sslmode=disable"
export TRIAGE_TEST_PG_CTL="$dir/ctl"
export TRIAGE_FLEET_TESTS_REQUIRED=1
echo "with-postgres: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (cluster $dir)" >&2
set +e
"$@"
status=$?
exit $status
