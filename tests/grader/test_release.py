"""Stubs are generated from the solutions; `tito release --check` catches a stale one."""

from __future__ import annotations

import shutil

from grader.stubs import SOLUTION_MARKERS, stub_text


def test_committed_stubs_match_their_solutions(tito):
    result = tito("release", "--check")
    assert result.code == 0, result.stdout + result.stderr
    assert "stubs and the checkpoint digests match" in result.stdout


def test_stubs_hold_no_solution_code(manifest):
    for module in manifest.available_modules():
        solution = manifest.solution_path(module).read_text()
        stub = stub_text(solution)
        assert not any(marker in stub for marker in SOLUTION_MARKERS), module.id
        regions = [r.split("### END SOLUTION")[0] for r in solution.split("### BEGIN SOLUTION")[1:]]
        # each region became exactly one "write your code here" stub...
        assert stub.count("# YOUR CODE HERE\n") == len(regions), module.id
        assert stub.count("raise NotImplementedError()") >= len(regions), module.id
        # ...and no region's code is left anywhere in the stub
        for region in regions:
            block = "\n".join(line.strip() for line in region.splitlines() if line.strip())
            if block.count("\n") >= 1:
                flattened_stub = "\n".join(line.strip() for line in stub.splitlines() if line.strip())
                assert block not in flattened_stub, f"{module.id}: solution text survives in the stub: {block[:80]}"


def test_stubs_import_cleanly(manifest, tmp_path):
    import subprocess
    import sys

    from grader.stubs import write_stubs

    write_stubs(manifest, tmp_path)
    code = "; ".join(f"import tinytorch.{m.slug}" for m in manifest.available_modules())
    done = subprocess.run([sys.executable, "-c", code], cwd=manifest.root, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "TITO_MODULES_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr


def test_release_check_fails_on_a_hand_edited_stub(tito, manifest, tmp_path, monkeypatch):
    copy = tmp_path / "modules"
    shutil.copytree(manifest.root / manifest.modules_dir, copy)
    stub = copy / manifest.modules[1].file
    stub.write_text(stub.read_text() + "\n# edited by hand\n")
    monkeypatch.setenv("TITO_MODULES_DIR", str(copy))
    result = tito("release", "--check")
    assert result.code == 2
    assert manifest.modules[1].file in result.stdout and "tito release --stubs" in result.stderr


def test_release_stubs_rewrites_a_stale_stub(tito, manifest, tmp_path, monkeypatch):
    copy = tmp_path / "modules"
    shutil.copytree(manifest.root / manifest.modules_dir, copy)
    stub = copy / manifest.modules[0].file
    stub.write_text("# stale\n")
    monkeypatch.setenv("TITO_MODULES_DIR", str(copy))
    assert tito("release", "--stubs").code == 0
    assert stub.read_text() == stub_text(manifest.solution_path(manifest.modules[0]).read_text())
    assert tito("release", "--check").code == 0
