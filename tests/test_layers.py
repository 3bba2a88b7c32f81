"""The import-layer check that ``make lint`` runs: it passes on couponmix, and it does catch an upward import."""

import importlib.util
from pathlib import Path

CHECK = Path(__file__).resolve().parents[1] / ".ci" / "check_layers.py"


def load():
    spec = importlib.util.spec_from_file_location("check_layers", CHECK)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_couponmix_imports_only_downward():
    assert load().violations() == []


def test_the_check_catches_upward_imports_anywhere(tmp_path):
    """An upward import inside a function, a relative one, an unknown folder and the simulators are all named."""
    pkg = tmp_path / "couponmix"
    for folder in ("errors", "dataset", "ope", "mystery"):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "ope" / "fine.py").write_text("from couponmix.dataset import x\nfrom couponmix import __version__\n")
    (pkg / "dataset" / "bad.py").write_text("def f():\n    from couponmix.ope.fine import g\n")
    (pkg / "dataset" / "rel.py").write_text("from ..ope import fine\n")
    (pkg / "errors" / "sim.py").write_text("import simulators.market\n")
    found = load().violations(pkg)
    assert len(found) == 4, found
    assert any("bad.py:2: dataset imports couponmix.ope.fine" in line for line in found)
    assert any("rel.py:1: dataset imports couponmix.ope" in line for line in found)
    assert any("mystery" in line and "no place" in line for line in found)
    assert any("never imports the simulators" in line for line in found)


def test_no_function_is_80_lines_or_longer(tmp_path):
    """The shape check passes on couponmix and names a long function in a fake package."""
    spec = importlib.util.spec_from_file_location("check_shape", CHECK.with_name("check_shape.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.too_long() == []
    (tmp_path / "long.py").write_text("def f():\n" + "    x = 1\n" * 85 + "\n\ndef g():\n    return 1\n")
    found = mod.too_long(tmp_path)
    assert len(found) == 1 and "long.py:1: f is 86 lines" in found[0]
