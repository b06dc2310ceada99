/**
 * Records a training run step by step, and exports what it was fed, so that
 * the MACER authors' PyTorch code can be run on exactly the same inputs
 * (`scripts/parity/torch_trajectory.py`) and the two trajectories compared
 * (`scripts/parity/compare.py`).
 *
 * Writes into `--out`:
 * - `init.safetensors`: the initial weights (PyTorch state-dict names);
 * - `order.bin`: the data order, int32, one permutation per epoch;
 * - `steps.jsonl`: per step the epoch, learning rate, noise offset, batch size,
 *   summed classification and robustness losses, kept count, gradient and
 *   parameter L2 norms (per tensor and in total);
 * - `final.safetensors`: the trained model (certify it with `deno task macer --task test`).
 *
 * The noise is the Philox stream `2 * seed` from offset 0, which the PyTorch
 * side regenerates bit for bit; `--init` and `--order` replace our
 * initialisation and data order with another program's (swap experiments).
 *
 * ```sh
 * deno run -A scripts/parity/trajectory.ts --dataset fashion-mnist \
 *   --root /usr/share/datasets/fashion-mnist --seed 0 --epochs 2 --out runs/parity/ours-0
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { setThreads } from "../../compute/tensor.ts";
import { BatchLoader } from "../../src/data/loader.ts";
import { isDatasetName, loadDataset } from "../../src/data/load.ts";
import { loadCheckpoint, saveCheckpoint } from "../../src/io/checkpoint.ts";
import { LeNet } from "../../src/nn/lenet.ts";
import type { Module } from "../../src/nn/module.ts";
import { firstImages } from "../../src/train/subset.ts";
import { Trainer } from "../../src/train/trainer.ts";

const { values: a } = parseArgs({
  options: {
    dataset: { type: "string", default: "fashion-mnist" },
    root: { type: "string", default: "/usr/share/datasets/fashion-mnist" },
    num_train: { type: "string", default: "0" },
    seed: { type: "string", default: "0" },
    epochs: { type: "string", default: "2" },
    steps: { type: "string", default: "0" },
    batch_size: { type: "string", default: "64" },
    lr: { type: "string", default: "0.01" },
    sigma: { type: "string", default: "0.25" },
    gauss_num: { type: "string", default: "16" },
    lbd: { type: "string", default: "12" },
    gamma: { type: "string", default: "8" },
    beta: { type: "string", default: "16" },
    threads: { type: "string", default: "0" },
    init: { type: "string" },
    order: { type: "string" },
    out: { type: "string" },
  },
});
if (!a.out) throw new Error("--out DIR is required");
if (!isDatasetName(a.dataset!)) throw new Error(`unknown dataset ${a.dataset}`);
const num = (k: keyof typeof a) => Number(a[k]);
const seed = num("seed");
setThreads(num("threads"));

let train = await loadDataset(a.dataset, { root: a.root, split: "train" });
if (num("num_train") > 0) train = firstImages(train, num("num_train"));
const epochs = num("epochs");

const model = new LeNet(seed, train.classes);
const trainer = new Trainer(model, {
  method: "macer",
  sigma: num("sigma"),
  gaussNum: num("gauss_num"),
  lbd: num("lbd"),
  gamma: num("gamma"),
  beta: num("beta"),
  lr: num("lr"),
  noiseSeed: 2 * seed,
  dataSeed: seed,
});
if (a.init) await loadCheckpoint(a.init, model);

let given: Int32Array | undefined;
if (a.order) {
  const bytes = await Deno.readFile(a.order);
  given = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  if (given.length < epochs * train.count) {
    throw new Error(`${a.order} holds ${given.length} indices, need ${epochs * train.count}`);
  }
}
const loader = new BatchLoader(train, {
  batchSize: num("batch_size"),
  shuffle: true,
  augment: false,
  seed,
  orders: given && ((e) => given!.subarray((e - 1) * train.count, e * train.count)),
});

await Deno.mkdir(a.out, { recursive: true });
await saveCheckpoint(`${a.out}/init.safetensors`, model, trainer.state());
const orders = new Int32Array(epochs * train.count);
for (let e = 1; e <= epochs; e++) orders.set(loader.order(e), (e - 1) * train.count);
await Deno.writeFile(`${a.out}/order.bin`, new Uint8Array(orders.buffer));

/** L2 norm of each named tensor, and of all of them together. */
function norms(entries: [string, Float32Array][]): Record<string, number> {
  const out: Record<string, number> = {};
  let total = 0;
  for (const [name, v] of entries) {
    let s = 0;
    for (const x of v) s += x * x;
    out[name] = Math.sqrt(s);
    total += s;
  }
  out.total = Math.sqrt(total);
  return out;
}
const weights = (m: Module) => m.namedParameters().map(([n, p]) => [n, p.value.toF32()]);

const log = await Deno.open(`${a.out}/steps.jsonl`, { write: true, create: true, truncate: true });
const enc = new TextEncoder();
const shape = [train.channels, train.height, train.width];
const maxSteps = num("steps");
let global = 0;
const t0 = performance.now();
outer: for (let epoch = 1; epoch <= epochs; epoch++) {
  trainer.optimizer.lr = trainer.schedule.lrAt(epoch);
  let step = 0;
  for (const batch of loader.epoch(epoch)) {
    if (maxSteps > 0 && global >= maxSteps) break outer;
    step++;
    global++;
    const offset = trainer.noiseOffset;
    let grad: Record<string, number> = {};
    const r = trainer.step(batch, shape, (m) => {
      grad = norms(
        m.namedParameters().map(([n, p]) => [n, p.grad!.toF32()]),
      );
    });
    if (!r.finite) throw new Error(`loss not finite at epoch ${epoch} step ${step}`);
    const rec = {
      epoch,
      step,
      global,
      lr: trainer.optimizer.lr,
      offset,
      n: r.n,
      classification: r.classification,
      robustness: r.robustness,
      kept: r.kept,
      grad,
      param: norms(weights(model) as [string, Float32Array][]),
    };
    await log.write(enc.encode(JSON.stringify(rec) + "\n"));
    if (global % 100 === 0) {
      const s = ((performance.now() - t0) / 1000).toFixed(0);
      console.error(
        `step ${global} (epoch ${epoch}) cl ${(r.classification / r.n).toFixed(4)} ${s} s`,
      );
    }
  }
  trainer.epoch = epoch;
}
log.close();
await trainer.save(`${a.out}/final.safetensors`, { dataset: a.dataset, model: "lenet" });
console.error(`${global} steps in ${((performance.now() - t0) / 1000).toFixed(0)} s -> ${a.out}`);
