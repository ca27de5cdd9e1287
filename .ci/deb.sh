#!/usr/bin/env bash
# The Debian package ([package.metadata.deb] in Cargo.toml, files in docs/packaging/): build it
# with cargo-deb, install it on this machine with apt, run the installed binary as the
# package's aezen user with the package's settings, check the systemd units, then purge the
# package and remove what this run created, so a re-run starts clean.
#
# Needs root and apt (CI runs as root on Debian). systemd need not be running: the maintainer
# scripts' systemd steps are guarded, and the units are checked offline. It refuses a machine
# where AEZEN is installed or has data, except the leftovers of an earlier run of itself.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CARGO_DEB_VERSION=3.8.0
UNITS=(aezen.service aezen-backup.service aezen-backup.timer)
UNIT_DIR=/usr/lib/systemd/system
# Written once the package is installed: what holds it was made by this script.
MARKER=/var/lib/aezen/.made-by-ci-deb-sh
# systemd-analyze's exposure score of each service (0.0 = fully locked down, 10.0 = none); both
# score 1.4 or less today, so a lost hardening line fails here. --threshold takes it times 10.
MAX_EXPOSURE=20

step() { printf '\n== deb.sh: %s\n' "$*"; }
fail() {
    printf 'deb.sh: FAILED: %s\n' "$*" >&2
    exit 1
}
mode_of() { stat -c '%U:%G %a' "$1"; }
# dpkg's status of the aezen package ("install ok installed", "deinstall ok config-files",
# ...), empty when dpkg knows nothing of it.
package_status() { dpkg-query -W -f='${Status}' aezen 2>/dev/null | grep -v 'not-installed$' || true; }

# Prefix that runs a command as the aezen user with /etc/aezen/aezen.env loaded, in
# /var/lib/aezen: what the units do, and what docs/OPERATIONS.md tells an operator to do.
# Sourcing the file as aezen also proves that the user can read it. Every step execs the
# next, so a command started with it in the background has $! as its pid.
AS_AEZEN=(setpriv --reuid=aezen --regid=aezen --init-groups --reset-env
    sh -c 'cd /var/lib/aezen && set -a && . /etc/aezen/aezen.env && set +a && exec "$@"' sh)

# Everything of AEZEN this script would install or create, where it exists.
traces() {
    [[ -n $(package_status) ]] && echo "the aezen package ($(package_status))"
    getent passwd aezen >/dev/null && echo "the user aezen"
    getent group aezen >/dev/null && echo "the group aezen"
    for path in /etc/aezen /var/lib/aezen /var/backups/aezen; do
        [[ -e $path ]] && echo "$path"
    done
    return 0
}

# Removes a test install: the package (purged), the user and group, the data and backup
# folders. Only ever called when $MARKER shows that they are this script's.
remove_test_install() {
    if [[ -n $(package_status) ]]; then
        DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq -o DPkg::Lock::Timeout=300 aezen >/dev/null || return 1
    fi
    if getent passwd aezen >/dev/null; then userdel aezen || return 1; fi
    if getent group aezen >/dev/null; then groupdel aezen || return 1; fi
    # The marker goes last, so a half-done removal is finished by the next run.
    rm -rf /etc/aezen /var/backups/aezen /var/lib/aezen
}

server_pid=""
on_exit() {
    local rc=$?
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    if [[ -f $MARKER ]]; then
        echo "deb.sh: removing the test install" >&2
        remove_test_install || echo "deb.sh: could not remove the test install; what is left: $(traces | paste -sd, -)" >&2
    fi
    exit "$rc"
}
trap on_exit EXIT

step "preflight"
[[ $EUID -eq 0 ]] || fail "run as root: this installs and purges the aezen package"
for tool in apt-get dpkg-query setpriv curl; do
    command -v "$tool" >/dev/null || fail "needs $tool (a Debian or Ubuntu machine)"
done
if [[ -f $MARKER ]]; then
    echo "leftovers of an earlier run of this script: removing them"
    remove_test_install
fi
found=$(traces)
if [[ -n $found ]]; then
    fail "AEZEN is (or was) installed here, and this test would install and purge it over that:
$found
Run it on a machine without AEZEN, or remove those first if nothing of them is needed."
fi

step "cargo-deb $CARGO_DEB_VERSION"
if [[ "$(cargo deb --version 2>/dev/null || true)" != "cargo-deb $CARGO_DEB_VERSION" ]]; then
    cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION"
fi
cargo deb --version

step "cargo deb (a release build of the binary, then the package)"
# cargo-deb prints the package's path on stdout, its progress on stderr.
deb=$(cargo deb --locked | tail -n 1) || fail "cargo deb failed"
[[ -f $deb ]] || fail "cargo deb printed '$deb', which is not a file"
deb=$(realpath "$deb")
ls -l "$deb"
dpkg-deb --info "$deb" | sed -n '/Package:/,/Description:/p'

step "apt-get install $deb"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 "$deb" || fail "apt-get install of the package failed"
[[ "$(package_status)" == "install ok installed" ]] ||
    fail "apt-get did not leave aezen installed: '$(package_status)'"
touch "$MARKER"

step "what the package installed"
[[ -x /usr/bin/aezen ]] || fail "/usr/bin/aezen is missing or not executable"
for unit in "${UNITS[@]}"; do
    [[ -f $UNIT_DIR/$unit ]] || fail "$UNIT_DIR/$unit is not installed"
    cmp -s "$UNIT_DIR/$unit" "docs/packaging/$unit" || fail "$UNIT_DIR/$unit differs from docs/packaging/$unit"
done
dpkg-query -W -f='${Conffiles}\n' aezen | grep -q '^ /etc/aezen/aezen.env ' ||
    fail "/etc/aezen/aezen.env is not a conffile of the package"
passwd=$(getent passwd aezen) || fail "the postinst did not create the user aezen"
IFS=: read -r _ _ uid _ _ home shell <<<"$passwd"
((uid < 1000)) || fail "aezen is not a system user (uid $uid)"
[[ $home == /var/lib/aezen && $shell == /usr/sbin/nologin ]] ||
    fail "aezen's home or shell is wrong: $home, $shell"
for dir in /var/lib/aezen /var/lib/aezen/data /var/lib/aezen/sessions /var/backups/aezen; do
    [[ "$(mode_of "$dir")" == "aezen:aezen 750" ]] || fail "$dir is $(mode_of "$dir"), not aezen:aezen 750"
done
[[ "$(mode_of /etc/aezen/aezen.env)" == "root:aezen 640" ]] ||
    fail "/etc/aezen/aezen.env is $(mode_of /etc/aezen/aezen.env), not root:aezen 640"
[[ -L /etc/systemd/system/multi-user.target.wants/aezen.service ]] ||
    fail "aezen.service was not enabled"
[[ ! -e /etc/systemd/system/timers.target.wants/aezen-backup.timer ]] ||
    fail "aezen-backup.timer was enabled; it is left for the operator to enable"
echo "binary, units, conffile, user aezen (uid $uid), folders and modes as documented"

step "the units, checked offline"
if command -v systemd-analyze >/dev/null; then
    (cd "$UNIT_DIR" && systemd-analyze verify "${UNITS[@]}") || fail "systemd-analyze verify found problems in the units"
    for unit in aezen.service aezen-backup.service; do
        systemd-analyze security --offline=yes --threshold="$MAX_EXPOSURE" "$UNIT_DIR/$unit" >/dev/null ||
            fail "$unit's exposure is above $((MAX_EXPOSURE / 10)).$((MAX_EXPOSURE % 10)): systemd-analyze security --offline=yes $UNIT_DIR/$unit"
        systemd-analyze security --offline=yes "$UNIT_DIR/$unit" 2>/dev/null | tail -n 1
    done
else
    echo "systemd-analyze is not on this machine: the units are not verified"
fi

step "aezen --version, as aezen"
version=$(dpkg-query -W -f='${Version}' aezen)
printed=$("${AS_AEZEN[@]}" /usr/bin/aezen --version) || fail "aezen --version failed"
[[ $printed == "aezen ${version%-*}" ]] || fail "aezen --version printed '$printed', expected 'aezen ${version%-*}'"
echo "$printed"

step "the server starts as aezen with the package's settings, answers, and stops on SIGTERM"
log=$(mktemp)
# Port 0: the port is read back from the log line, so nothing here can be taken already.
# The server logs to stdout.
"${AS_AEZEN[@]}" env AEZEN_LISTEN=127.0.0.1:0 NO_COLOR=1 /usr/bin/aezen >"$log" 2>&1 &
server_pid=$!
address=""
for _ in $(seq 1 300); do
    address=$(grep -o 'AEZEN listening address=[0-9.:]*' "$log" | head -n 1 | cut -d= -f2) || true
    [[ -n $address ]] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.2
done
if [[ -z $address ]]; then
    cat "$log" >&2
    fail "the server did not log 'AEZEN listening' within 60 s"
fi
health=$(curl -fsS --max-time 10 "http://$address/api/healthz") || {
    cat "$log" >&2
    fail "GET http://$address/api/healthz failed"
}
echo "GET /api/healthz: $health"
kill -TERM "$server_pid"
rc=0
wait "$server_pid" || rc=$?
server_pid=""
if ((rc != 0)); then
    cat "$log" >&2
    fail "the server exited with $rc on SIGTERM"
fi
for file in /var/lib/aezen/data/master.db /var/lib/aezen/data/jwt_secret; do
    [[ "$(stat -c %U "$file" 2>/dev/null)" == aezen ]] || fail "$file is missing or not owned by aezen"
done
[[ "$(stat -c %a /var/lib/aezen/data/jwt_secret)" == 600 ]] || fail "jwt_secret is not mode 0600"
rm -f "$log"
echo "served on $address; master.db and jwt_secret (0600) written as aezen; clean stop"

step "aezen check, as aezen (on the data dir the server just made)"
"${AS_AEZEN[@]}" /usr/bin/aezen check || fail "aezen check exited non-zero"

step "aezen-backup.service's command, as aezen (offline: no server runs now)"
read -ra backup_cmd <<<"$(sed -n 's/^ExecStart=//p' "$UNIT_DIR/aezen-backup.service")"
((${#backup_cmd[@]})) || fail "aezen-backup.service has no ExecStart="
"${AS_AEZEN[@]}" "${backup_cmd[@]}" || fail "the backup unit's command failed: ${backup_cmd[*]}"
[[ "$(stat -c %U /var/backups/aezen/manifest.json 2>/dev/null)" == aezen ]] ||
    fail "${backup_cmd[*]} wrote no /var/backups/aezen/manifest.json owned by aezen"
echo "${backup_cmd[*]}: manifest.json written as aezen"

step "apt-get purge aezen"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq -o DPkg::Lock::Timeout=300 aezen >/dev/null || fail "apt-get purge aezen failed"
[[ -z $(package_status) ]] || fail "dpkg still knows aezen after the purge: '$(package_status)'"
for path in /usr/bin/aezen /etc/aezen/aezen.env "${UNITS[@]/#/$UNIT_DIR/}" \
    /etc/systemd/system/multi-user.target.wants/aezen.service; do
    [[ ! -e $path ]] || fail "purge left $path"
done
[[ -f /var/lib/aezen/data/master.db && -f /var/backups/aezen/manifest.json ]] ||
    fail "purge removed the tenants' data or the backups; the postrm promises to keep them"
echo "binary, units, settings and the enablement link are gone; data and backups are kept"
remove_test_install
echo "test user and folders removed"

trap - EXIT
step "passed in ${SECONDS} s"
