#!/usr/bin/env bash
# The main job on the embedded default: the local stack plus workers, indexing sample images.
#
#   infra/demo.sh [IMAGE_FOLDER]
#
# Without a folder it uses ../shared/datasets/reverse_image_search/train when that exists. With
# ../shared/models/mobilenetv2_100.imagenet.pth present (offline machines) it writes .env so every
# later `lookalike` command uses those weights; elsewhere timm downloads pretrained weights itself.
# The command is .venv/bin/lookalike (`source .venv/bin/activate` puts it on the PATH); the last
# lines printed say what to do next.
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/install.sh
SHARED="$(cd .. && pwd)/shared"
FOLDER="${1:-$SHARED/datasets/reverse_image_search/train}"
if [ ! -d "$FOLDER" ]; then
  echo "demo.sh: no image folder at $FOLDER; pass one: infra/demo.sh PATH/TO/IMAGES" >&2
  exit 2
fi
if [ ! -f .env ] && [ -f "$SHARED/models/mobilenetv2_100.imagenet.pth" ]; then
  printf 'LOOKALIKE_MODEL=mobilenetv2_100\nLOOKALIKE_WEIGHTS=%s\n' "$SHARED/models/mobilenetv2_100.imagenet.pth" > .env
  echo "demo.sh: wrote .env (offline weights from $SHARED/models)"
fi
LA=.venv/bin/lookalike
$LA stack up --workers "${WORKERS:-2}"
$LA upload "$FOLDER"
want=$(find "$FOLDER" -type f ! -name '.*' | wc -l)
echo "demo.sh: waiting until $want objects are indexed"
for _ in $(seq 1 600); do
  n=$($LA stack status --json | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["index"]["vectors"] or 0)')
  printf '\r  %s / %s vectors' "$n" "$want"
  [ "$n" -ge "$want" ] && break
  sleep 1
done
echo
query="$(find "$(dirname "$FOLDER")/test" -type f 2>/dev/null | sort | head -1 || true)"
[ -n "$query" ] || query="$(find "$FOLDER" -type f ! -name '.*' | sort | head -1)"
$LA search "$query" -k 5
echo
# the URLs scrolled away above the progress line: the last lines say where things are and what to type
.venv/bin/python -c 'from infra.local.cli import print_next_steps; print_next_steps()'
