/**
 * torchvision's `resnet50` (v1.5: the stride of a downsampling bottleneck is
 * in its 3x3 convolution): a 7x7 stride-2 stem with batch norm and ReLU, a 3x3
 * stride-2 max pool with padding 1, four stages of 3, 4, 6 and 3 bottleneck
 * blocks (1x1, 3x3, 1x1 convolutions; widths 64, 128, 256, 512, output 4x
 * that; a 1x1 conv + BN projection on each stage's first block), global
 * average pool, fc. State-dict names as torchvision's (`layer1.0.conv3.weight`,
 * `layer1.0.downsample.0.weight`). Init as torchvision: conv weights ~
 * N(0, 2 / (k * k * out_channels)), BN weight 1, bias 0, fc PyTorch's default.
 * 25,557,032 parameters with 1000 classes.
 *
 * @module
 */
import { Var } from "../../compute/autograd.ts";
import * as F from "../../compute/functional.ts";
import { Tensor } from "../../compute/tensor.ts";
import { InitRng } from "./init.ts";
import { BatchNorm2d, Conv2d, convBn, Linear } from "./layers.ts";
import { Module } from "./module.ts";
import { Downsample } from "./resnet.ts";

function conv(rng: InitRng, cin: number, cout: number, k: number, stride = 1): Conv2d {
  return new Conv2d(rng, cin, cout, k, {
    stride,
    padding: (k - 1) / 2,
    bias: false,
    weightStd: Math.sqrt(2 / (k * k * cout)),
  });
}

/** A bottleneck block: 1x1 to `width`, 3x3 (stride here), 1x1 to `4 width`, plus the shortcut. */
export class Bottleneck extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly downsample?: Downsample;

  constructor(rng: InitRng, cin: number, width: number, stride: number) {
    super();
    this.conv1 = conv(rng, cin, width, 1);
    this.bn1 = new BatchNorm2d(width);
    this.conv2 = conv(rng, width, width, 3, stride);
    this.bn2 = new BatchNorm2d(width);
    this.conv3 = conv(rng, width, 4 * width, 1);
    this.bn3 = new BatchNorm2d(4 * width);
    if (stride !== 1 || cin !== 4 * width) {
      this.downsample = new Downsample(rng, cin, 4 * width, stride);
    }
  }

  forward(x: Var): Var {
    const shortcut = this.downsample ? this.downsample.forward(x) : x;
    let h = convBn(this.conv1, this.bn1, x, { relu: true });
    h = convBn(this.conv2, this.bn2, h, { relu: true });
    return convBn(this.conv3, this.bn3, h, { relu: true, residual: shortcut });
  }

  protected override children(): [string, Module][] {
    const kids: [string, Module][] = [
      ["conv1", this.conv1],
      ["bn1", this.bn1],
      ["conv2", this.conv2],
      ["bn2", this.bn2],
      ["conv3", this.conv3],
      ["bn3", this.bn3],
    ];
    if (this.downsample) kids.push(["downsample", this.downsample]);
    return kids;
  }
}

class Layer extends Module {
  constructor(readonly blocks: Bottleneck[]) {
    super();
  }

  forward(x: Var): Var {
    return this.blocks.reduce((h, b) => b.forward(h), x);
  }

  protected override children(): [string, Module][] {
    return this.blocks.map((b, i) => [String(i), b]);
  }
}

/** torchvision's ResNet-50 for 3-channel images of any size from 32x32 up (224x224 on ImageNet). */
export class ResNet50 extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly layers: Layer[];
  readonly fc: Linear;
  /** Identity 1x1 kernel that zero-pads the stem's output by one pixel for the max pool. */
  readonly #pad: Tensor;

  constructor(seed: number | string = 0, classes = 1000) {
    super();
    const rng = new InitRng(seed);
    this.conv1 = new Conv2d(rng, 3, 64, 7, {
      stride: 2,
      padding: 3,
      bias: false,
      weightStd: Math.sqrt(2 / (49 * 64)),
    });
    this.bn1 = new BatchNorm2d(64);
    let cin = 64;
    this.layers = [[64, 3, 1], [128, 4, 2], [256, 6, 2], [512, 3, 2]].map(([w, n, s]) => {
      const blocks = [];
      for (let i = 0; i < n; i++) {
        blocks.push(new Bottleneck(rng, cin, w, i === 0 ? s : 1));
        cin = 4 * w;
      }
      return new Layer(blocks);
    });
    this.fc = new Linear(rng, 2048, classes);
    const eye = new Float32Array(64 * 64);
    for (let c = 0; c < 64; c++) eye[c * 64 + c] = 1;
    this.#pad = Tensor.fromF32(eye, [64, 64, 1, 1]).keep();
  }

  forward(x: Var): Var {
    let h = convBn(this.conv1, this.bn1, x, { relu: true });
    // MaxPool2d(3, 2, padding=1) on values >= 0 (after the ReLU): padding with zeros gives the
    // same maxima as PyTorch's -inf padding, since every window holds a real value >= 0.
    // The identity 1x1 convolution with padding 1 adds the zero border (exact: 1 x v + 0s).
    h = F.conv2d(h, Var.constant(this.#pad), undefined, { stride: 1, padding: 1 });
    h = F.maxPool2d(h, 3, 2);
    for (const layer of this.layers) h = layer.forward(h);
    const [, , height, width] = h.shape;
    if (height !== width) {
      throw new RangeError(`ResNet-50 needs square inputs, got a ${height}x${width} final map`);
    }
    return this.fc.forward(F.flatten(F.avgPool2d(h, height, 1)));
  }

  protected override children(): [string, Module][] {
    return [
      ["conv1", this.conv1],
      ["bn1", this.bn1],
      ...this.layers.map((l, i): [string, Module] => [`layer${i + 1}`, l]),
      ["fc", this.fc],
    ];
  }
}
