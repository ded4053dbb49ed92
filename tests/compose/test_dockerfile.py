"""infra/deploy/Dockerfile and .dockerignore, checked statically: CPU and no torch by default, the pinned torch
pair in the model variant, no secrets."""

from __future__ import annotations

import fnmatch
import re

from tests.compose.compose import DEPLOY, INFRA
from tests.helpers import REPO

DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def arg_defaults() -> dict[str, str]:
    return dict(rest.split("=", 1) for word, rest in instructions() if word == "ARG" and "=" in rest)


def test_no_setting_or_secret_is_baked_in() -> None:
    for word, rest in instructions():
        if word in ("ENV", "ARG", "LABEL"):
            assert not re.search(r"SECRET|PASSWORD|TOKEN|ACCESS_KEY|LOOKALIKE_", rest, re.I), f"{word} {rest}"
        if word in ("COPY", "ADD"):
            assert ".env" not in rest, f"{word} {rest}"


def test_cpu_by_default_with_the_pinned_torch_pair() -> None:
    args = arg_defaults()
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    assert args["BASE_IMAGE"].startswith("python:3.11")
    install = (INFRA / "install.sh").read_text()
    constraints = (INFRA / "constraints.txt").read_text()
    for name, arg in (("torch", "TORCH_VERSION"), ("torchvision", "TORCHVISION_VERSION")):
        pinned = re.search(rf'"{name}==([\d.]+)"', install)
        assert pinned, f"infra/install.sh no longer pins {name}"
        assert args[arg] == pinned.group(1), f"Dockerfile {arg} differs from infra/install.sh"
        assert f"{name}=={pinned.group(1)}\n" in constraints
    text = DOCKERFILE.read_text()
    assert 'pip install -c infra/constraints.txt ".${EXTRAS:+[${EXTRAS}]}"' in text
    assert "cuda" in text.lower(), "the GPU variant is documented in the Dockerfile"


def test_the_default_image_serves_without_torch() -> None:
    """Workers and the API run the ONNX export (issue 20): torch comes only with EXTRAS=model, and the
    build checks that the serving image cannot import it."""
    assert arg_defaults()["EXTRAS"] == '""'
    runs = [rest for word, rest in instructions() if word == "RUN"]
    (torch_install,) = [r for r in runs if '"torch==${TORCH_VERSION}"' in r]
    assert torch_install.startswith('if [ "${EXTRAS}" = "model" ]; then')
    assert any('! python -c "import torch"' in r for r in runs), "the serving build proves torch is absent"


def test_copies_every_package_and_runs_unprivileged() -> None:
    copied = {rest.split()[0] for word, rest in instructions() if word == "COPY" and "--from" not in rest}
    for package in ("lookalike", "producers", "consumers", "dashboard", "infra"):
        assert package in copied and (REPO / package).is_dir(), package
    for path in copied:
        assert (REPO / path).exists(), f"COPY {path}: not in the repository"
    words = instructions()
    user = [rest for word, rest in words if word == "USER"]
    assert user and not user[-1].startswith(("0", "root")), "the app must not run as root"
    assert ("ENTRYPOINT", '["lookalike"]') in words
    froms = [rest for word, rest in words if word == "FROM"]
    assert len(froms) == 2 and all(f.startswith("${BASE_IMAGE}") for f in froms), "same base for build and run"


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    patterns = [
        line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    excluded = [p for p in patterns if not p.startswith("!")]

    def ignored(path: str) -> bool:
        hit = any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, p.removeprefix("**/")) for p in excluded)
        return hit and not any(fnmatch.fnmatch(path, p[1:]) for p in patterns if p.startswith("!"))

    for path in (".env", "infra/deploy/.env", ".venv", ".git", ".lookalike", "tests"):
        assert ignored(path), f"{path} would be sent to the Docker daemon"
    for path in ("lookalike", "infra/deploy/Dockerfile", "infra/constraints.txt", "pyproject.toml", "README.md"):
        assert not ignored(path), f"{path} is needed by the build"
