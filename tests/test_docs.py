"""The documentation: docstring examples run, the public API is documented, the manifest and tables are generated."""

import doctest
import importlib
import inspect
import pkgutil
from pathlib import Path

import numpy as np
import pytest

import blurmap
from blurmap import synthetic

ROOT = Path(__file__).resolve().parents[1]
NO_QT = [m.name for m in pkgutil.walk_packages(blurmap.__path__, "blurmap.")
         if not m.name.startswith("blurmap.plugin._")]  # the plugin's Qt modules have no examples to run


@pytest.mark.parametrize("name", NO_QT)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0


def _public() -> list:
    """Every function and class a module of the core names in its __all__ (its public API)."""
    out = {id(getattr(blurmap, name)): getattr(blurmap, name) for name in blurmap.__all__}
    for name in NO_QT:
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", ()):
            obj = getattr(module, attr)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                out[id(obj)] = obj
    return list(out.values())


PUBLIC = _public()


def test_every_core_module_declares_its_public_api():
    missing = [name for name in NO_QT if not hasattr(importlib.import_module(name), "__all__")
               and not name.rsplit(".", 1)[-1].startswith("_")]
    assert not missing


@pytest.mark.parametrize("obj", PUBLIC, ids=lambda o: o.__qualname__)
def test_public_api_has_numpydoc_sections(obj):
    doc = inspect.getdoc(obj) or ""
    sections = ["Examples"]
    if inspect.isfunction(obj):
        sections += ["Returns"] + (["Parameters"] if inspect.signature(obj).parameters else [])
    missing = [s for s in sections if f"{s}\n{'-' * len(s)}" not in doc]
    assert not missing, f"{obj.__qualname__} lacks {missing}"


def test_every_public_example_is_collected():
    # an Examples section the doctest finder cannot see (a typo in ">>>") would pass silently
    finder = doctest.DocTestFinder()
    for obj in PUBLIC:
        tests = [t for t in finder.find(obj) if t.examples]
        assert tests, obj.__qualname__


def test_the_shipped_manifest_is_the_generated_one_and_the_root_copy_is_the_same_file():
    import yaml

    from blurmap.plugin import manifest

    shipped = ROOT / "src/blurmap/napari.yaml"
    assert yaml.safe_load(shipped.read_text()) == manifest.manifest()
    assert (ROOT / "napari.yaml").resolve() == shipped.resolve()


def test_the_manifest_sits_inside_the_package_so_any_install_finds_it():
    # npe2 looks for the entry point's file in the package's own folder: for an editable install
    # that is src/blurmap itself, so the file must be there, not copied in at build time
    from importlib.util import find_spec

    from npe2 import PluginManifest

    folders = find_spec("blurmap").submodule_search_locations
    assert any((Path(folder) / "napari.yaml").is_file() for folder in folders)
    installed = PluginManifest.from_distribution("napari-blurmap")
    from_file = PluginManifest.from_file(ROOT / "napari.yaml")
    assert installed.name == from_file.name == "napari-blurmap"
    assert installed.contributions.widgets == from_file.contributions.widgets
    from_file.validate_imports()


def test_every_estimator_has_a_dock_and_a_docs_page():
    from blurmap.plugin import manifest

    commands = {c["python_name"] for c in manifest.manifest()["contributions"]["commands"]}
    for name in blurmap.estimators():
        assert f"blurmap.plugin._docks:{name}_dock" in commands
        assert (ROOT / "docs" / "estimators" / f"{name}.md").is_file(), name


def test_readme_images_exist():
    readme = (ROOT / "README.md").read_text()
    images = [line.split("](", 1)[1].split(")", 1)[0] for line in readme.splitlines() if line.startswith("![")]
    assert len(images) >= 2 and all((ROOT / path).is_file() for path in images)
    assert len(readme.splitlines()) <= 200


def test_default_method_reads_like_the_doc_example():
    image = blurmap.blur(synthetic.dead_leaves((96, 96), seed=2), np.full((96, 96), 1.5))
    assert abs(np.nanmedian(blurmap.estimate(image, noise=0, shot_noise=0)) - 1.5) < 0.3


def test_every_estimators_limits_are_on_its_page():
    for name, est in blurmap.estimators().items():
        if est.limits:
            page = (ROOT / "docs" / "estimators" / f"{name}.md").read_text()
            assert "## Limits" in page and est.limits in page, name
