"""``lookalike upload``: files that are not images are named and left out; the summary says what it
cannot know (issue 25: ``upload fake.jpg`` said "uploaded 1 objects" and exited 0)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from infra import cli
from producers.cli import upload_summary
from producers.upload import plan_upload, split_images


def image(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(out, fmt)
    return out.getvalue()


def test_only_files_with_an_image_header_go_up(tmp_path: Path) -> None:
    (tmp_path / "ok.png").write_bytes(image("PNG"))
    (tmp_path / "fake.jpg").write_text("not a photo")
    (tmp_path / "empty.jpg").write_bytes(b"")
    jpeg = image("JPEG")
    (tmp_path / "cut.jpg").write_bytes(jpeg[:-50])  # its header is whole: the workers judge the rest
    images, refused = split_images(plan_upload([tmp_path]))
    assert [i.key for i in images] == ["cut.jpg", "ok.png"]
    assert [(i.key, why) for i, why in refused] == [
        ("empty.jpg", "empty file"),
        ("fake.jpg", "not an image (unrecognised format)"),
    ]


def test_a_fake_jpeg_alone_is_refused_with_one_line_and_status_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    fake = tmp_path / "fake.jpg"
    fake.write_text("not a photo")
    assert cli.main(["upload", str(fake), "--quiet"]) == 1  # nothing is sent: no S3 needed
    err = capsys.readouterr().err
    assert f"skipped {fake}: not an image (unrecognised format)" in err
    assert "uploaded 0 objects" in err and "skipped 1 file that is not an image" in err


def test_the_summary_says_what_the_upload_cannot_verify() -> None:
    text = upload_summary(3, "images", "/demo/", 0)
    assert text.startswith("uploaded 3 objects to s3://images/demo")
    assert "whether each was indexed or refused is not known here" in text and "objects KEY" in text
    assert "skipped 2 files" in upload_summary(1, "images", "", 2)
