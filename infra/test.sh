#!/usr/bin/env bash
# The test command: install everything, then lint, type-check and run every test tier.
# Extra arguments go to the main pytest run (e.g. `infra/test.sh -m "not browser"`). The real-Milvus
# tier (tests/milvus_server, inside a private network namespace) runs beside it, in the background:
# both tiers mostly wait on their servers (the main run used 0.7 of 2 cores), so running them
# together takes about as long as the main run alone. Its output is printed after the main run's.
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/install.sh
echo "== ruff"; .venv/bin/ruff check .
echo "== mypy"; .venv/bin/mypy
status=0

# The real-Milvus tier: the worker and search tests again, against a Milvus 2.3.5 standalone server.
# That server binds nine ports on every interface, so it and its clients run in a private network
# namespace (root: `unshare -n`; otherwise a user namespace, `unshare -rn`), where they can collide
# with nothing of the main run. LOOKALIKE_SKIP_MILVUS_SERVER=1 skips it.
tier_pid=""
if [ "${LOOKALIKE_SKIP_MILVUS_SERVER:-0}" != "1" ]; then
  tier_tmp="$(mktemp -d "${TMPDIR:-/tmp}/lookalike-milvus-tier.XXXXXX")"
  cleanup_tier() {
    # a killed pytest leaves its servers running in the namespace: stop every process still in it,
    # and any milvus binary unpacked under tier_tmp (the helper test gives one a namespace of its own)
    if [ -n "$tier_pid" ]; then kill "$tier_pid" 2>/dev/null || true; fi
    if [ -s "$tier_tmp/netns" ]; then
      ns="$(cat "$tier_tmp/netns")"
      for d in /proc/[0-9]*; do
        if [ "$(readlink "$d/ns/net" 2>/dev/null)" = "$ns" ]; then kill -9 "${d#/proc/}" 2>/dev/null || true; fi
      done
    fi
    .venv/bin/python -m infra.local.milvus_server --dir "$tier_tmp" --kill-leftovers >/dev/null 2>&1 || true
    rm -rf "$tier_tmp"
  }
  trap cleanup_tier EXIT
  netns=(unshare -n)
  [ "$(id -u)" = "0" ] || netns=(unshare -rn)
  "${netns[@]}" sh -c 'ip link set lo up && readlink /proc/self/ns/net > "$1/netns" &&
      LOOKALIKE_TEST_MILVUS_SERVER=1 exec .venv/bin/python -m pytest tests/milvus_server -p no:cacheprovider \
      --basetemp "$1/pytest"' sh "$tier_tmp" > "$tier_tmp/log" 2>&1 &
  tier_pid=$!
fi

echo "== pytest"; .venv/bin/python -m pytest "$@" || status=$?

if [ -n "$tier_pid" ]; then
  tier_status=0
  wait "$tier_pid" || tier_status=$?
  tier_pid=""
  echo "== pytest (real Milvus standalone, inside unshare -n; ran beside the main run)"
  cat "$tier_tmp/log"
  [ "$tier_status" = "0" ] || status=$tier_status
  cleanup_tier
  trap - EXIT
else
  echo "== pytest (real Milvus standalone): skipped by LOOKALIKE_SKIP_MILVUS_SERVER=1"
fi
exit "$status"
