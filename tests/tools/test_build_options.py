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


def _preprocess_cpu_isa_header(*defines: str) -> tuple[int, str]:
    """Compiles a unit that includes csrc/ops/cpu/cpu_isa.h with the given -D flags (syntax only)
    and reports GRADEXT_CPU_VARIANT_DEFAULT through a static_assert that names its value."""
    import shutil
    import subprocess
    import tempfile

    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("no g++ on PATH")
    unit = (
        '#include "ops/cpu/cpu_isa.h"\n'
        'static_assert(GRADEXT_CPU_VARIANT_DEFAULT == 0, "portable variant built");\n'
    )
    with tempfile.TemporaryDirectory() as tmp:
        source = pathlib.Path(tmp) / "unit.cpp"
        source.write_text(unit)
        run = subprocess.run(
            [compiler, "-std=c++17", "-fsyntax-only", f"-I{ROOT / 'csrc'}", *defines, str(source)],
            capture_output=True,
            text=True,
        )
    return run.returncode, run.stderr


AVX512_ONLY = (
    "-DGRADEXT_CPU_VARIANT_DEFAULT=0",
    "-DGRADEXT_CPU_VARIANT_AVX2=0",
    "-DGRADEXT_CPU_VARIANT_AVX512=1",
)


def test_a_native_build_without_gcc_s_target_pragmas_builds_the_portable_variant():
    """GRADEXT_CPU_VARIANTS=native picks the AVX-512 variant from the CPU's flags; a compiler that
    cannot build it (clang, stood in for by defining __clang__) gets the portable variant instead
    of no variant at all, while an explicit AVX-only list still stops with the header's error,
    and GCC keeps the native choice."""
    code, err = _preprocess_cpu_isa_header("-D__clang__", "-DGRADEXT_CPU_NATIVE=1", *AVX512_ONLY)
    assert code != 0 and "portable variant built" in err
    code, err = _preprocess_cpu_isa_header("-D__clang__", *AVX512_ONLY)
    assert code != 0 and "leaves out the portable kernels" in err
    code, err = _preprocess_cpu_isa_header("-DGRADEXT_CPU_NATIVE=1", *AVX512_ONLY)
    assert code == 0, err


def test_setup_marks_a_native_build(setup_module, monkeypatch):
    """setup.py passes GRADEXT_CPU_NATIVE=1 for a native build only (cpu_isa.h reads it)."""
    monkeypatch.setenv("GRADEXT_CPU_VARIANTS", "native")
    assert ("GRADEXT_CPU_NATIVE", "1") in setup_module.cpu_variant_macros()
    monkeypatch.setenv("GRADEXT_CPU_VARIANTS", "all")
    assert ("GRADEXT_CPU_NATIVE", "1") not in setup_module.cpu_variant_macros()
