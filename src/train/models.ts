/**
 * Models by name, with the input shape each expects, so that a run (the
 * `macer` command or a pipeline) picks its network by name rather than from
 * the dataset's name.
 *
 * @module
 */
import type { DatasetName } from "../data/types.ts";
import { InputError } from "../errors.ts";
import { LeNet } from "../nn/lenet.ts";
import type { Module } from "../nn/module.ts";
import {
  CIFAR10_MEAN,
  CIFAR10_STD,
  IMAGENET_MEAN,
  IMAGENET_STD,
  Normalized,
} from "../nn/normalize.ts";
import { ResNet110 } from "../nn/resnet.ts";
import { ResNet50 } from "../nn/resnet50.ts";

/** A registered model. */
export interface ModelSpec {
  /** What it is, for help texts. */
  description: string;
  /** Input shape [C, H, W]. */
  input: readonly [number, number, number];
  /** The first state-dict entry's name and shape: rules a file out without building the model. */
  stem: { name: string; shape: readonly number[] };
  /** A freshly initialised network (seeded, PyTorch's initialisation schemes). */
  build(seed: number, classes: number): Module;
}

/** Every model by name. */
export const MODELS: Readonly<Record<string, ModelSpec>> = {
  lenet: {
    description: "LeNet of the MACER authors (MNIST-like 1x28x28 images)",
    input: [1, 28, 28],
    stem: { name: "conv1.weight", shape: [20, 1, 5, 5] },
    build: (seed, classes) => new LeNet(seed, classes),
  },
  resnet110: {
    description: "ResNet-110 for 3x32x32 images (CIFAR-10, SVHN), as in MACER and Cohen et al.",
    input: [3, 32, 32],
    stem: { name: "conv1.weight", shape: [16, 3, 3, 3] },
    build: (seed, classes) => new ResNet110(seed, classes),
  },
  cifar_resnet20: {
    description: "Cohen et al.'s cifar_resnet20: CIFAR-10 normalisation, then a 20-layer ResNet " +
      "(3 blocks per stage); state-dict names as their checkpoints' (1.conv1.weight)",
    input: [3, 32, 32],
    stem: { name: "1.conv1.weight", shape: [16, 3, 3, 3] },
    build: (seed, classes) =>
      new Normalized(new ResNet110(seed, classes, 3), CIFAR10_MEAN, CIFAR10_STD),
  },
  cifar_resnet110: {
    description: "Cohen et al.'s cifar_resnet110: CIFAR-10 normalisation, then ResNet-110; " +
      "state-dict names as their checkpoints' (1.conv1.weight)",
    input: [3, 32, 32],
    stem: { name: "1.conv1.weight", shape: [16, 3, 3, 3] },
    build: (seed, classes) =>
      new Normalized(new ResNet110(seed, classes), CIFAR10_MEAN, CIFAR10_STD),
  },
  resnet50: {
    description: "Cohen et al.'s and Salman et al.'s ImageNet model: ImageNet normalisation, " +
      "then torchvision's resnet50; state-dict names as their checkpoints' (1.conv1.weight)",
    input: [3, 224, 224],
    stem: { name: "1.conv1.weight", shape: [64, 3, 7, 7] },
    build: (seed, classes) =>
      new Normalized(new ResNet50(seed, classes), IMAGENET_MEAN, IMAGENET_STD),
  },
  torchvision_resnet50: {
    description: "torchvision's resnet50 with ImageNet normalisation in front; state-dict " +
      "names as a plain torchvision state dict's (conv1.weight)",
    input: [3, 224, 224],
    stem: { name: "conv1.weight", shape: [64, 3, 7, 7] },
    build: (seed, classes) =>
      new Normalized(new ResNet50(seed, classes), IMAGENET_MEAN, IMAGENET_STD, false),
  },
};

/** Names of the registered models. */
export const MODEL_NAMES: readonly string[] = Object.keys(MODELS);

/** The model MACER's `main.py` uses for a dataset. */
export function defaultModelFor(dataset: DatasetName): string {
  if (dataset === "imagenet") return "resnet50";
  return dataset === "cifar10" || dataset === "svhn" ? "resnet110" : "lenet";
}

/**
 * Builds model `name`.
 *
 * @throws {InputError} for a name that is not registered
 */
export function buildModel(name: string, seed: number, classes: number): Module {
  const spec = MODELS[name];
  if (spec === undefined) {
    throw new InputError(`unknown model "${name}" (expected one of ${MODEL_NAMES.join(", ")})`);
  }
  return spec.build(seed, classes);
}
