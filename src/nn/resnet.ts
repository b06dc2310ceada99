/**
 * ResNet-110 for 32x32 inputs as in the MACER authors' `model.py`
 * (`ResNet_Cifar(BasicBlock, [18, 18, 18])`): a 3x3 stem, three stages of 18
 * basic blocks (16, 32, 64 channels; stride 2 at the start of stages 2 and
 * 3, with a 1x1 conv + BN projection shortcut there), 8x8 average pool, fc.
 * Conv weights ~ N(0, 2 / (k * k * out_channels)); BN weight 1, bias 0.
 * 1,730,714 parameters, 668 state-dict entries.
 *
 * @module
 */
import type { Var } from "../../compute/autograd.ts";
import * as F from "../../compute/functional.ts";
import { InitRng } from "./init.ts";
import { BatchNorm2d, Conv2d, convBn, Linear } from "./layers.ts";
import { Module } from "./module.ts";

function conv3x3(rng: InitRng, cin: number, cout: number, stride: number): Conv2d {
  return new Conv2d(rng, cin, cout, 3, {
    stride,
    padding: 1,
    bias: false,
    weightStd: Math.sqrt(2 / (9 * cout)),
  });
}

/** conv1 + BN of a projection shortcut, named `downsample.0` and `downsample.1`. */
export class Downsample extends Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d;

  constructor(rng: InitRng, cin: number, cout: number, stride: number) {
    super();
    this.conv = new Conv2d(rng, cin, cout, 1, {
      stride,
      bias: false,
      weightStd: Math.sqrt(2 / cout),
    });
    this.bn = new BatchNorm2d(cout);
  }

  forward(x: Var): Var {
    return convBn(this.conv, this.bn, x);
  }

  protected override children(): [string, Module][] {
    return [["0", this.conv], ["1", this.bn]];
  }
}

export class BasicBlock extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly downsample?: Downsample;

  constructor(rng: InitRng, cin: number, cout: number, stride: number) {
    super();
    this.conv1 = conv3x3(rng, cin, cout, stride);
    this.bn1 = new BatchNorm2d(cout);
    this.conv2 = conv3x3(rng, cout, cout, 1);
    this.bn2 = new BatchNorm2d(cout);
    if (stride !== 1 || cin !== cout) this.downsample = new Downsample(rng, cin, cout, stride);
  }

  forward(x: Var): Var {
    const shortcut = this.downsample ? this.downsample.forward(x) : x;
    if (!this.bn1.training) {
      const h = convBn(this.conv1, this.bn1, x, { relu: true });
      return convBn(this.conv2, this.bn2, h, { relu: true, residual: shortcut });
    }
    const parts = this.trainingParts();
    if (parts) return F.residualBlockTrain(x, ...parts);
    // Training: bn1 + ReLU is conv2's prologue, so its output is never written out.
    const c1 = F.conv2dStats(x, this.conv1.weight, this.conv1.bias, {
      stride: this.conv1.stride,
      padding: this.conv1.padding,
    });
    const c2 = this.bn1.reluConvTrain(c1.y, c1.stats, this.conv2);
    return this.bn2.trainWith(c2.y, c2.stats, { relu: true, residual: shortcut });
  }

  /**
   * In training mode with an identity shortcut: both convolutions with their batch
   * norms, as the fused residual block ops take them (one op each way: bn1 + ReLU as
   * conv2's prologue, and in the backward neither batch norm's input gradient
   * written out). Counts a batch for both batch norms.
   */
  trainingParts(): readonly [F.ConvBn, F.ConvBn] | undefined {
    if (this.downsample || !this.bn1.training) return undefined;
    return [this.bn1.afterConvTrain(this.conv1), this.bn2.afterConvTrain(this.conv2)];
  }

  protected override children(): [string, Module][] {
    const kids: [string, Module][] = [
      ["conv1", this.conv1],
      ["bn1", this.bn1],
      ["conv2", this.conv2],
      ["bn2", this.bn2],
    ];
    if (this.downsample) kids.push(["downsample", this.downsample]);
    return kids;
  }
}

class Stage extends Module {
  readonly blocks: BasicBlock[];

  constructor(blocks: BasicBlock[]) {
    super();
    this.blocks = blocks;
  }

  forward(x: Var): Var {
    // In training, runs of identity-shortcut blocks go through as one node, so that
    // each block's backward also takes the previous block's first batch-norm pass.
    let h = x;
    let run: (readonly [F.ConvBn, F.ConvBn])[] = [];
    const flush = () => {
      if (run.length > 0) h = F.residualRunTrain(h, run);
      run = [];
    };
    for (const b of this.blocks) {
      const parts = b.trainingParts();
      if (parts) {
        run.push(parts);
      } else {
        flush();
        h = b.forward(h);
      }
    }
    flush();
    return h;
  }

  protected override children(): [string, Module][] {
    return this.blocks.map((b, i) => [String(i), b]);
  }
}

export class ResNet110 extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly layer1: Stage;
  readonly layer2: Stage;
  readonly layer3: Stage;
  readonly fc: Linear;

  constructor(seed: number | string = 0, classes = 10, blocksPerStage = 18) {
    super();
    const rng = new InitRng(seed);
    this.conv1 = conv3x3(rng, 3, 16, 1);
    this.bn1 = new BatchNorm2d(16);
    let cin = 16;
    const stage = (cout: number, stride: number) => {
      const blocks = [];
      for (let i = 0; i < blocksPerStage; i++) {
        blocks.push(new BasicBlock(rng, cin, cout, i === 0 ? stride : 1));
        cin = cout;
      }
      return new Stage(blocks);
    };
    this.layer1 = stage(16, 1);
    this.layer2 = stage(32, 2);
    this.layer3 = stage(64, 2);
    this.fc = new Linear(rng, 64, classes);
  }

  forward(x: Var): Var {
    let h = convBn(this.conv1, this.bn1, x, { relu: true });
    h = this.layer3.forward(this.layer2.forward(this.layer1.forward(h)));
    return this.fc.forward(F.flatten(F.avgPool2d(h, 8, 1)));
  }

  protected override children(): [string, Module][] {
    return [
      ["conv1", this.conv1],
      ["bn1", this.bn1],
      ["layer1", this.layer1],
      ["layer2", this.layer2],
      ["layer3", this.layer3],
      ["fc", this.fc],
    ];
  }
}
