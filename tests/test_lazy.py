"""The lazy-import helper (kdnas_bench/lazy.py): a package's names and a heavy module, imported on first use."""

from __future__ import annotations

import builtins
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kdnas_bench.lazy import LazyModule, lazy_exports, lazy_module


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A package ``toypkg`` with a submodule ``sub`` (``VALUE = 1``) that records its import in ``IMPORTED``."""
    pkg = tmp_path / "toypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from kdnas_bench.lazy import lazy_exports\n"
                                     "__getattr__, __dir__ = lazy_exports(__name__, {'VALUE': 'sub'})\n")
    (pkg / "sub.py").write_text("import builtins\nbuiltins.TOY_IMPORTED = True\nVALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "toypkg"
    for name in ("toypkg", "toypkg.sub"):
        sys.modules.pop(name, None)
    builtins.__dict__.pop("TOY_IMPORTED", None)


def test_a_package_name_is_imported_when_read(toy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = importlib.import_module(toy)
    assert "toypkg.sub" not in sys.modules and not hasattr(builtins, "TOY_IMPORTED")
    assert "VALUE" in dir(pkg)
    assert pkg.VALUE == 1 and "toypkg.sub" in sys.modules
    monkeypatch.setattr(sys.modules["toypkg.sub"], "VALUE", 2)  # a replaced value is seen through the package
    assert pkg.VALUE == 2
    with pytest.raises(AttributeError, match="has no attribute 'missing'"):
        _ = pkg.missing


def test_lazy_exports_refuses_unknown_names() -> None:
    getattr_, dir_ = lazy_exports("kdnas_bench", {"thing": "errors"})
    with pytest.raises(AttributeError):
        getattr_("other")
    assert "thing" in dir_()


def test_a_lazy_module_imports_on_the_first_attribute_read(toy: str) -> None:
    sub = lazy_module(f"{toy}.sub")
    assert isinstance(sub, LazyModule) and f"{toy}.sub" not in sys.modules
    assert sub.VALUE == 1 and f"{toy}.sub" in sys.modules
    sys.modules[f"{toy}.sub"].VALUE = 3  # nothing copied: the stand-in reads the real module
    assert sub.VALUE == 3


def test_a_name_equal_to_its_submodule_stays_the_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``kdnas_bench.report.compare`` is the function of ``report/compare.py``: importing that submodule (which
    makes Python set the package attribute to the module) must not put the module in the function's place."""
    pkg = tmp_path / "shadowpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from kdnas_bench.lazy import lazy_exports\n"
                                     "__getattr__, __dir__ = lazy_exports(__name__, {'sub': 'sub'})\n")
    (pkg / "sub.py").write_text("def sub():\n    return 'the function'\n")
    (pkg / "user.py").write_text("from .sub import sub as _f\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        importlib.import_module("shadowpkg.user")  # the submodule is imported by a sibling first
        pkg_mod = importlib.import_module("shadowpkg")
        assert callable(pkg_mod.sub) and pkg_mod.sub() == "the function"
        assert isinstance(sys.modules["shadowpkg.sub"], type(sys))  # still importable as a module
    finally:
        for name in ("shadowpkg", "shadowpkg.sub", "shadowpkg.user"):
            sys.modules.pop(name, None)
