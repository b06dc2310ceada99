/**
 * Our checkpoints load into the authors' PyTorch models with strict state-dict
 * loading and give the same eval-mode logits (needs a Python with PyTorch; see
 * tests/_tools.ts).
 */
import assert from "node:assert/strict";
import { backward, Var } from "../../compute/autograd.ts";
import * as F from "../../compute/functional.ts";
import { Tensor, tidy } from "../../compute/tensor.ts";
import { saveCheckpoint } from "../../src/io/checkpoint.ts";
import { LeNet } from "../../src/nn/lenet.ts";
import type { Module } from "../../src/nn/module.ts";
import { ResNet110 } from "../../src/nn/resnet.ts";
import { SGD } from "../../src/train/sgd.ts";
import { maxRelDiff } from "../nn/_formula.ts";
import { python, pythonHas, testNeeding } from "../_tools.ts";

const script = new URL("../../scripts/fixtures/torch_eval_checkpoint.py", import.meta.url).pathname;
const torch = {
  tool: `PyTorch (python3-torch) for ${python}`,
  available: await pythonHas("torch", "numpy"),
};

/** One SGD step in train mode, so weights and running statistics leave their initial values. */
function trainOnce(model: Module, shape: number[]): void {
  const opt = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
  tidy(() => {
    const size = shape.reduce((a, b) => a * b);
    const x = Tensor.fromF32(
      Float32Array.from({ length: size }, (_, i) => Math.sin(i) ** 2),
      shape,
    );
    const y = Tensor.fromI32(Int32Array.from({ length: shape[0] }, (_, i) => i % 10), [
      shape[0],
      1,
    ]);
    backward(F.crossEntropy(model.forward(Var.constant(x)), y));
    opt.step();
    model.zeroGrad();
  });
  opt.dispose();
}

async function compare(kind: "lenet" | "resnet110", model: Module, shape: number[]) {
  trainOnce(model, shape);
  model.eval();
  const dir = await Deno.makeTempDir();
  const path = `${dir}/model.safetensors`;
  await saveCheckpoint(path, model, { epoch: 1, noiseSeed: 0, noiseOffset: 0, dataSeed: 0 });
  const images = Float32Array.from(
    { length: 2 * shape.slice(1).reduce((a, b) => a * b) },
    (_, i) => 0.5 + 0.5 * Math.cos(0.07 * i),
  );
  const ours = tidy(() =>
    Array.from(
      model.forward(Var.constant(Tensor.fromF32(images, [2, ...shape.slice(1)]))).value.toF32(),
    )
  );
  const child = new Deno.Command(python, {
    args: [script, kind, path],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify(Array.from(images))));
  await writer.close();
  const out = await child.output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const theirs: number[] = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.equal(theirs.length, ours.length);
  assert.ok(maxRelDiff(ours, theirs) < 1e-4, `logits differ: ${ours} vs ${theirs}`);
  await Deno.remove(dir, { recursive: true });
}

testNeeding(
  [torch],
  "a LeNet checkpoint loads strictly into the authors' PyTorch LeNet with the same logits",
  () => compare("lenet", new LeNet(4), [8, 1, 28, 28]),
);

testNeeding(
  [torch],
  "a ResNet-110 checkpoint loads strictly into the authors' PyTorch model with the same logits",
  () => compare("resnet110", new ResNet110(4), [4, 3, 32, 32]),
);
