"""`tito release` and `tito solution`: what an instructor builds from the solutions."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .course import build_release, build_solution, course_root
from .distribution import require_empty, write_distribution
from .errors import TitoError
from .grading import JobResult, grade_reference
from .manifest import Manifest
from .stubs import stub_reports, write_stubs
from .workspace import checkpoint_digests_text, digests_path, write_checkpoint_digests


def require_solutions(manifest: Manifest) -> None:
    if not manifest.has_solutions():
        raise TitoError("this needs solutions/ (an instructor checkout); "
                        "reference solutions are not part of the student distribution")


def stale_files(manifest: Manifest) -> list[str]:
    """What `tito release --check` fails on: stubs and checkpoint digests that differ from the sources."""
    stale = [f"{report.stub_path} differs from what {manifest.solutions_dir}/{report.module.file} produces"
             for report in stub_reports(manifest) if not report.up_to_date]
    digests = digests_path(manifest)
    if not digests.exists() or digests.read_text() != checkpoint_digests_text(manifest):
        stale.append(f"{digests.relative_to(manifest.root)} differs from the checkpoints' sha256")
    return stale


def write_generated(manifest: Manifest) -> list[Path]:
    """The committed files generated from the sources: stubs and the checkpoint digests."""
    return [*write_stubs(manifest), write_checkpoint_digests(manifest)]


def release(manifest: Manifest, course: Path | None, out: Path | None,
            on_written: Callable[[Path], None]) -> Path:
    """Stubs, the nbgrader course's release notebooks and, with `out`, the student distribution."""
    require_solutions(manifest)
    if out:
        require_empty(out)
    for path in write_generated(manifest):
        on_written(path)
    course = build_release(manifest, course or course_root(manifest))
    if out:
        write_distribution(manifest, course, out)
    return course


def _shortfall(result: JobResult) -> str:
    """Where a reference lost points: "(hidden 11/12; checkpoint 20/20)" and the first failed visible test."""
    counts = "; ".join(f"{r.kind} {r.passed}/{r.total}" for r in result.results)
    failed = [t for r in result.results for t in r.tests if not t.passed]
    return f" ({counts})" + (f"; first failure: {failed[0].name}: {failed[0].message}" if failed else "")


def verify_solution(manifest: Manifest, course: Path | None,
                    on_result: Callable[[JobResult, int, int], None]) -> tuple[list[Path], list[JobResult]]:
    """nbgrader's solution notebooks, graded like any student's; an error unless all score full marks."""
    require_solutions(manifest)
    course = build_release(manifest, course or course_root(manifest))
    notebooks = build_solution(manifest, course)
    results = grade_reference(manifest, course, notebooks, on_result=on_result)
    short = [r for r in results if r.total < manifest.find_module(r.module_id).points or r.error]
    if short or len(results) != len(notebooks):
        worst = short[0] if short else None
        detail = f": {worst.module_id} scored {worst.total:g} {worst.error}{_shortfall(worst)}" if worst else ""
        raise TitoError(f"the reference solution does not grade to full marks{detail}")
    return notebooks, sorted(results, key=lambda r: r.module_id)
