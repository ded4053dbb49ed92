#!/usr/bin/env bash
# `lookalike bench --scale N` against the real Milvus 2.3.5 standalone server (the PyPI package
# `milvus==2.3.5`, installed by infra/install.sh), for docs/scale.md, "How far one machine goes".
#
#   bash infra/deploy/scale-standalone.sh 200000 --json
#
# The binary binds its ports on every interface, so the server and the bench run together inside a
# private network namespace (root: `unshare -n`; otherwise `unshare -rn`). Only Milvus runs there:
# the live panel's figure then leaves out Kafka (the Milvus Lite run of `lookalike bench --scale`
# measures it whole). Everything the run started is stopped and its directory removed, even on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:?usage: bash infra/deploy/scale-standalone.sh N [--json]}"
shift
tmp="$(mktemp -d "${TMPDIR:-/tmp}/lookalike-scale-standalone.XXXXXX")"
cleanup() {
  .venv/bin/python -m infra.local.milvus_server --dir "$tmp/milvus" --kill-leftovers >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
netns=(unshare -n)
[ "$(id -u)" = "0" ] || netns=(unshare -rn)
"${netns[@]}" bash -c '
  set -euo pipefail
  ip link set lo up
  .venv/bin/python -m infra.local.milvus_server --dir "$1/milvus" --port 19531 >"$1/server.log" 2>&1 &
  server=$!
  trap "kill $server 2>/dev/null || true; wait $server 2>/dev/null || true" EXIT
  for _ in $(seq 300); do
    grep -q "standalone at" "$1/server.log" && break
    kill -0 "$server" 2>/dev/null || { cat "$1/server.log" >&2; exit 1; }
    sleep 1
  done
  grep -q "standalone at" "$1/server.log" || { echo "milvus did not start in 300 s" >&2; exit 1; }
  echo "milvus 2.3.5 standalone up at 127.0.0.1:19531" >&2
  LOOKALIKE_MILVUS_URI=http://127.0.0.1:19531 .venv/bin/lookalike bench --scale "$2" "${@:3}"
' bash "$tmp" "$n" "$@"
