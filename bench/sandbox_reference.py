"""Grade the reference solution of modules through the sandbox, as `tito grade` would.

Every test of the checkpoint and of the hidden checks must pass: a failure here means a test
breaks a rule of docs/authoring.md ("rules every test follows"), not that the reference is wrong.

    .venv/bin/python bench/sandbox_reference.py 14 [15 ...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

COURSE_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(COURSE_ROOT))

from grader.grading import expectations_cache  # noqa: E402
from grader.judge import expectations_for, judge, load_expectations  # noqa: E402
from grader.manifest import load_manifest  # noqa: E402
from grader.recording import record_in_sandbox  # noqa: E402


def main() -> int:
    manifest = load_manifest(COURSE_ROOT)
    failed = 0
    for wanted in sys.argv[1:] or ["--help"]:
        if wanted.startswith("-"):
            print(__doc__)
            return 2
        module = manifest.find_module(wanted)
        for kind in ("checkpoint", "hidden"):
            started = time.perf_counter()
            expectations = load_expectations(expectations_for(manifest, module, kind, expectations_cache()))
            code = manifest.solution_path(module).read_text()
            verdict = judge(expectations, record_in_sandbox(manifest, module, code, kind))
            problems = verdict.errors + [f"{t.name}: {t.message}" for t in verdict.tests if not t.passed]
            failed += bool(problems)
            print(f"{module.folder} {kind}: {verdict.passed_count}/{len(expectations.tests)} "
                  f"({time.perf_counter() - started:.1f} s)")
            for problem in problems[:5]:
                print("   ", problem.replace("\n", "\n    "))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
