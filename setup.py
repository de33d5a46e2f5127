"""Build gradext._C: C++ CPU kernels always, CUDA kernels when a GPU is visible with a CUDA
toolkit and a CUDA build of torch (or FORCE_CUDA=1, which CI sets: the CUDA sources compile on
every submission). GRADEXT_DISABLE_CUDA=1 builds the CPU kernels only.

Environment:
  FORCE_CUDA=1            build the CUDA kernels even when no GPU is visible (CI does)
  GRADEXT_DISABLE_CUDA=1  skip the CUDA kernels (fast CPU-only builds)
  GRADEXT_CPU_VARIANTS    the CPU kernel variants to compile: "all" (default: default, avx2 and
                          avx512, for any x86-64), "native" (only the best one this machine's
                          CPU runs: a third of the kernels' compile time; scripts/setup.sh's
                          in-place build), or a comma list such as "default,avx512"
  TORCH_CUDA_ARCH_LIST    CUDA architectures; defaults to 9.0 (H100) when no GPU is visible
  CUDA_HOME               CUDA toolkit prefix; found from nvcc when unset
  MAX_JOBS                parallel compile jobs (ninja)
  GRADEXT_DEBUG_INFO=1    keep the debug information (-g) that Python's compile flags ask for
"""

import glob
import os
import re
import shutil
import sys
import sysconfig
import time

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))


def log(message):
    print(f"[gradext build] {message}", flush=True)


def _has_cudart(prefix):
    return bool(prefix) and any(
        os.path.exists(os.path.join(prefix, sub, "libcudart.so"))
        for sub in ("lib64", "lib", os.path.join("targets", "x86_64-linux", "lib"))
    )


def find_cuda_home():
    """The toolkit prefix. On some machines the nvcc on PATH is a small wrapper script outside
    the toolkit, from whose folder torch would guess a prefix without libcudart; follow the
    wrapper to the real toolkit instead."""
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            return os.environ[var]
    candidates = []
    nvcc = shutil.which("nvcc")
    if nvcc:
        real = os.path.realpath(nvcc)
        candidates.append(os.path.dirname(os.path.dirname(real)))
        if os.path.getsize(real) < 65536:
            with open(real, "rb") as f:
                text = f.read().decode("utf-8", errors="ignore")
            candidates += [m.group(1) for m in re.finditer(r"(/[^\s'\"]+)/bin/nvcc", text)]
    candidates.append("/usr/local/cuda")
    for prefix in candidates:
        if _has_cudart(prefix) and os.path.exists(os.path.join(prefix, "bin", "nvcc")):
            return prefix
    return None


def wheel_cuda_include():
    """ATen's CUDA headers include cusparse.h and friends, which a bare toolkit may lack; CUDA
    builds of torch install them with the nvidia-* wheels."""
    # Every site folder on the path, not just this interpreter's own: in a virtual environment
    # made with --system-site-packages the nvidia-* wheels can be split between the two (seen
    # here with torch 2.11: cublas in the venv, cusparse in the base interpreter's folder).
    paths = sysconfig.get_paths()
    bases = dict.fromkeys([paths["purelib"], paths["platlib"], *sys.path])
    for base in bases:
        for inc in sorted(glob.glob(os.path.join(base or ".", "nvidia", "cu*", "include"))):
            if os.path.exists(os.path.join(inc, "cusparse.h")):
                return inc
    return None


def want_cuda(torch, cuda_home):
    if os.environ.get("GRADEXT_DISABLE_CUDA", "0") == "1":
        return False, "GRADEXT_DISABLE_CUDA=1"
    if os.environ.get("FORCE_CUDA", "0") == "1":
        return True, "FORCE_CUDA=1"
    if torch.version.cuda is None:
        return False, "torch is a CPU-only build"
    if cuda_home is None:
        return False, "no CUDA toolkit (nvcc) found"
    # Compiling the CUDA kernels takes most of a first build on a small machine; without a GPU
    # to run them that is time lost before the first result. CI sets FORCE_CUDA=1 so that a
    # CUDA compile error still fails it.
    if not torch.cuda.is_available():
        return False, "no GPU visible (FORCE_CUDA=1 compiles the CUDA kernels anyway)"
    return True, f"torch {torch.__version__} (CUDA {torch.version.cuda}) and toolkit at {cuda_home}"


CPU_VARIANTS = ("default", "avx2", "avx512")
# The CPU flags (/proc/cpuinfo) each variant needs: csrc/ops/cpu/cpu_isa.cpp checks the same.
CPU_VARIANT_FLAGS = {
    "avx2": {"avx2", "fma"},
    "avx512": {"avx512f", "avx512dq", "avx512vl", "avx512bw"},
}


def native_cpu_variant():
    """The best variant this machine's CPU runs, or None where its flags cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            flags_line = next(line for line in f if line.startswith("flags"))
    except (OSError, StopIteration):
        return None
    flags = set(flags_line.split(":", 1)[1].split())
    for variant in ("avx512", "avx2"):
        if CPU_VARIANT_FLAGS[variant] <= flags:
            return variant
    return "default"


def cpu_variants_spec():
    """GRADEXT_CPU_VARIANTS as given, lower case ('all' when unset)."""
    return os.environ.get("GRADEXT_CPU_VARIANTS", "all").strip().lower()


def cpu_variants():
    """The CPU kernel variants to compile (GRADEXT_CPU_VARIANTS) and why."""
    spec = cpu_variants_spec()
    if spec in ("", "all"):
        return list(CPU_VARIANTS), "GRADEXT_CPU_VARIANTS=all"
    if spec == "native":
        native = native_cpu_variant()
        if native is None:
            return list(CPU_VARIANTS), "GRADEXT_CPU_VARIANTS=native, CPU flags unreadable: all"
        return [native], "GRADEXT_CPU_VARIANTS=native: the best this CPU runs"
    chosen = [name.strip() for name in spec.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in CPU_VARIANTS]
    if unknown or not chosen:
        raise SystemExit(
            f"GRADEXT_CPU_VARIANTS={spec!r}: expected 'all', 'native' or a comma list of "
            f"{', '.join(CPU_VARIANTS)}"
        )
    return [name for name in CPU_VARIANTS if name in chosen], f"GRADEXT_CPU_VARIANTS={spec}"


def cpu_variant_macros():
    """The -D macros that tell every translation unit which CPU variants to compile."""
    variants, variants_why = cpu_variants()
    macros = [
        (f"GRADEXT_CPU_VARIANT_{name.upper()}", "1" if name in variants else "0")
        for name in CPU_VARIANTS
    ]
    if cpu_variants_spec() == "native":
        # cpu_isa.h: where the compiler cannot build the native AVX variant, the portable one.
        macros.append(("GRADEXT_CPU_NATIVE", "1"))
    log(f"CPU kernel variants: {', '.join(variants)} ({variants_why})")
    return macros


def make_extension():
    cuda_home = find_cuda_home()
    if cuda_home:
        os.environ["CUDA_HOME"] = cuda_home  # must be set before cpp_extension is imported
    import torch
    from torch.utils.cpp_extension import CppExtension, CUDAExtension

    with_cuda, why = want_cuda(torch, cuda_home)
    sources = sorted(glob.glob(os.path.join("csrc", "*.cpp")))
    sources += sorted(glob.glob(os.path.join("csrc", "ops", "*.cpp")))
    sources += sorted(glob.glob(os.path.join("csrc", "ops", "cpu", "*.cpp")))
    # -ffp-contract=off / --fmad=false: no fused multiply-adds, so the noise transforms round
    # identically on every CPU ISA and on the GPU (see csrc/common/scalar_math.h).
    # -fno-math-errno -fno-trapping-math: let GCC vectorize sqrt and if-convert the branch-free
    # selects in those transforms (no effect on results: gradext reads neither errno nor FP flags).
    # -fopenmp: without it at::parallel_for runs on one thread.
    # The language standard is named here, as torch's builder would add it, so that the
    # precompiled headers (with_precompiled_headers) are built with the sources' exact flags.
    cxx_flags = ["-O3", "-fopenmp", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math"]
    cxx_flags.append(torch_cxx_standard())
    # Python's own compile flags carry -g. Debug information for these template-heavy sources is
    # a sixth to a third of each file's compile time and 95 % of the objects' size (gamma's
    # autograd file: 6.2 s and 8.5 MB with it, 4.4 s and 0.2 MB without), so it is dropped unless
    # asked for. CMake's Release build of the same sources has none either.
    if os.environ.get("GRADEXT_DEBUG_INFO", "0") != "1":
        cxx_flags.append("-g0")
    define_macros = cpu_variant_macros()
    include_dirs = [os.path.join(ROOT, "csrc")]
    if with_cuda:
        sources += sorted(glob.glob(os.path.join("csrc", "ops", "cuda", "*.cu")))
        define_macros.append(("GRADEXT_WITH_CUDA", None))
        if not os.environ.get("TORCH_CUDA_ARCH_LIST") and not torch.cuda.is_available():
            os.environ["TORCH_CUDA_ARCH_LIST"] = "9.0"
        extra_include = wheel_cuda_include()
        if extra_include and not os.path.exists(os.path.join(cuda_home, "include", "cusparse.h")):
            include_dirs.append(extra_include)
        log(
            f"building CPU + CUDA kernels ({why}); "
            f"TORCH_CUDA_ARCH_LIST={os.environ.get('TORCH_CUDA_ARCH_LIST', '(torch default)')}"
        )
        nvcc_flags = [
            "-O3",
            "--fmad=false",
            "-lineinfo",
            "--expt-relaxed-constexpr",
            "-DGRADEXT_WITH_CUDA",
        ]
        return CUDAExtension(
            name="gradext._C",
            sources=sources,
            include_dirs=include_dirs,
            define_macros=define_macros,
            extra_compile_args={"cxx": cxx_flags, "nvcc": nvcc_flags},
            extra_link_args=["-fopenmp"],
        )
    log(f"building CPU kernels only ({why})")
    return CppExtension(
        name="gradext._C",
        sources=sources,
        include_dirs=include_dirs,
        define_macros=define_macros,
        extra_compile_args={"cxx": cxx_flags},
        extra_link_args=["-fopenmp"],
    )


# The headers (nearly) every C++ source parses: about 11 s for <ATen/ATen.h> and 10 s for
# autograd's custom_function.h per file on a Zen1 core (docs/design.md), paid by some 30 files.
# They are precompiled once per build into a GCC precompiled header that every C++ source then
# loads first (-include). GCC uses the .gch only where it was built with the same options and
# otherwise parses the header text as usual (-Winvalid-pch says so in the build log), so the
# result never depends on it. GRADEXT_NO_PCH=1 turns it off.
PRECOMPILED_HEADERS = (
    "ATen/ATen.h",
    "ATen/Parallel.h",
    "torch/library.h",
    "torch/csrc/autograd/custom_function.h",
)


def torch_cxx_standard() -> str:
    """The -std flag torch's extension builder adds (c++20 from torch 2.14, c++17 before)."""
    from torch.utils import cpp_extension

    with open(cpp_extension.__file__) as f:
        source = f.read()
    # The flags of its Unix compile command, `['-fPIC', '-std=c++NN']` (the docstrings name other
    # standards in examples); failing that, the standard it names most often.
    found = re.search(r"\['-fPIC', '(-std=c\+\+\d+)'\]", source)
    if found:
        return found.group(1)
    standards = re.findall(r"-std=c\+\+\d+", source)
    return max(set(standards), key=standards.count) if standards else "-std=c++17"


def with_precompiled_headers(build_ext_class):
    class BuildWithPrecompiledHeaders(build_ext_class):
        def build_extension(self, ext):
            if os.environ.get("GRADEXT_NO_PCH") != "1" and self.compiler.compiler_type == "unix":
                self._precompile(ext)
            super().build_extension(ext)

        def _precompile(self, ext):
            import subprocess

            cxx_flags = ext.extra_compile_args
            cxx_flags = cxx_flags["cxx"] if isinstance(cxx_flags, dict) else cxx_flags
            folder = os.path.abspath(os.path.join(self.build_temp, "pch"))
            os.makedirs(folder, exist_ok=True)
            header = os.path.join(folder, "gradext_pch.h")
            text = "// Generated by setup.py (PRECOMPILED_HEADERS).\n"
            text += "".join(f"#include <{h}>\n" for h in PRECOMPILED_HEADERS)
            if not os.path.exists(header) or open(header).read() != text:
                with open(header, "w") as f:
                    f.write(text)
            includes = [f"-I{d}" for d in ext.include_dirs + list(self.compiler.include_dirs)]
            macros = [f"-D{n}" if v is None else f"-D{n}={v}" for n, v in ext.define_macros]
            command = [
                os.environ.get("CXX", "c++"),
                *self.compiler.compiler_so[1:],
                *includes,
                *macros,
            ] + [*cxx_flags, "-x", "c++-header", header, "-o", header + ".gch"]
            started = time.time()
            subprocess.run(command, check=True)
            log(f"precompiled {', '.join(PRECOMPILED_HEADERS)} in {time.time() - started:.0f} s")
            cxx_flags += ["-include", header, "-Winvalid-pch"]

    return BuildWithPrecompiledHeaders


def main():
    extension = make_extension()  # first: it sets CUDA_HOME before cpp_extension is imported
    from torch.utils.cpp_extension import BuildExtension

    setup(
        packages=find_packages(include=["gradext", "gradext.*"]),
        ext_modules=[extension],
        cmdclass={
            "build_ext": with_precompiled_headers(BuildExtension.with_options(use_ninja=True))
        },
        zip_safe=False,
    )


# A plain call, not sys.exit(main()): setuptools' PEP 517 backend runs this file as __main__ and
# treats SystemExit(None) as a failure, which killed `pip install .` (non-editable) silently.
if __name__ == "__main__":
    main()
