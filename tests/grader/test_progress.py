"""The progress file: atomic, recoverable, never a crash."""

from __future__ import annotations

import json

import pytest

from grader.progress import ModuleResult, Progress, ProgressStore, now


def a_result(status: str = "passed") -> ModuleResult:
    return ModuleResult(status=status, score=10, points=10, passed=5, total=5, checked_at=now(), sha256="ab")


def test_progress_round_trips_through_the_file(tmp_path):
    store = ProgressStore(tmp_path / "progress.json")
    with store.update() as progress:
        progress.modules["01"] = a_result()
    loaded = store.load()
    assert (loaded.modules["01"].status, loaded.modules["01"].score, loaded.modules["01"].sha256) == ("passed", 10, "ab")
    assert loaded.module_passed("01") and not loaded.module_passed("02")


def test_save_leaves_no_temporary_files(tmp_path):
    store = ProgressStore(tmp_path / "progress.json")
    store.save(Progress(modules={"01": a_result()}))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["progress.json"]


def test_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    store = ProgressStore(tmp_path / "progress.json")
    store.save(Progress(modules={"01": a_result()}))
    before = (tmp_path / "progress.json").read_text()

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(json, "dump", explode)
    with pytest.raises(OSError):
        store.save(Progress(modules={"02": a_result()}))
    assert (tmp_path / "progress.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["progress.json"]


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe garbage", b'{"version": 99}', b"[1, 2]",
                                     b'{"version": 1, "modules": {"01": {"status": "passed"}}}',
                                     b'{"version": 1, "modules": []}', b'{"version": 1, "modules": null}',
                                     b'{"version": 1, "modules": {"01": {"status": "passed", "score": "x", '
                                     b'"points": 6, "passed": 1, "total": 1, "checked_at": "", "sha256": ""}}}'])
def test_a_corrupt_file_is_set_aside_with_a_warning(tmp_path, content):
    path = tmp_path / "progress.json"
    path.write_bytes(content)
    store = ProgressStore(path)
    progress = store.load()
    assert progress.modules == {} and progress.milestones == {}
    assert len(store.warnings) == 1 and "could not be read" in store.warnings[0]
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("progress.json.corrupt-")]
    assert len(aside) == 1 and aside[0].read_bytes() == content  # the bad file is kept, not lost
    assert not path.exists()


def test_status_survives_a_corrupt_progress_file(tito, state_dir):
    state_dir.mkdir(parents=True)
    (state_dir / "progress.json").write_text("{ truncated")
    result = tito("status")
    assert result.code == 0, result.stderr
    assert "could not be read" in result.stderr and "Traceback" not in result.stderr
    assert "tensor" in result.stdout


def test_two_corrupt_files_set_aside_at_once_are_both_kept(tmp_path):
    path = tmp_path / "progress.json"
    for content in (b"{first", b"{second"):
        path.write_bytes(content)
        ProgressStore(path).load()
    kept = sorted(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("progress.json.corrupt-"))
    assert kept == [b"{first", b"{second"]
