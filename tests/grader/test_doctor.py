"""`tito doctor` reports a healthy installation, and names the file and line of a broken one."""

from __future__ import annotations


def test_doctor_is_happy_with_this_installation(tito):
    result = tito("doctor")
    assert result.code == 0, result.stdout
    assert "✓ torch: 2.13.0" in result.stdout and "✓ module 04" in result.stdout


def test_doctor_names_a_syntax_error_and_a_missing_file(tito, finished_student):
    (finished_student / "02_activations/activations.py").write_text("def broken(:\n    pass\n")
    (finished_student / "03_layers/layers.py").unlink()
    result = tito("doctor")
    assert result.code == 1
    assert "✗ module 02: syntax error in" in result.stdout and "activations.py:1" in result.stdout
    assert "✗ module 03" in result.stdout and "tito module reset 03" in result.stdout
