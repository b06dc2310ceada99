/**
 * torchvision's resnet50, as Cohen et al. and Salman et al. save their ImageNet
 * models (`Sequential(NormalizeLayer, DataParallel(resnet50))`, names
 * `1.module.conv1.weight`) and as a plain torchvision state dict: the same
 * weights and 224x224 input give PyTorch's logits. The ~100 MB checkpoints are
 * written by PyTorch at test time (scripts/fixtures/make_pth_fixtures.py), with
 * seeded weights and batch-norm statistics away from 0 and 1.
 */
import assert from "node:assert/strict";
import { Var } from "../../compute/autograd.ts";
import { Tensor, tidy } from "../../compute/tensor.ts";
import { loadCheckpoint } from "../../src/io/checkpoint.ts";
import { buildModel, MODELS } from "../../src/train/models.ts";
import { torchCheckpoint } from "../io/_torch.ts";
import { python, pythonHas, testNeeding } from "../_tools.ts";

const torchvision = {
  tool: `PyTorch and torchvision (python3-torch, python3-torchvision) for ${python}`,
  available: await pythonHas("torch", "torchvision"),
};

for (
  const [arch, style, names] of [
    ["resnet50", "cohen", "1.conv1.weight"],
    ["torchvision_resnet50", "plain", "conv1.weight"],
  ] as const
) {
  testNeeding(
    [torchvision],
    `${arch} (${style} checkpoint, ${names}) gives PyTorch's logits at 224x224`,
    async () => {
      const dir = await Deno.makeTempDir();
      try {
        const c = await torchCheckpoint(dir, arch, style, "zip");
        assert.deepEqual(c.shape, [1, ...MODELS[arch].input]);
        const model = buildModel(arch, 3, 1000).eval();
        const entries = model.stateEntries();
        assert.equal(entries[0].name, names);
        assert.equal(entries.length, 320);
        assert.equal(model.parameterCount(), 25_557_032);
        const loaded = await loadCheckpoint(c.path, model);
        if (style === "cohen") assert.equal(loaded.arch, "resnet50");
        const ours = tidy(() =>
          Array.from(
            model.forward(Var.constant(Tensor.fromF32(Float32Array.from(c.input), c.shape)))
              .value.toF32(),
          )
        );
        const theirs = c.logits.flat();
        assert.equal(ours.length, 1000);
        // float32 through 53 layers against PyTorch's float64 evaluation of the same weights.
        const scale = Math.max(...theirs.map(Math.abs));
        const top = (a: number[]) => a.indexOf(Math.max(...a));
        let worst = 0;
        ours.forEach((v, i) => worst = Math.max(worst, Math.abs(v - theirs[i]) / scale));
        assert.ok(worst < 1e-5, `largest difference ${worst} of the largest logit ${scale}`);

        assert.equal(top(ours), top(theirs));
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
}
