"""tito.toml is complete, and every file it names for an available module exists."""

from __future__ import annotations

import pytest

from grader.errors import TitoError
from grader.manifest import Target, load_manifest
from tests.grader.conftest import COURSE_ROOT

CURRICULUM_SLUGS = [
    "tensor", "activations", "layers", "losses", "autograd", "optimizers", "training", "dataloader",
    "spatial", "tokenization", "embeddings", "attention", "transformers", "profiling",
    "quantization", "compression", "memoization", "acceleration", "benchmarking", "capstone",
]
CURRICULUM_MILESTONES = [("perceptron", 1957), ("xor", 1969), ("microgpt", None), ("mlp", 1986), ("cnn", 1998),
                         ("transformer", 2017), ("systems", 2018), ("tinygpt", None)]  # in the order students meet them


def test_manifest_lists_the_twenty_modules_in_order(manifest):
    assert [m.slug for m in manifest.modules] == CURRICULUM_SLUGS
    assert [m.number for m in manifest.modules] == list(range(1, 21))
    for module in manifest.modules:
        assert module.points > 0
        assert all(p < module.number for p in module.prerequisites), module.id


def test_manifest_lists_the_eight_milestones_in_order(manifest):
    assert [(m.id, m.year) for m in manifest.milestones] == CURRICULUM_MILESTONES
    numbers = {m.number for m in manifest.modules}
    for milestone in manifest.milestones:
        assert set(milestone.requires) <= numbers
        assert milestone.targets, f"{milestone.id} has no target"
        assert milestone.smoke_targets, f"{milestone.id} has no smoke target"


def test_every_available_module_has_its_files(manifest):
    assert manifest.available_modules(), "no module is available"
    for module in manifest.available_modules():
        assert manifest.solution_path(module).is_file(), f"missing solution for {module.id}"
        assert (manifest.root / manifest.modules_dir / module.file).is_file(), f"missing stub for {module.id}"
        assert manifest.checkpoint_path(module).is_file(), f"missing checkpoint for {module.id}"
        assert manifest.hidden_path(module).is_file(), f"missing hidden tests for {module.id}"


def test_every_available_milestone_has_its_script_and_presets(manifest):
    for milestone in manifest.milestones:
        if not milestone.available:
            continue
        script = manifest.script_path(milestone)
        assert script.is_file(), f"missing {milestone.script}"
        presets = script.with_suffix(".yaml")
        assert presets.is_file(), f"missing presets {presets.name}"
        # a milestone's modules must themselves be available
        assert all(manifest.module_by_number(n).available for n in milestone.requires), milestone.id


def test_target_parsing_and_comparison():
    target = Target.parse("accuracy", ">= 0.98")
    assert (target.op, target.value) == (">=", 0.98)
    assert target.met_by(0.98) and not target.met_by(0.9799)
    assert Target.parse("drop", "<=0.005").met_by(0.004)
    with pytest.raises(TitoError, match="must look like"):
        Target.parse("accuracy", "at least 0.98")


def test_a_strict_target_below_zero_is_parsed_and_checked():
    """microGPT's target: its validation loss minus the bigram model's must be negative."""
    target = Target.parse("val_loss_gap_to_bigram", "< 0")
    assert (target.op, target.value) == ("<", 0.0)
    assert target.met_by(-0.05) and not target.met_by(0.0) and not target.met_by(0.01)
    assert Target.parse("gap", "<-0.5").met_by(-0.6) and Target.parse("gap", "> 0").met_by(1e-9)


def test_microgpt_needs_the_scalar_engine_and_the_tokenizer_with_what_they_build_on(manifest):
    microgpt = manifest.find_milestone("microgpt")
    needed = {5, 10} | {m.number for n in (5, 10) for m in manifest.dependencies(manifest.module_by_number(n))}
    assert set(microgpt.requires) == needed == {1, 2, 3, 4, 5, 10}
    assert microgpt.year is None and microgpt.available
    # no `datasets`: without the names it runs on the documentation text and never counts as achieved
    assert microgpt.datasets == ()
    assert [str(t) for t in microgpt.targets] == ["val_loss_gap_to_bigram < 0"]


def test_tinygpt_needs_every_module_and_holds_to_nanogpt_and_pytorch(manifest):
    tinygpt = manifest.find_milestone("tinygpt")
    assert tinygpt.requires == tuple(m.number for m in manifest.modules) and tinygpt.available
    assert tinygpt.datasets == ()  # like microgpt: runs without Shakespeare, never achieved then
    assert sorted(str(t) for t in tinygpt.targets) == ["val_loss <= 1.88", "val_loss_gap_to_pytorch <= 0.05"]


@pytest.mark.parametrize("numbers, shown", [
    ((1, 2, 3, 4, 5, 10), "01-05, 10"), ((1, 2, 3, 4), "01-04"), ((14,), "14"), ((1, 3), "01, 03"),
    ((10, 1, 2), "01-02, 10"), ((), ""),
])
def test_display_of_required_modules_as_ranges(numbers, shown):
    from grader.display import module_ranges

    assert module_ranges(numbers) == shown


def test_display_of_the_milestone_list_shows_a_broken_range_of_modules(tito):
    listed = tito("milestone", "list")
    assert listed.code == 0, listed.stderr
    microgpt = next(line for line in listed.stdout.splitlines() if " microgpt " in line)
    assert "01-05, 10" in microgpt and "needs 01 02 03 04 05 10" in microgpt
    assert "01-13" in next(line for line in listed.stdout.splitlines() if " transformer " in line)


def test_a_broken_manifest_is_a_one_line_error(tmp_path):
    (tmp_path / "tito.toml").write_text("[course\nname = 1")
    with pytest.raises(TitoError, match="not valid TOML"):
        load_manifest(tmp_path)
    (tmp_path / "tito.toml").write_text("[course]\nname = 'x'\n")
    with pytest.raises(TitoError, match="a required entry is missing: 'grading'"):
        load_manifest(tmp_path)
    (tmp_path / "tito.toml").write_bytes(bytes(range(128, 256)))
    with pytest.raises(TitoError, match="not a text file"):
        load_manifest(tmp_path)


@pytest.mark.parametrize("edit, message", [
    (("number = 2\n", 'number = "two"\n'), r"\[\[modules\]\] #2.number = 'two' should be a whole number"),
    (("test_timeout_seconds = 30 ", 'test_timeout_seconds = "x" '), r"test_timeout_seconds = 'x' should be a number"),
    (('slug = "tensor"\n', ""), r"\[\[modules\]\] #1 needs a field 'slug'"),
    (("workers = 2 ", "wrkers = 2 "), r"\[grading\] has an unknown field 'wrkers'"),
    (("prerequisites = [1]\n", 'prerequisites = ["one"]\n'), r"prerequisites = \['one'\] should be a list of whole numbers"),
])
def test_a_field_of_the_wrong_type_is_named_in_one_line(tmp_path, edit, message):
    text = (COURSE_ROOT / "tito.toml").read_text()
    assert edit[0] in text
    (tmp_path / "tito.toml").write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(TitoError, match=message):
        load_manifest(tmp_path)
