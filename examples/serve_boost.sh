#!/usr/bin/env bash
# mltk serve on LightGBM's binary example: train, serve with a bearer token, call every endpoint, stop.
# Data: ../shared/data/lightgbm (override with LGB_DATA=...). Needs the serve extra: pip install 'mltk[serve]'.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${LGB_DATA:-../shared/data/lightgbm}/binary_classification"
RUNS="${RUNS:-runs}"
PORT="${PORT:-8000}"
URL="http://127.0.0.1:$PORT"

mltk boost train --lightgbm-config "$DATA/train.conf" --runs-dir "$RUNS" --name serve-example --quiet

# The token travels in an environment variable, never on the command line (ps would show it).
MLTK_TOKEN="$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
export MLTK_TOKEN
mltk serve boost/serve-example --runs-dir "$RUNS" --port "$PORT" --token-env MLTK_TOKEN &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "$URL/health" >/dev/null && break; sleep 0.2; done
AUTH=(-H "Authorization: Bearer $MLTK_TOKEN")

curl -s "$URL/health"; echo                       # liveness: the only route without the token
curl -s "${AUTH[@]}" "$URL/metadata"; echo        # technique, run, feature names and types

# One row of the test file as {column: value}, with the names /metadata gives.
ROW="$(curl -s "${AUTH[@]}" "$URL/metadata" | python3 -c '
import json, sys
features = [f["name"] if isinstance(f, dict) else f for f in json.load(sys.stdin)["features"]]
values = open(sys.argv[1]).readline().split("\t")[1:]
print(json.dumps(dict(zip(features, map(float, values)))))' "$DATA/binary.test")"

curl -s "${AUTH[@]}" -H 'Content-Type: application/json' -d "$ROW" "$URL/predict"; echo
curl -s "${AUTH[@]}" -H 'Content-Type: application/json' -d "[$ROW, $ROW]" "$URL/predict?proba=true"; echo
curl -s "${AUTH[@]}" -H 'Content-Type: application/json' -d '{"oops": ' "$URL/predict"; echo   # 400, one line
curl -s -o /dev/null -w 'without the token: %{http_code}\n' "$URL/metadata"                    # 401
curl -s "${AUTH[@]}" "$URL/metrics" | grep '^mltk_requests_total'

kill -TERM "$SERVER"   # in-flight requests finish, then exit 0
wait "$SERVER"
trap - EXIT
