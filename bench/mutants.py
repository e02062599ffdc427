"""Mutation testing of the checkpoints: does each realistic student bug fail a check?

Each module keeps a bank of bugs a student could really write, `tests/mutants/NN_slug.yaml`
(instructor-only, like tests/hidden/): a list of entries

    - id: dropout-global-rng
      bug: dropout masks drawn from np.random, so manual_seed does not reproduce them
      find: "generator().random(x.shape)"
      replace: "np.random.random(x.shape)"

`find` must occur exactly once in the module's solution (add `count: all` to replace every
occurrence). For each entry the runner writes the edited solution into a scratch modules
folder, runs the visible checkpoint on it (earlier modules from the reference), and, if the
bug survives, the hidden checks. It prints one line per bug and the kill rates:

    .venv/bin/python bench/mutants.py 03 [05 ...]   (or --all)   [--jobs 2]

Too slow for `make test` (a module's bank takes minutes): run it whenever a checkpoint or a
solution changes, and keep visible >= 97% and visible + hidden = 100%.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

COURSE_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(COURSE_ROOT))

from grader.checkpoint import SourceChoice, run_tests  # noqa: E402
from grader.manifest import Manifest, Module, load_manifest  # noqa: E402


@dataclass
class Mutant:
    id: str
    bug: str
    find: str
    replace: str
    count: str = "one"


@dataclass
class Verdict:
    mutant: Mutant
    caught_by: str        # "visible", "hidden", "" (survived) or "invalid: why"
    failed: list[str]


def bank_path(module: Module) -> Path:
    return COURSE_ROOT / "tests" / "mutants" / f"{module.folder}.yaml"


def load_bank(module: Module) -> list[Mutant]:
    raw = yaml.safe_load(bank_path(module).read_text()) or []
    return [Mutant(**{k: str(v) for k, v in entry.items()}) for entry in raw]


def mutated(solution: str, mutant: Mutant) -> str:
    found = solution.count(mutant.find)
    if found == 0:
        raise ValueError("its `find` text is not in the solution")
    if found > 1 and mutant.count != "all":
        raise ValueError(f"its `find` text occurs {found} times (make it unique, or say count: all)")
    text = solution.replace(mutant.find, mutant.replace)
    compile(text, "mutant", "exec")
    return text


def judge_mutant(manifest: Manifest, module: Module, mutant: Mutant) -> Verdict:
    try:
        text = mutated(manifest.solution_path(module).read_text(), mutant)
    except (ValueError, SyntaxError) as error:
        return Verdict(mutant, f"invalid: {error}", [])
    with tempfile.TemporaryDirectory(prefix="tito-mutant-") as scratch:
        target = Path(scratch) / module.file
        target.parent.mkdir(parents=True)
        target.write_text(text)
        choice = SourceChoice(reference_deps=True, modules_dir=Path(scratch))
        for kind, path in (("visible", manifest.checkpoint_path(module)), ("hidden", manifest.hidden_path(module))):
            run = run_tests(manifest, module, [path], choice)
            failed = [t.name for t in run.tests if not t.passed] + run.errors
            if failed or not run.all_passed:
                return Verdict(mutant, kind, failed)
    return Verdict(mutant, "", [])


def report(module: Module, verdicts: list[Verdict]) -> tuple[int, int, int]:
    valid = [v for v in verdicts if not v.caught_by.startswith("invalid")]
    visible = sum(v.caught_by == "visible" for v in valid)
    hidden = sum(v.caught_by == "hidden" for v in valid)
    for verdict in verdicts:
        mark = {"visible": "✓ visible", "hidden": "~ hidden ", "": "✗ SURVIVED"}.get(verdict.caught_by, "! " + verdict.caught_by)
        first = f" ({verdict.failed[0][:70]})" if verdict.failed else ""
        print(f"  {mark}  {verdict.mutant.id}: {verdict.mutant.bug[:80]}{first}")
    n = max(len(valid), 1)
    print(f"{module.folder}: {len(valid)} bugs, visible {100 * visible / n:.1f}%, "
          f"visible+hidden {100 * (visible + hidden) / n:.1f}%")
    return len(valid), visible, hidden


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*")
    parser.add_argument("--all", action="store_true")
    parser.add_argument("--jobs", type=int, default=2)
    arguments = parser.parse_args()
    manifest = load_manifest(COURSE_ROOT)
    modules = ([m for m in manifest.available_modules() if bank_path(m).exists()] if arguments.all
               else [manifest.find_module(text) for text in arguments.modules])
    rows = []
    for module in modules:
        bank = load_bank(module)
        with ThreadPoolExecutor(arguments.jobs) as pool:
            verdicts = list(pool.map(lambda mutant: judge_mutant(manifest, module, mutant), bank))
        rows.append((module, *report(module, verdicts)))
    print("\n| module | bugs | visible | visible + hidden |\n| --- | --- | --- | --- |")
    for module, total, visible, hidden in rows:
        n = max(total, 1)
        print(f"| {module.folder} | {total} | {100 * visible / n:.1f}% | {100 * (visible + hidden) / n:.1f}% |")


if __name__ == "__main__":
    main()
