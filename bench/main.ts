/**
 * The benchmark cases, the same as `CASES` in `bench/torch_bench.py` (the
 * PyTorch reference):
 *
 * - train-step-lenet: MACER step on 64 images 1x28x28, k = 16 (1,024 forward + backward), SGD
 * - train-step-resnet110: the same with 8 images 3x32x32 x 16 copies, ResNet-110 in train mode
 * - certify-lenet: 1,000 noisy copies of one 1x28x28 image, forward, argmax counts, softmax sums
 * - certify-resnet110: the same with 200 copies of one 3x32x32 image, ResNet-110 in eval mode
 *
 * and, only with `--methods` (or by name with `--case`), one training step of each
 * baseline at its paper's CIFAR-10 settings, `train-step-<method>-lenet` and
 * `train-step-<method>-resnet110` (see `BASELINES`), for the time-per-epoch
 * comparison of the README.
 *
 * `deno task bench [--json] [--case NAME]... [--methods] [--device cpu|gpu|auto] [--reps N]
 *   [--threads N] [--simd avx512|avx2|portable] [--torch]`
 * Times are taken after a device sync, so a gpu's queued work counts.
 * `--torch` runs the PyTorch reference (`bench/torch_bench.py`, or the script
 * `MACER_TORCH_BENCH` names) for each case right after ours (same machine, same
 * moment) and prints the ratio; it needs /usr/bin/python3 with torch (or the
 * interpreter `MACER_TORCH_PYTHON` names), and says on stderr why when the
 * reference could not run. With `--device gpu` the reference runs on CUDA with
 * TF32 off (full f32 arithmetic, as ours). `--simd` lowers the CPU kernels'
 * SIMD level (as `MACER_SIMD` does) and PyTorch's with it (`ATEN_CPU_CAPABILITY`,
 * `ONEDNN_MAX_CPU_ISA`, `OPENBLAS_CORETYPE`), so an AVX-512 machine shows an
 * AVX2 one's figures on both sides.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { setSimd, setThreads, simdLevel, threads } from "../compute/tensor.ts";
import {
  type DeviceSelection,
  listDevices,
  parseDeviceChoice,
  sync,
  useDevice,
} from "../compute/device.ts";
import { LeNet } from "../src/nn/lenet.ts";
import type { Module } from "../src/nn/module.ts";
import { ResNet110 } from "../src/nn/resnet.ts";
import { EngineSampler } from "../src/smoothing/sampler.ts";
import { type BaselineConfig, Trainer, type TrainMethod } from "../src/train/trainer.ts";

interface Case {
  model: () => Module;
  shape: number[];
  batch: number;
  k: number;
  kind: "train" | "certify";
  /** Forward+backward FLOPs per item, for the GFLOP/s column (multiply-adds x 2). */
  flopsPerItem: number;
  /** The training method (MACER when absent). */
  method?: TrainMethod;
  baseline?: Partial<BaselineConfig>;
  /** Only with `--methods` or `--case`. */
  extra?: boolean;
}

/**
 * Each baseline's training step at its paper's CIFAR-10 settings: Cohen's Gaussian
 * augmentation (one copy); Consistency (m = 2, lbd 20, eta 0.5); SmoothAdv (PGD, 10
 * steps, m = 2, multi-noise training, epsilon 64/256 as their README); SmoothMix (m = 2,
 * 4 steps, alpha 0.5, mix_step 1, eta 5). Images per step are chosen so that each
 * step sees as many noisy copies as the MACER case of its model (1,024 and 128), so
 * the time per image converts to a time per epoch.
 */
const BASELINES: Record<string, [TrainMethod, Partial<BaselineConfig>, number]> = {
  gaussian: ["gaussian", {}, 1],
  consistency: ["consistency", { numNoiseVec: 2, eta: 0.5 }, 2],
  smoothadv: [
    "smoothadv",
    { numNoiseVec: 2, numSteps: 10, epsilon: 0.25, warmup: 1, trainMultiNoise: true },
    2,
  ],
  smoothmix: [
    "smoothmix",
    { numNoiseVec: 2, numSteps: 4, alpha: 0.5, mixStep: 1, eta: 5, warmup: 1 },
    2,
  ],
};

// Multiply-adds per image: LeNet 2.29 M, ResNet-110 253 M (forward); backward ~2x.
const CASES: Record<string, Case> = {
  "train-step-lenet": {
    model: () => new LeNet(0),
    shape: [1, 28, 28],
    batch: 64,
    k: 16,
    kind: "train",
    flopsPerItem: 3 * 2 * 2.29e6,
  },
  "train-step-resnet110": {
    model: () => new ResNet110(0),
    shape: [3, 32, 32],
    batch: 8,
    k: 16,
    kind: "train",
    flopsPerItem: 3 * 2 * 253e6,
  },
  "certify-lenet": {
    model: () => new LeNet(0),
    shape: [1, 28, 28],
    batch: 1000,
    k: 1,
    kind: "certify",
    flopsPerItem: 2 * 2.29e6,
  },
  "certify-resnet110": {
    model: () => new ResNet110(0),
    shape: [3, 32, 32],
    batch: 200,
    k: 1,
    kind: "certify",
    flopsPerItem: 2 * 253e6,
  },
};

/**
 * The baselines' cases, each a copy of the MACER training case of its model with the
 * same noisy copies per step (1,024 for LeNet, 128 for ResNet-110) split as `m` per image.
 */
function methodCases(): Record<string, Case> {
  const out: Record<string, Case> = {};
  for (const [name, [method, baseline, m]] of Object.entries(BASELINES)) {
    for (const model of ["lenet", "resnet110"]) {
      const macer = CASES[`train-step-${model}`];
      out[`train-step-${name}-${model}`] = {
        ...macer,
        batch: macer.batch * macer.k / m,
        k: m,
        method,
        baseline,
        extra: true,
      };
    }
  }
  return out;
}
Object.assign(CASES, methodCases());

function seeded(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  });
}

/** One iteration of a case, ready to time. */
function prepare(c: Case): () => void {
  const model = c.model();
  const size = c.shape.reduce((a, b) => a * b, 1);
  if (c.kind === "certify") {
    model.eval();
    const sampler = new EngineSampler(model, seeded(size, 1), c.shape, {
      sigma: 0.25,
      beta: 16,
      seed: 0,
    });
    return () => void sampler.sample(c.batch, c.batch);
  }
  // The training step the trainer runs: noise, MACER loss, backward, SGD.
  const trainer = new Trainer(model, {
    method: c.method ?? "macer",
    baseline: c.baseline,
    sigma: 0.25,
    gaussNum: c.k,
    lbd: c.method === "consistency" ? 20 : 12,
    gamma: 8,
    beta: 16,
    lr: 0.01,
    noiseSeed: 0,
    dataSeed: 0,
  });
  const batch = {
    x: seeded(c.batch * size, 2),
    y: Int32Array.from({ length: c.batch }, (_, i) => (i * 7) % 10),
    size: c.batch,
    indices: new Int32Array(c.batch),
  };
  return () => void trainer.step(batch, c.shape);
}

interface Row {
  case: string;
  ms: number;
  items_per_s: number;
  gflop_per_s: number;
  device: string;
  adapter: string;
  threads: number;
}

function time(name: string, c: Case, reps: number, on: DeviceSelection): Row {
  const iteration = prepare(c);
  iteration(); // warm-up: first-touch allocations, lazy set-up, pipeline compilation
  sync();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) iteration();
  sync(); // the gpu's queued work counts
  const ms = (performance.now() - t0) / reps;
  const items = c.batch * c.k;
  return {
    case: name,
    ms: Math.round(ms * 100) / 100,
    items_per_s: Math.round((items / ms) * 1e4) / 10,
    gflop_per_s: Math.round((items * c.flopsPerItem) / ms / 1e5) / 10,
    device: on.device,
    adapter: on.adapter ?? `cpu (${threads()} threads, ${simdLevel()})`,
    threads: threads(),
  };
}

/** The PyTorch reference script: `MACER_TORCH_BENCH`, else `bench/torch_bench.py`. */
function torchBenchScript(): string {
  return Deno.env.get("MACER_TORCH_BENCH") ??
    new URL("./torch_bench.py", import.meta.url).pathname;
}

/** The interpreter of the PyTorch reference: `MACER_TORCH_PYTHON`, else Debian's. */
function torchPython(): string {
  return Deno.env.get("MACER_TORCH_PYTHON") ?? "/usr/bin/python3";
}

/**
 * The environment that holds PyTorch's CPU kernels to a SIMD level: ATen's
 * own kernels, oneDNN's (convolutions) and OpenBLAS's (GEMMs).
 */
export function torchSimdEnv(level: string): Record<string, string> {
  switch (level) {
    case "avx2":
      return {
        ATEN_CPU_CAPABILITY: "avx2",
        ONEDNN_MAX_CPU_ISA: "AVX2",
        OPENBLAS_CORETYPE: "Haswell",
      };
    case "portable":
      return {
        ATEN_CPU_CAPABILITY: "default",
        ONEDNN_MAX_CPU_ISA: "SSE41",
        OPENBLAS_CORETYPE: "Nehalem",
      };
    default:
      return {};
  }
}

/** Runs PyTorch's timing of the same case: its ms, or why it could not run. */
async function torchTime(
  name: string,
  reps: number,
  nThreads: number,
  device: "cpu" | "cuda",
  env: Record<string, string>,
): Promise<{ ms: number } | { error: string }> {
  const script = torchBenchScript();
  const python = torchPython();
  const args = [script, "--case", name, "--reps", String(reps), "--threads", String(nThreads)];
  try {
    const out = await new Deno.Command(python, {
      args: [...args, "--device", device],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = (b: Uint8Array) => new TextDecoder().decode(b).trim();
    if (!out.success) {
      const why = text(out.stderr).split("\n").at(-1) || `exit code ${out.code}`;
      return { error: `${script} failed: ${why}` };
    }
    const ms = JSON.parse(text(out.stdout).split("\n").at(-1)!).ms;
    if (typeof ms !== "number" || !(ms > 0)) return { error: `${script} printed no time` };
    return { ms };
  } catch (err) {
    return { error: `cannot run ${python} ${script}: ${(err as Error).message}` };
  }
}

async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        json: { type: "boolean", default: false },
        case: { type: "string", multiple: true },
        device: { type: "string", default: "auto" },
        reps: { type: "string", default: "3" },
        threads: { type: "string", default: "0" },
        simd: { type: "string" },
        torch: { type: "boolean", default: false },
        methods: { type: "boolean", default: false },
      },
    });
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    return 2;
  }
  const { values } = parsed;
  let on: DeviceSelection;
  try {
    on = useDevice(parseDeviceChoice(values.device, "--device"));
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    return 2;
  }
  const reps = Number(values.reps), nThreads = Number(values.threads);
  if (!Number.isInteger(reps) || reps < 1) {
    console.error(`error: --reps must be a whole number >= 1, got '${values.reps}'`);
    return 2;
  }
  if (!Number.isInteger(nThreads) || nThreads < 0) {
    console.error(`error: --threads must be a whole number >= 0, got '${values.threads}'`);
    return 2;
  }
  setThreads(nThreads);
  if (values.simd !== undefined) {
    try {
      setSimd(values.simd);
    } catch (err) {
      console.error(`error: --simd: ${(err as Error).message}`);
      return 2;
    }
  }
  const cpu = listDevices()[0];
  const lowered = cpu.simd !== cpu.simd_cpu;
  const names = values.case ??
    Object.keys(CASES).filter((name) => values.methods || !CASES[name].extra);
  for (const name of names) {
    if (!(name in CASES)) {
      console.error(`error: unknown case '${name}'; cases: ${Object.keys(CASES).join(", ")}`);
      return 2;
    }
  }
  if (!values.json) {
    const gemm = cpu.simd_gemm === cpu.simd ? "" : ` (gemm crate ${cpu.simd_gemm})`;
    console.log(
      `device: ${on.adapter ?? "cpu"}, cpu ${simdLevel()}${gemm}, ${threads()} threads` +
        (lowered && values.torch ? `; PyTorch held to ${cpu.simd}` : ""),
    );
  }
  if (cpu.simd_gemm !== cpu.simd) {
    console.error(
      `note: the gemm crate's kernels (im2col convolutions, linear layers) run at ` +
        `${cpu.simd_gemm}, not ${cpu.simd}; for ${cpu.simd} throughout, build with ` +
        "`cargo build --release --no-default-features --manifest-path compute/Cargo.toml " +
        "--target-dir compute/target/no-avx512` and set MACER_COMPUTE_LIB to its library",
    );
  }
  const width = Math.max(22, ...names.map((n) => n.length));
  for (const name of names) {
    const row: Row & { torch_ms?: number; speedup?: number } = time(name, CASES[name], reps, on);
    if (values.torch) {
      const t = await torchTime(
        name,
        reps,
        threads(),
        on.device === "gpu" ? "cuda" : "cpu",
        lowered ? torchSimdEnv(cpu.simd) : {},
      );
      if ("ms" in t) {
        row.torch_ms = t.ms;
        row.speedup = Math.round((t.ms / row.ms) * 100) / 100;
      } else console.error(`note: no PyTorch time for ${name}: ${t.error}`);
    }
    if (values.json) console.log(JSON.stringify(row));
    else {
      const vs = row.speedup === undefined ? "" : `  PyTorch ${row.torch_ms} ms -> ${row.speedup}x`;
      console.log(
        `${name.padEnd(width)} ${row.ms.toFixed(1).padStart(9)} ms ${
          row.items_per_s.toFixed(0).padStart(8)
        } items/s ${row.gflop_per_s.toFixed(1).padStart(7)} GFLOP/s${vs}`,
      );
    }
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
