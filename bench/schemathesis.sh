#!/usr/bin/env bash
# Schemathesis (PyPI) against the running service's own /openapi.json: every check, no 5xx allowed,
# no response that breaks the schema. Records the run in docs/schemathesis.md.
set -euo pipefail
cd "$(dirname "$0")/.."

ADMIN_URL=${ADMIN_URL:-postgres://postgres@localhost:5432/postgres}
BENCH_DB=${BENCH_DB:-telemetry_schemathesis}
PORT=${PORT:-18096}
MAX_EXAMPLES=${MAX_EXAMPLES:-100}

command -v schemathesis >/dev/null || pip install --quiet schemathesis
cargo build --quiet --bin telemetry-server
psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null
work=$(mktemp -d)
DATABASE_URL=${ADMIN_URL%/*}/$BENCH_DB LISTEN_ADDR=127.0.0.1:$PORT RUST_LOG=warn target/debug/telemetry-server >"$work/server.log" 2>&1 &
server_pid=$!
trap 'kill $server_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done

status=0
NO_COLOR=1 schemathesis --config-file bench/schemathesis.toml run "http://127.0.0.1:$PORT/openapi.json" --max-examples "$MAX_EXAMPLES" \
    --workers 2 >"$work/run.txt" 2>&1 || status=$?
cat "$work/run.txt"
{
    printf '# Schemathesis run\n\n'
    printf 'Recorded by `bench/schemathesis.sh` on %s with %s, every check (`bench/schemathesis.toml`), `--max-examples %s`, against\n' \
        "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(schemathesis --version)" "$MAX_EXAMPLES"
    printf 'the service (debug build) and its own `/openapi.json`. Exit status: %s.\n\n' "$status"
    printf 'Every check runs on every operation, except that schema-valid requests to `POST /v1/telemetry/Report`\n'
    printf 'need not be accepted: its schema can describe the protobuf it carries only loosely (see the config).\n\n```\n'
    sed -n '/SUMMARY/,$p' "$work/run.txt"
    printf '```\n'
} >docs/schemathesis.md
exit "$status"
