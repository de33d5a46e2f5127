# Sourced by scripts/prebuild_gpu_extension.sh and benchmarks/gpu_check.sh: what a built
# extension must match to be used in place of a fresh build (the sources and build script that
# go into it, the interpreter's ABI tag, the torch version). Works without git (the GPU machine
# gets a copy of the working tree).
#   source_stamp PYTHON
source_stamp() {
  local sources abi
  sources=$(find csrc -type f \( -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \) \
              | LC_ALL=C sort | xargs cat setup.py | sha256sum | cut -c1-16)
  abi=$("$1" -c "import sysconfig, torch; print(sysconfig.get_config_var('SOABI'), torch.__version__)")
  echo "$sources $abi ${TORCH_CUDA_ARCH_LIST:-9.0}"
}
