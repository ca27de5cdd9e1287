#!/usr/bin/env bash
# The API against its own OpenAPI document: schemathesis (pinned) with every check and the
# stateful phase, a fixed seed and bounded examples, on a fresh server with the simulated
# WhatsApp backend. Any failure fails CI. Installs into a venv under target/ (git-ignored).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SCHEMATHESIS_VERSION=4.32.5
target="${CARGO_TARGET_DIR:-target}"
venv="$target/schemathesis-venv"
if [[ "$("$venv/bin/schemathesis" --version 2>/dev/null)" != *"$SCHEMATHESIS_VERSION" ]]; then
    # Debian's python3 has venv without ensurepip (it is in python3-venv), and refuses
    # system-wide pip installs: hence a venv, and the package when it is missing.
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

command -v curl >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null
}

# The binary `cargo test` builds (same features, so nothing is compiled twice in CI).
cargo test --no-run --quiet
work="$(mktemp -d)"
port="${SCHEMATHESIS_PORT:-$((20000 + RANDOM % 20000))}"
base="http://127.0.0.1:$port"
"$target/debug/aezen" --whatsapp simulated --data-dir "$work/data" --sessions-dir "$work/sessions" \
    --listen "127.0.0.1:$port" \
    --login-per-ip-per-minute 100000 --login-per-account-per-minute 100000 \
    >"$work/server.log" 2>&1 &
server=$!
stop() {
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap stop EXIT

for _ in $(seq 100); do
    curl -fsS "$base/api/healthz" >/dev/null 2>&1 && break
    kill -0 "$server" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.1
done
token="$(curl -fsS "$base/api/auth/register" -H 'content-type: application/json' \
    -d '{"tenantName":"Schemathesis","name":"Fuzz Owner","email":"fuzz@example.test","password":"fuzz-password-1"}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')"

status=0
"$venv/bin/schemathesis" --config-file .ci/schemathesis.toml run "$base/api/openapi.json" \
    --checks all \
    --phases examples,coverage,fuzzing,stateful \
    --seed 20 \
    --max-examples 20 \
    --generation-database none \
    --no-color \
    --header "Authorization: Bearer $token" \
    "$@" || status=$?
if ((status)); then
    echo "--- server log (last 50 lines)" >&2
    tail -n 50 "$work/server.log" >&2
fi
exit "$status"
