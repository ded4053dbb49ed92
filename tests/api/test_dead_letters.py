"""Why an object is not indexed, in the API's 404 and in ``lookalike objects`` (issue 25).

The sample's junk object (text named ``.jpg``) is dead-lettered by the real worker; the API's 404
for it and the CLI both say ``dead-lettered: <reason>``, read from the dead-letter topic by the
core (``lookalike.deadletters``), never by importing the worker.
"""

from __future__ import annotations

from typing import Any

import pytest

from infra import cli
from infra.commands.objects import object_state
from lookalike.deadletters import DeadLetterLog, find_dead_letter
from tests.api.conftest import Indexed
from tests.api.test_api import any_key, one_line_problem, path_of
from tests.dashboard.sample import JUNK_KEY
from tests.helpers import free_port

pytestmark = pytest.mark.integration


def test_the_404_of_a_refused_object_says_why(client: Any) -> None:
    detail = one_line_problem(client.get(path_of(JUNK_KEY)), 404)
    assert detail.startswith(f"{JUNK_KEY!r} is not indexed: dead-lettered: not an image"), detail
    assert one_line_problem(client.get(path_of("banana/no-such.jpg")), 404) == "'banana/no-such.jpg' is not indexed"
    similar = one_line_problem(client.get(path_of(JUNK_KEY, "/similar")), 404)
    assert "dead-lettered: not an image" in similar


def test_objects_says_indexed_dead_lettered_or_missing(indexed: Indexed) -> None:
    s = indexed.settings
    good = object_state(s, s.bucket, any_key(indexed))
    assert good.state == "indexed" and good.detail.startswith("indexed at ")
    junk = object_state(s, s.bucket, JUNK_KEY)
    assert (junk.state, junk.detail.split(" (")[0]) == ("dead-lettered", "dead-lettered: not an image")
    gone = object_state(s, s.bucket, "nope/missing.jpg")
    assert (gone.state, gone.detail) == ("missing", f"not in s3://{s.bucket}")


def test_the_command_prints_one_line_per_key_and_fails_for_any_not_indexed(
    indexed: Indexed, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in indexed.settings.as_env().items():
        monkeypatch.setenv(name, value)
    assert cli.main(["objects", any_key(indexed)]) == 0
    assert cli.main(["objects", any_key(indexed), JUNK_KEY]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith(f"{JUNK_KEY}: dead-lettered: not an image"), out


def test_kafka_down_is_unknown_not_none(indexed: Indexed) -> None:
    down = indexed.settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{free_port()}"})
    oid = f"{down.bucket}/{JUNK_KEY}"
    letters = DeadLetterLog(down)
    assert letters.find(oid) is None  # the API's lookup: no reason, no error
    with pytest.raises(Exception, match="kafka unavailable"):
        find_dead_letter(down, oid)  # the CLI's: it must not claim "none"
    assert find_dead_letter(indexed.settings, oid) is not None
