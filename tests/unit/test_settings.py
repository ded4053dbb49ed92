from __future__ import annotations

from pathlib import Path

import pytest

from lookalike.settings import Settings


def test_defaults_point_at_the_local_stack() -> None:
    s = Settings(_env_file=None)
    assert s.s3_host == ("127.0.0.1", 9000)
    assert s.kafka_host == ("127.0.0.1", 9092)
    assert s.milvus_host == ("127.0.0.1", 19530)
    assert s.dead_letter_topic == "lookalike.events.dlq"
    assert s.weights is None


def test_env_prefix_and_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOOKALIKE_TOPIC", "t1")
    monkeypatch.setenv("LOOKALIKE_WEIGHTS", str(tmp_path / "w.pth"))
    monkeypatch.setenv("LOOKALIKE_BATCH_SIZE", "7")
    s = Settings(_env_file=None)
    assert (s.topic, s.dead_letter_topic, s.batch_size) == ("t1", "t1.dlq", 7)
    assert s.weights == tmp_path / "w.pth"


def test_empty_weights_means_download(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOKALIKE_WEIGHTS", "")
    assert Settings(_env_file=None).weights is None


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("LOOKALIKE_BUCKET=photos\n")
    assert Settings(_env_file=env).bucket == "photos"


def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOKALIKE_BATCH_SIZE", "many")
    with pytest.raises(ValueError, match="batch_size"):
        Settings(_env_file=None)


def test_user_searches_are_strong_unless_asked_and_only_known_levels_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).search_consistency == "Strong"
    monkeypatch.setenv("LOOKALIKE_SEARCH_CONSISTENCY", "Bounded")
    assert Settings(_env_file=None).search_consistency == "Bounded"
    monkeypatch.setenv("LOOKALIKE_SEARCH_CONSISTENCY", "sometimes")
    with pytest.raises(ValueError, match="search_consistency"):
        Settings(_env_file=None)


def test_scoped_names_a_run_of_its_own() -> None:
    base = Settings(_env_file=None)
    s = base.scoped("eval-1a2b3c4d", bridge_port=1234)
    assert (s.bucket, s.topic, s.dead_letter_topic, s.group, s.collection) == (
        "eval-1a2b3c4d",
        "lookalike.eval-1a2b3c4d",
        "lookalike.eval-1a2b3c4d.dlq",
        "lookalike-eval-1a2b3c4d",
        "lookalike_eval_1a2b3c4d",
    )
    assert s.bridge_port == 1234
    assert (s.s3_endpoint, s.kafka_bootstrap, s.milvus_uri, s.model) == (
        base.s3_endpoint,
        base.kafka_bootstrap,
        base.milvus_uri,
        base.model,
    )
    assert base.bucket == "images"  # the configured settings are untouched


@pytest.mark.parametrize("name", ["", "ab", "Eval-1", "a_b", "bad name", "-lead", "x" * 41])
def test_scoped_refuses_names_a_bucket_or_collection_cannot_take(name: str) -> None:
    with pytest.raises(ValueError, match="scope name"):
        Settings(_env_file=None).scoped(name)


def test_as_env_round_trips(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    original = Settings(_env_file=None, bridge_token="s3cret", weights=tmp_path / "w.pth").scoped("run-1")
    env = original.as_env()
    assert env["LOOKALIKE_BRIDGE_TOKEN"] == "s3cret" and "LOOKALIKE_WEIGHTS" in env
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings(_env_file=None) == original


def test_the_change_feed_topic_is_derived_like_the_dead_letters() -> None:
    base = Settings(_env_file=None)
    assert base.change_feed_topic == "lookalike.events.indexed"
    assert base.scoped("run-1").change_feed_topic == "lookalike.run-1.indexed"
    assert Settings(_env_file=None, feed_topic="x.feed").change_feed_topic == "x.feed"


def test_importing_the_core_keeps_dotenv_files_out_of_the_environment(tmp_path: Path) -> None:
    """pymilvus calls load_dotenv() on import, which would copy the checkout's .env (demo.sh writes one)
    into os.environ; only Settings may read .env, so importing the core turns that off."""
    import os
    import subprocess
    import sys

    env_file = tmp_path / ".env"
    env_file.write_text("LOOKALIKE_TOPIC=from-a-dotenv-file\n")
    code = (
        "import os, lookalike, dotenv, pymilvus; "
        f"dotenv.load_dotenv({str(env_file)!r}); print(os.environ.get('LOOKALIKE_TOPIC'))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHON_DOTENV_DISABLED", "LOOKALIKE_TOPIC")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "None"
