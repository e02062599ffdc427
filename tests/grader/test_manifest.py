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
CURRICULUM_MILESTONES = {"perceptron": 1957, "xor": 1969, "mlp": 1986, "cnn": 1998,
                         "transformer": 2017, "systems": 2018, "tinygpt": None}


def test_manifest_lists_the_twenty_modules_in_order(manifest):
    assert [m.slug for m in manifest.modules] == CURRICULUM_SLUGS
    assert [m.number for m in manifest.modules] == list(range(1, 21))
    for module in manifest.modules:
        assert module.points > 0
        assert all(p < module.number for p in module.prerequisites), module.id


def test_manifest_lists_the_seven_milestones(manifest):
    assert {m.id: m.year for m in manifest.milestones} == CURRICULUM_MILESTONES
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
