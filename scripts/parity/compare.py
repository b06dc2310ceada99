"""Compares per-step trajectories (steps.jsonl) of two or three runs.

  compare.py A/steps.jsonl B/steps.jsonl [C/steps.jsonl]

Prints, at chosen steps, each run's losses, kept count and norms, and the
relative differences of A and B in the total parameter norm and the total
gradient norm; with C (e.g. the PyTorch run in float64) the same difference of
B and C is printed beside it as the scale of rounding: A and B agree as far as
float32 allows while |A - B| stays of the order of |B - C|.
"""
import json
import sys


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-30)


def main():
    runs = [load(p) for p in sys.argv[1:]]
    steps = min(len(r) for r in runs)
    marks = sorted({1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000, 1500, steps}
                   | set(range(0, steps + 1, 250)))
    header = "step  " + "  ".join(f"cl/n[{i}] rl/n[{i}] kept[{i}]" for i in range(len(runs)))
    header += "  |dW|AB  |dG|AB" + ("  |dW|BC  |dG|BC" if len(runs) > 2 else "")
    print(header)
    first_bad = None
    for s in range(1, steps + 1):
        recs = [r[s - 1] for r in runs]
        dw = rel(recs[0]["param"]["total"], recs[1]["param"]["total"])
        if len(runs) > 2:
            scale = rel(recs[1]["param"]["total"], recs[2]["param"]["total"])
            if first_bad is None and dw > 10 * max(scale, 1e-6):
                first_bad = s
        if s not in marks:
            continue
        cells = [f"{r['classification'] / r['n']:.5f} {r['robustness'] / r['n']:.5f} {r['kept']:3d}"
                 for r in recs]
        line = f"{s:5d}  " + "  ".join(cells)
        line += f"  {dw:.2e}  {rel(recs[0]['grad']['total'], recs[1]['grad']['total']):.2e}"
        if len(runs) > 2:
            line += (f"  {rel(recs[1]['param']['total'], recs[2]['param']['total']):.2e}"
                     f"  {rel(recs[1]['grad']['total'], recs[2]['grad']['total']):.2e}")
        print(line)
    for i, r in enumerate(runs):
        n = sum(x["n"] for x in r[:steps])
        cl = sum(x["classification"] for x in r[:steps]) / n
        rl = sum(x["robustness"] for x in r[:steps]) / n
        kept = sum(x["kept"] for x in r[:steps]) / n
        print(f"run {i}: {steps} steps, mean cl {cl:.4f}, rl {rl:.4f}, kept fraction {kept:.3f}")
    if len(runs) > 2:
        print("first step where |dW|AB > 10 x max(|dW|BC, 1e-6):", first_bad)


if __name__ == "__main__":
    main()
