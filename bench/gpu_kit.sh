#!/usr/bin/env bash
# The gpu tests and the benchmark on a machine with a GPU but no package registries (an
# NVIDIA H100 or H200 with its driver and PyTorch with CUDA): build everything here, carry
# it there, run it as one short command.
#
#   bash bench/gpu_kit.sh pack   # here: writes .gpu-kit/kit.tar.xz and .gl/*.deb (both ignored)
#   bash bench/gpu_kit.sh run    # there, in the repository root, with .gpu-kit and .gl beside
#
# `pack` bundles the compute library, its Rust test binary, a Deno binary and Deno's npm
# cache (xz: about 40 MB), and downloads the Vulkan loader packages a bare machine lacks.
# `run` unpacks them, finds the NVIDIA Vulkan driver, and writes under $OUT (or ./gpu-out):
# devices.jsonl, rust-gpu-tests.log, deno-gpu-tests.log, bench.txt (ours on the gpu beside
# PyTorch CUDA with TF32 off), torch-tf32.jsonl (PyTorch with TF32 on), summary.txt.
# Each step has its own time limit; together they stay under 9 minutes, one device call.
# MACER_KIT_BENCH overrides the benchmark's arguments (a dry run on a software adapter:
# MACER_KIT_BENCH="--reps 1 --case certify-lenet").
set -euo pipefail
cd "$(dirname "$0")/.."
kit=.gpu-kit

pack() {
  export PATH="$HOME/.cargo/bin:$PATH"
  local stage="$kit/stage"
  rm -rf "$kit" && mkdir -p "$stage/bin" "$stage/deno_dir"
  cargo build --release --quiet --manifest-path compute/Cargo.toml
  # The unit-test binary: cargo prints its path as the "executable" of the lib target.
  local tests
  tests=$(cargo test --release --lib --no-run --message-format=json --manifest-path compute/Cargo.toml |
    grep -o '"executable":"[^"]*"' | tail -1 | cut -d'"' -f4)
  cp compute/target/release/libmacer_compute.so "$stage/"
  cp "$tests" "$stage/bin/macer_compute_tests"
  cp "$(readlink -f "$(command -v deno)")" "$stage/bin/deno"
  # Deno's cache with every npm package the entry points import, so `--cached-only` works there.
  DENO_DIR="$stage/deno_dir" deno cache --quiet cli.ts bench/main.ts tests/gpu/*_test.ts
  tar -cJf "$kit/kit.tar.xz" -C "$stage" .
  rm -rf "$stage"
  # The Vulkan loader and GL dispatch packages (the driver itself is the machine's).
  if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
    mkdir -p .gl /tmp/amd64/partial
    local o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
    apt-get "${o[@]}" update -qq
    (cd .gl && apt-get "${o[@]}" download -qq libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
  fi
  for ignored in /.gpu-kit/ /.gl/; do
    grep -qxF "$ignored" .git/info/exclude 2>/dev/null || echo "$ignored" >>.git/info/exclude
  done
  du -sh "$kit/kit.tar.xz" .gl
  echo "device command: bash bench/gpu_kit.sh run   (carry: .gpu-kit, .gl)"
}

run() {
  local out="${OUT:-$PWD/gpu-out}" home=/tmp/macer-kit
  mkdir -p "$out" "$home"
  tar -xJf "$kit/kit.tar.xz" -C "$home"
  if ! ldconfig -p | grep -q libvulkan.so.1; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  if [ -f "$icd" ] && ! ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* >/dev/null 2>&1; then
    export VK_DRIVER_FILES="$icd"
  fi
  export PATH="$home/bin:$PATH" DENO_DIR="$home/deno_dir" DENO_NO_UPDATE_CHECK=1 NO_COLOR=1
  export MACER_COMPUTE_LIB="$home/libmacer_compute.so"
  export MACER_TORCH_PYTHON="${MACER_TORCH_PYTHON:-$(command -v python3)}"
  local summary="$out/summary.txt"
  { nvidia-smi -L || true; } >"$summary"
  step() { # step NAME SECONDS LOG COMMAND...: runs it with a time limit, notes the outcome
    local name=$1 limit=$2 log=$3; shift 3
    local t0=$SECONDS rc=0
    timeout "$limit" "$@" >"$out/$log" 2>&1 || rc=$?
    echo "$name: exit $rc, $((SECONDS - t0)) s (log: $log)" | tee -a "$summary"
  }
  local bench_args
  read -ra bench_args <<<"${MACER_KIT_BENCH:---reps 10}"
  step devices 30 devices.jsonl deno run -A --cached-only cli.ts devices
  step rust-gpu-tests 60 rust-gpu-tests.log macer_compute_tests gpu:: --test-threads 1
  step deno-gpu-tests 90 deno-gpu-tests.log deno test -A --cached-only tests/gpu/
  step bench 240 bench.txt deno run -A --cached-only bench/main.ts --device gpu --torch "${bench_args[@]}"
  step torch-tf32 90 torch-tf32.jsonl "$MACER_TORCH_PYTHON" bench/torch_bench.py --device cuda --tf32 "${bench_args[@]}"
  cat "$out/devices.jsonl" "$out/bench.txt" "$out/torch-tf32.jsonl" >>"$summary" || true
  cat "$summary"
}

case "${1:-}" in
  pack) pack ;;
  run) run ;;
  *) echo "usage: bash bench/gpu_kit.sh pack|run" >&2; exit 2 ;;
esac
