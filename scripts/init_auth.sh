#!/usr/bin/env bash
# Step 1 of the CoreDog × CoreSight integration guide: make the tokens.
# Creates an agent token (paste it into CoreDog's `token`) and a worker token
# (the workers' CORESIGHT_API_TOKEN) in the API's database, DATABASE_URL
# (default sqlite:./coresight.db, run from where the API runs), and prints:
#
#   Agent Token: <token>
#   Worker Token: <token>
#
# Only the tokens' sha256 is stored; they are shown this once. List and
# revoke them with `coresight-worker token list|revoke`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if command -v coresight-worker >/dev/null 2>&1; then
  cli=(coresight-worker)
else
  [ -x "$here/.tools/node/bin/node" ] && export PATH="$here/.tools/node/bin:$PATH"
  [ -f "$here/dist/bundle/cli.js" ] || (cd "$here" && npx tsc -p tsconfig.build.json && node scripts/bundle.mjs)
  cli=(node "$here/dist/bundle/cli.js")
fi
err="$(mktemp)"
trap 'rm -f "$err"' EXIT
# The CLI's notes go to stderr; shown only when creating a token failed.
create() { "${cli[@]}" token create --role "$1" --name "$2" 2>"$err" || { cat "$err" >&2; exit 1; }; }
agent="$(create agent "${AGENT_NAME:-coredog}")"
worker="$(create worker "${WORKER_NAME:-coresight-worker}")"
echo "Agent Token: $agent"
echo "Worker Token: $worker"
