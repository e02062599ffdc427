"""Module ids: every spelling a student might type, and a one-line error for the rest."""

from __future__ import annotations

import pytest

from grader.errors import TitoError


@pytest.mark.parametrize("typed", ["3", "03", "layers", "03_layers", " Layers "])
def test_module_ids_accept_number_padded_number_slug_and_folder(manifest, typed):
    assert manifest.find_module(typed).slug == "layers"


@pytest.mark.parametrize("typed", ["21", "0", "lyers", "03_tensor", "", "3.0", "-1"])
def test_unknown_module_ids_are_refused_with_the_valid_ids(manifest, typed):
    with pytest.raises(TitoError) as raised:
        manifest.find_module(typed)
    message = str(raised.value)
    assert "unknown module" in message and "01" in message and "20" in message
    assert "\n" not in message


@pytest.mark.parametrize("typed", ["perceptron", "1957", "XOR"])
def test_milestone_ids_accept_name_or_year(manifest, typed):
    assert manifest.find_milestone(typed).id in {"perceptron", "xor"}


def test_cli_bad_module_id_is_one_line_without_traceback(tito):
    result = tito("check", "lyers")
    assert result.code == 2
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: unknown module 'lyers'"), result.stderr


def test_cli_unavailable_module_is_a_clear_error(tito, course_without_module_20):
    unavailable = next(m for m in course_without_module_20.modules if not m.available)
    result = tito("check", unavailable.id)
    assert result.code == 2
    assert "not available yet" in result.stderr and "Traceback" not in result.stderr


def test_cli_check_needs_an_id_or_all(tito):
    result = tito("check")
    assert result.code == 2 and "--all" in result.stderr
