#!/usr/bin/env bash
# Seed study at one training budget: our trainer (seeds S: our initialisation,
# data order and Philox noise) against the MACER authors' macer_train (torch
# seeds S: PyTorch's initialisation, shuffling and torch.randn_like noise), each
# model certified the same way by `deno task macer --task test` (hard mode,
# same certification noise). Prints one line per run and the mean and standard
# deviation of ACR per side.
#
#   scripts/parity/seed_study.sh MACER_REPO OUT_DIR "0 1 2 3 4" [NUM_TRAIN] [EPOCHS] [N]
#
# Defaults: 20,000 Fashion-MNIST training images, 2 epochs; test images
# 500..699 certified at n = N (10,000), alpha = 0.001. Runs already finished are kept.
set -euo pipefail
repo=$1 out=$2 seeds=$3 num_train=${4:-20000} epochs=${5:-2} n=${6:-10000}
root=${ROOT:-/usr/share/datasets/fashion-mnist}
cd "$(dirname "$0")/../.."
mkdir -p "$out"

certify() { # checkpoint dir
  ls "$2/cert-n$n"/*.summary.json >/dev/null 2>&1 ||
    deno run -A cli.ts macer --task test --dataset fashion-mnist --root "$root" --offline \
      --resume_ckpt "$1" --start_img 500 --num_img 200 --n "$n" --mode hard \
      --matdir "$2/cert-n$n" --threads 1 >"$2/cert-n$n.log" 2>&1
}

for s in $seeds; do
  ours=$out/ours-$s torch=$out/authors-$s
  (
    [ -f "$ours/final.safetensors" ] ||
      deno run -A scripts/parity/trajectory.ts --root "$root" --seed "$s" --num_train "$num_train" \
        --epochs "$epochs" --threads 1 --out "$ours" >"$ours.log" 2>&1
    certify "$ours/final.safetensors" "$ours"
  ) &
  (
    [ -f "$torch/final.safetensors" ] ||
      /usr/bin/python3 scripts/parity/torch_trajectory.py --macer_repo "$repo" --root "$root" \
        --torch_seed "$s" --noise torch --num_train "$num_train" --epochs "$epochs" --threads 1 \
        --out "$torch" >"$torch.log" 2>&1
    certify "$torch/final.safetensors" "$torch"
  ) &
  wait
done

/usr/bin/python3 - "$out" "$n" $seeds <<'PY'
import glob, json, statistics, sys
out, cert_n, seeds = sys.argv[1], sys.argv[2], sys.argv[3:]
for side in ("ours", "authors"):
    acrs = []
    for s in seeds:
        steps = [json.loads(l) for l in open(f"{out}/{side}-{s}/steps.jsonl")]
        summary = json.load(open(glob.glob(f"{out}/{side}-{s}/cert-n{cert_n}/*.summary.json")[0]))
        acr = summary["modes"]["hard"]["acr"]
        acrs.append(acr)
        last = max(x["epoch"] for x in steps)
        ep = [x for x in steps if x["epoch"] == last]
        images = sum(x["n"] for x in ep)
        print(f"{side} seed {s}: last epoch cl {sum(x['classification'] for x in ep) / images:.3f}"
              f" rl {sum(x['robustness'] for x in ep) / images:.3f}  ACR {acr:.3f}")
    sd = statistics.stdev(acrs) if len(acrs) > 1 else 0.0
    print(f"{side}: ACR mean {statistics.mean(acrs):.4f} sd {sd:.4f} "
          f"se {sd / len(acrs) ** 0.5:.4f} over {len(acrs)} seeds")
PY
