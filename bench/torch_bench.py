#!/usr/bin/env python3
"""PyTorch timings of the four benchmark cases of `bench/main.ts`.

`deno task bench --torch` runs this script right after each of our cases, on the
same machine, and prints the ratio. It can also be run alone:

    /usr/bin/python3 bench/torch_bench.py [--case NAME]... [--reps R] [--threads N]
                                          [--device cpu|cuda] [--tf32]

and prints one JSON object per case and line:

    {"case": ..., "ms": <ms per iteration>, "items_per_s": ..., "impl": "pytorch-<version>",
     "device": "cpu", "tf32": false, "threads": N}

The cases (the same as `CASES` in `bench/main.ts`):

- train-step-lenet: one MACER training step (k = 16 noisy copies, sigma 0.25,
  lbd 12, gamma 8, beta 16) on 64 images 1x28x28 with LeNet, then SGD
  (lr 0.01, momentum 0.9, weight decay 5e-4): 1,024 forward + backward passes
- train-step-resnet110: the same step on 8 images 3x32x32 with ResNet-110 in
  train mode (128 forward + backward passes)
- certify-lenet: 1,000 noisy copies of one 1x28x28 image through LeNet in eval
  mode, argmax counts and summed softmax(beta * z) (one certification batch)
- certify-resnet110: the same with 200 copies of one 3x32x32 image, ResNet-110
- train-step-<method>-lenet, train-step-<method>-resnet110 (only by name, or with
  --methods): one step of a baseline at its paper's CIFAR-10 settings, with as many
  noisy copies per step as the MACER case of the model: gaussian (Cohen et al.,
  one copy), consistency (Jeong and Shin: m 2, lbd 20, eta 0.5), smoothadv (Salman
  et al.: L2 PGD, 10 steps, m 2, epsilon 64/256, training on all copies), smoothmix
  (Jeong et al.: m 2, 4 steps, alpha 0.5, mix_step 1, eta 5)

Items per second count forward passes (images x copies). One untimed iteration
runs first. Needs PyTorch (Debian: `apt-get install python3-torch`). With
`--device cuda` the same cases run on a CUDA GPU, synchronised before each
clock reading, with cuDNN autotuning, and TF32 off unless `--tf32` allows it.
"""
import argparse
import json
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class LeNet(nn.Module):
    """The authors' LeNet: two 5x5 convolutions with max pooling, two linear layers."""

    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5, 1)
        self.conv2 = nn.Conv2d(20, 50, 5, 1)
        self.fc1 = nn.Linear(4 * 4 * 50, 500)
        self.fc2 = nn.Linear(500, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2, 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2, 2)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm; 1x1 conv + BN shortcut where the shape changes."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + shortcut)


class ResNet110(nn.Module):
    """ResNet-110 for 32x32 images: 3 stages of 18 blocks (16, 32, 64 channels)."""

    def __init__(self, classes=10, blocks=18):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        stages, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            blocks_ = []
            for i in range(blocks):
                blocks_.append(BasicBlock(cin, cout, stride if i == 0 else 1))
                cin = cout
            stages.append(nn.Sequential(*blocks_))
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.avg_pool2d(x, 8), 1))


def normal_quantile(p):
    """Phi^-1(p), differentiable."""
    return torch.erfinv(2 * p - 1) * (2.0 ** 0.5)


def macer_step(model, opt, x, y, k, sigma=0.25, lbd=12.0, gamma=8.0, beta=16.0):
    """One MACER step: k noisy copies per image, classification + robustness loss, SGD."""
    n = x.shape[0]
    copies = x.repeat_interleave(k, dim=0)
    logits = model(copies + torch.randn_like(copies) * sigma).reshape(n, k, -1)
    # Classification: -log of the mean softmax of the label.
    p = F.softmax(logits, dim=2).mean(dim=1)
    classification = F.nll_loss(torch.log(p + 1e-10), y, reduction="sum")
    # Robustness: hinge on the gap of the top two quantiles of the mean softmax(beta * z),
    # over the images whose top class is their label and whose gap is finite and within gamma.
    top, idx = torch.topk(F.softmax(logits * beta, dim=2).mean(dim=1), 2)
    right = idx[:, 0] == y
    gap = normal_quantile(top[right, 1]) - normal_quantile(top[right, 0])
    keep = torch.isfinite(gap) & (gap.abs() <= gamma)
    robustness = (gap[keep] + gamma).sum() * sigma / 2
    loss = (classification + lbd * robustness) / n
    opt.zero_grad()
    loss.backward()
    opt.step()


def gaussian_step(model, opt, x, y, sigma=0.25):
    """Cohen et al.: cross-entropy on one noisy copy of each image."""
    loss = F.cross_entropy(model(x + torch.randn_like(x) * sigma), y)
    opt.zero_grad()
    loss.backward()
    opt.step()


def consistency_step(model, opt, x, y, m=2, sigma=0.25, lbd=20.0, eta=0.5):
    """Jeong and Shin: cross-entropy of m copies + lbd KL to their mean + eta entropy."""
    n = x.shape[0]
    copies = x.repeat_interleave(m, dim=0)
    z = model(copies + torch.randn_like(copies) * sigma)
    xent = F.cross_entropy(z, y.repeat_interleave(m))
    logq = F.log_softmax(z, 1).reshape(n, m, -1)
    pbar = logq.exp().mean(1)
    ent = -(pbar * torch.log(pbar.clamp(min=1e-20))).sum(1)
    kl = (pbar.unsqueeze(1) * (torch.log(pbar.clamp(min=1e-20)).unsqueeze(1) - logq)).sum(2).mean(1)
    loss = xent + (lbd * kl + eta * ent).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()


def smoothed_grad(model, adv, y, noise, m):
    """Gradient of -log mean_j softmax(f(adv + noise_j))[y] with respect to adv."""
    adv = adv.detach().requires_grad_()
    p = F.softmax(model(adv.repeat_interleave(m, dim=0) + noise), 1)
    p = p.reshape(adv.shape[0], m, -1).mean(1)
    loss = F.nll_loss(torch.log(p.clamp(min=1e-20)), y)
    return torch.autograd.grad(loss, [adv])[0]


def unit(g):
    return g / g.reshape(g.shape[0], -1).norm(dim=1).clamp_min(1e-30).view(-1, 1, 1, 1)


def frozen(model):
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()


def thawed(model):
    for p in model.parameters():
        p.requires_grad_(True)
    model.train()


def smoothadv_step(model, opt, x, y, m=2, sigma=0.25, steps=10, eps=0.25):
    """Salman et al.: L2 PGD on the smoothed classifier, then cross-entropy on all copies."""
    noise = torch.randn_like(x.repeat_interleave(m, dim=0)) * sigma
    frozen(model)
    delta = torch.zeros_like(x)
    for _ in range(steps):
        delta = delta + (2 * eps / steps) * unit(smoothed_grad(model, x + delta, y, noise, m))
        delta = ((x + delta).clamp(0, 1) - x).renorm(p=2, dim=0, maxnorm=eps)
    thawed(model)
    adv = (x + delta).detach()
    loss = F.cross_entropy(model(adv.repeat_interleave(m, dim=0) + noise), y.repeat_interleave(m))
    opt.zero_grad()
    loss.backward()
    opt.step()


def smoothmix_step(model, opt, x, y, m=2, sigma=0.25, steps=4, alpha=0.5, mix_step=1, eta=5.0):
    """Jeong et al.: SmoothMix_PGD, then cross-entropy + eta * masked KL to the mixed target."""
    n = x.shape[0]
    noise = torch.randn_like(x.repeat_interleave(m, dim=0)) * sigma
    frozen(model)
    adv, start = x, x
    for i in range(steps):
        if i == mix_step:
            start = adv
        adv = (adv + alpha * unit(smoothed_grad(model, adv, y, noise, m))).clamp(0, 1).detach()
    start = (x + (start - x).renorm(p=2, dim=0, maxnorm=alpha * mix_step)).clamp(0, 1)
    thawed(model)
    z = model(start.repeat_interleave(m, dim=0) + noise)
    xent = F.cross_entropy(z, y.repeat_interleave(m))
    pbar = F.softmax(z, 1).reshape(n, m, -1).mean(1)
    lam = torch.rand(n, device=x.device) / 2
    mixed = (1 - lam).view(-1, 1, 1, 1) * start + lam.view(-1, 1, 1, 1) * adv
    target = (1 - lam).view(-1, 1) * pbar + lam.view(-1, 1) / pbar.shape[1]
    logq = F.log_softmax(model(mixed.repeat_interleave(m, dim=0) + noise), 1)
    kl = F.kl_div(logq, target.repeat_interleave(m, dim=0), reduction="none").sum(1)
    right = (pbar.argmax(1) == y).float().repeat_interleave(m)
    loss = xent + eta * (right * kl).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()


STEPS = {"gaussian": (gaussian_step, 1), "consistency": (consistency_step, 2),
         "smoothadv": (smoothadv_step, 2), "smoothmix": (smoothmix_step, 2)}


def certify_batch(model, x, copies, sigma=0.25, beta=16.0, classes=10):
    """One certification batch: argmax counts and summed softmax(beta * z) of noisy copies."""
    with torch.no_grad():
        batch = x.unsqueeze(0).expand(copies, *x.shape)
        logits = model(batch + torch.randn_like(batch) * sigma)
        counts = torch.bincount(logits.argmax(dim=1), minlength=classes)
        soft = F.softmax(logits * beta, dim=1).sum(dim=0)
    return counts.cpu(), soft.cpu()


# name: (model, image shape, images per iteration, noisy copies per image, kind)
CASES = {
    "train-step-lenet": (LeNet, (1, 28, 28), 64, 16, "train"),
    "train-step-resnet110": (ResNet110, (3, 32, 32), 8, 16, "train"),
    "certify-lenet": (LeNet, (1, 28, 28), 1000, 1, "certify"),
    "certify-resnet110": (ResNet110, (3, 32, 32), 200, 1, "certify"),
}
for _method, (_, _m) in STEPS.items():
    CASES[f"train-step-{_method}-lenet"] = (LeNet, (1, 28, 28), 1024 // _m, _m, _method)
    CASES[f"train-step-{_method}-resnet110"] = (ResNet110, (3, 32, 32), 128 // _m, _m, _method)


def prepare(name, device):
    """A function running one iteration of the case, and the items it processes."""
    make, shape, batch, k, kind = CASES[name]
    model = make().to(device)
    if kind != "certify":
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        x = torch.rand((batch,) + shape, device=device)
        y = torch.randint(0, 10, (batch,), device=device)
        if kind == "train":
            return (lambda: macer_step(model, opt, x, y, k)), batch * k
        step = STEPS[kind][0]
        return (lambda: step(model, opt, x, y)), batch * k
    model.eval()
    x = torch.rand(shape, device=device)
    return (lambda: certify_batch(model, x, batch)), batch


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", action="append", choices=sorted(CASES),
                    help="a case to time (repeatable; default: the four MACER cases)")
    ap.add_argument("--methods", action="store_true", help="also every baseline's cases")
    ap.add_argument("--reps", type=int, default=3, help="timed iterations per case")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: one per core)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--tf32", action="store_true",
                    help="allow TF32 in CUDA matmuls and convolutions (off: full f32, as ours)")
    a = ap.parse_args()
    if a.reps < 1:
        ap.error("--reps must be >= 1")
    if a.threads < 0:
        ap.error("--threads must be >= 0")
    device = torch.device(a.device)
    if a.device == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = a.tf32
        torch.backends.cudnn.allow_tf32 = a.tf32
        sync = torch.cuda.synchronize
    else:
        def sync():
            pass
    torch.set_num_threads(a.threads or os.cpu_count() or 1)
    torch.manual_seed(0)
    default = [c for c in CASES if a.methods or CASES[c][4] in ("train", "certify")]
    for name in a.case or default:
        run, items = prepare(name, device)
        run()  # warm-up: allocations, oneDNN / cuDNN kernel selection
        sync()
        t0 = time.perf_counter()
        for _ in range(a.reps):
            run()
        sync()
        seconds = (time.perf_counter() - t0) / a.reps
        print(json.dumps({
            "case": name,
            "ms": round(seconds * 1e3, 2),
            "items_per_s": round(items / seconds, 1),
            "impl": "pytorch-" + torch.__version__,
            "device": a.device,
            "tf32": a.tf32,
            "threads": torch.get_num_threads(),
        }), flush=True)


if __name__ == "__main__":
    main()
