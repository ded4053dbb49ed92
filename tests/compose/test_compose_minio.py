"""The MinIO images compose runs: maintained builds, at or after the release that fixed CVE-2025-62506.

MinIO's own images stopped at RELEASE.2025-04-22T22-12-26Z (the community edition went source-only
in 2025-10), which predates the fix in RELEASE.2025-10-15T17-29-55Z. Compose and the example .env
must name the same image, one whose release tag is not older than that fix.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.compose.compose import COMPOSE, ENV_EXAMPLE, read_env_file

FIXED = "RELEASE.2025-10-15T17-29-55Z"  # CVE-2025-62506 (privilege escalation) fixed here
_RELEASE = re.compile(r":(RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ)$")


def _release(image: str) -> str:
    match = _RELEASE.search(image)
    assert match, f"{image!r} is not pinned to a RELEASE tag"
    return match.group(1)


@pytest.mark.parametrize("service", ["minio", "milvus-minio", "init-minio"])
def test_minio_images_are_pinned_at_or_after_the_fix(services: dict[str, Any], service: str) -> None:
    image = services[service]["image"]
    assert not image.startswith(("minio/minio:", "minio/mc:")), f"{service}: upstream stopped publishing {image}"
    assert _release(image) >= FIXED, f"{service} runs {image}, older than {FIXED}"  # the tag sorts as time


def test_the_defaults_in_compose_match_the_example_env() -> None:
    """Without a .env, compose falls back to its own defaults: they must be the same pins."""
    text = COMPOSE.read_text()
    env = read_env_file(ENV_EXAMPLE)
    for var in ("MINIO_IMAGE", "MC_IMAGE"):
        defaults = set(re.findall(r"\$\{" + var + r":-([^}]+)\}", text))
        assert defaults == {env[var]}, (var, defaults, env[var])
