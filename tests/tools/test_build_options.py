"""setup.py's GRADEXT_CPU_VARIANTS: which CPU kernel variants a build compiles, and the errors
for a wrong value. (The extension this test run loaded says which variants it has: the build
under test is checked in tests/helpers/paths.py's skips and the cross-variant tests.)"""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

import gradext

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def setup_module():
    spec = importlib.util.spec_from_file_location("gradext_setup", ROOT / "setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines functions only: setup() runs under __main__
    return module


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, ["default", "avx2", "avx512"]),
        ("all", ["default", "avx2", "avx512"]),
        ("ALL", ["default", "avx2", "avx512"]),
        ("avx512,default", ["default", "avx512"]),
        (" avx2 ", ["avx2"]),
    ],
)
def test_variant_lists(setup_module, monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("GRADEXT_CPU_VARIANTS", raising=False)
    else:
        monkeypatch.setenv("GRADEXT_CPU_VARIANTS", value)
    assert setup_module.cpu_variants()[0] == expected


def test_native_is_the_best_variant_this_cpu_runs(setup_module, monkeypatch):
    """native: one variant, the one /proc/cpuinfo's flags allow, which is the one the loaded
    extension's run-time check (cpu_isa.cpp, __builtin_cpu_supports) picks as the best."""
    monkeypatch.setenv("GRADEXT_CPU_VARIANTS", "native")
    variants, why = setup_module.cpu_variants()
    native = setup_module.native_cpu_variant()
    if native is None:
        assert variants == ["default", "avx2", "avx512"] and "unreadable" in why
        return
    assert variants == [native]
    if gradext.has_extension() and native in gradext._extension._C.built_cpu_isas():
        assert gradext.cpu_isa() == native


@pytest.mark.parametrize("value", ["sse4", "avx512,neon", ","])
def test_unknown_variants_stop_the_build_with_the_choices(setup_module, monkeypatch, value):
    monkeypatch.setenv("GRADEXT_CPU_VARIANTS", value)
    with pytest.raises(SystemExit, match=r"expected 'all', 'native' or a comma list of default"):
        setup_module.cpu_variants()


def test_forcing_a_variant_the_build_left_out_names_what_it_has():
    if not gradext.has_extension():
        pytest.skip("gradext._C not loaded")
    C = gradext._extension._C
    built = C.built_cpu_isas()
    missing = [v for v in ("default", "avx2", "avx512") if v not in built]
    if not missing:
        pytest.skip("this build has every variant (GRADEXT_CPU_VARIANTS=all)")
    with pytest.raises(ValueError, match=rf"this build of gradext has no '{missing[0]}' CPU"):
        C.set_cpu_isa(missing[0])
    assert gradext.cpu_isa() in built
