from pathlib import Path

import pytest
from npe2 import PluginManifest

from blurmap import estimators
from blurmap.cli import methods_table

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = PluginManifest.from_file(ROOT / "napari.yaml")
PREFIX = "napari-blurmap."


@pytest.mark.parametrize("name", list(estimators()))
def test_each_record_is_complete(name):
    est = estimators()[name]
    assert est.units in ("px", "relative")
    assert est.halo >= 0 and est.halo % est.align_for(est.defaults()) == 0
    for p in est.params:
        if p.default is not None:
            assert p.minimum is None or p.default >= p.minimum
            assert p.maximum is None or p.default <= p.maximum
        else:
            assert p.nullable


def test_registry_is_a_copy():
    estimators().clear()
    assert "gradient_ratio" in estimators()


def test_manifest_and_registry_agree():
    widget_commands = {w.command for w in MANIFEST.contributions.widgets}
    analysis = {PREFIX + "sigma_map_widget", PREFIX + "focal_profile_widget", PREFIX + "focus_series_widget"}  # not one estimator each
    per_method = {c[len(PREFIX):-len("_widget")] for c in widget_commands - analysis}
    assert per_method == set(estimators())
    # Layers > Measure holds one submenu, blurmap, and it holds every dock
    [measure] = MANIFEST.contributions.menus["napari/layers/measure"]
    assert measure.submenu == PREFIX + "measure"
    assert {item.command for item in MANIFEST.contributions.menus[measure.submenu]} == widget_commands


def test_manifest_python_names_import():
    import importlib

    MANIFEST.validate_imports()  # raises if a python_name does not import
    for command in MANIFEST.contributions.commands:
        module, _, attr = command.python_name.partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), command.python_name


def test_methods_table_lists_every_estimator():
    table = methods_table()
    for name, est in estimators().items():
        assert f"| `{name}` | {est.units} | {est.halo} |" in table


def test_readme_table_is_the_generated_one():
    assert methods_table() in (ROOT / "README.md").read_text()
