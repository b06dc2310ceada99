/**
 * LeNet as in the MACER authors' `model.py`: conv(1->20, 5) -> relu -> pool 2,
 * conv(20->50, 5) -> relu -> pool 2, fc 800->500 -> relu, fc 500->10.
 * 431,080 parameters. Inputs are 1x28x28 in [0, 1], not normalised.
 *
 * @module
 */
import type { Var } from "../../compute/autograd.ts";
import * as F from "../../compute/functional.ts";
import { InitRng } from "./init.ts";
import { Conv2d, Linear } from "./layers.ts";
import { Module } from "./module.ts";

export class LeNet extends Module {
  readonly conv1: Conv2d;
  readonly conv2: Conv2d;
  readonly fc1: Linear;
  readonly fc2: Linear;

  constructor(seed: number | string = 0, classes = 10) {
    super();
    const rng = new InitRng(seed);
    this.conv1 = new Conv2d(rng, 1, 20, 5);
    this.conv2 = new Conv2d(rng, 20, 50, 5);
    this.fc1 = new Linear(rng, 800, 500);
    this.fc2 = new Linear(rng, 500, classes);
  }

  forward(x: Var): Var {
    // relu(maxPool(x)) equals maxPool(relu(x)) (both monotone), values and
    // gradients alike, and runs the ReLU on a quarter of the elements.
    let h = F.relu(F.maxPool2d(this.conv1.forward(x), 2));
    h = F.relu(F.maxPool2d(this.conv2.forward(h), 2));
    h = F.relu(this.fc1.forward(F.flatten(h)));
    return this.fc2.forward(h);
  }

  protected override children(): [string, Module][] {
    return [["conv1", this.conv1], ["conv2", this.conv2], ["fc1", this.fc1], ["fc2", this.fc2]];
  }
}
