"""1998: LeCun, Bottou, Bengio and Haffner, "Gradient-based learning applied to document recognition".

LeNet-5 read the amounts on a large share of the cheques written in the United States. Its
idea: instead of connecting every pixel to every unit, slide small learned filters over the
image (convolution), so a stroke is recognised wherever it appears, then shrink the picture
(pooling) and repeat. Far fewer parameters than an MLP, and better accuracy. Here LeNet is
built from your Conv2d, MaxPool2d and Flatten, and trained on the same MNIST digits.
"""

from __future__ import annotations

from harness import MilestoneRun  # first: it sets the BLAS threads before numpy loads  # noqa: I001

import numpy as np

from mnist import confusion_matrix, load_mnist, plot_curves, predict, print_confusion, train_classifier
from tinytorch.activations import ReLU
from tinytorch.layers import Linear, Sequential
from tinytorch.spatial import Conv2d, Flatten, MaxPool2d
from tinytorch.tensor import manual_seed


def build_lenet(channels: tuple[int, int], hidden: tuple[int, int]) -> Sequential:
    """LeNet-5's shape: conv 5x5, pool, conv 5x5, pool, then three fully connected layers."""
    first, second = channels
    return Sequential(
        Conv2d(1, first, kernel_size=5, padding=2), ReLU(), MaxPool2d(2),      # 28x28 -> 14x14
        Conv2d(first, second, kernel_size=5), ReLU(), MaxPool2d(2),            # 14x14 -> 10x10 -> 5x5
        Flatten(),
        Linear(second * 5 * 5, hidden[0]), ReLU(),
        Linear(hidden[0], hidden[1]), ReLU(),
        Linear(hidden[1], 10),
    )


def plot_filters_and_mistakes(model, images: np.ndarray, labels: np.ndarray, predictions: np.ndarray):
    import matplotlib.pyplot as plt

    filters = model[0].weight.data[:, 0]
    wrong = np.flatnonzero(predictions != labels)[:16]
    figure = plt.figure(figsize=(12, 4.5))
    for index, kernel in enumerate(filters[:8]):
        axis = figure.add_subplot(2, 12, index + 1 if index < 4 else index + 9)
        axis.imshow(kernel, cmap="RdBu_r")
        axis.set_xticks([])
        axis.set_yticks([])
        if index == 0:
            axis.set_title("first-layer filters", loc="left", fontsize=9)
    for position, index in enumerate(wrong):
        axis = figure.add_subplot(2, 12, position + 5 if position < 8 else position + 9)
        axis.imshow(images[index, 0], cmap="gray_r")
        axis.set_title(f"{labels[index]}→{predictions[index]}", fontsize=8, color="#c0392b")
        axis.set_xticks([])
        axis.set_yticks([])
    figure.suptitle("learned 5x5 filters (left) and misclassified test digits, true→predicted (right)")
    return figure


def main() -> None:
    run = MilestoneRun.start("cnn", story=__doc__)
    manual_seed(run.config["seed"])
    splits = load_mnist(run, flat=False)
    model = run.fast(build_lenet(tuple(run.config["channels"]), tuple(run.config["hidden"])))
    run.console.print(f"model: {model.num_parameters():,} parameters; {len(splits['train'][0]):,} training images")
    history = train_classifier(run, model, splits)

    test_images, test_labels = splits["test"]
    predictions = predict(model, test_images, batch_size=500)
    print_confusion(run, confusion_matrix(test_labels, predictions))
    run.save_figure(plot_curves(history, "1998: LeNet on MNIST"), "learning_curves.png")
    run.save_figure(plot_filters_and_mistakes(model, test_images, test_labels, predictions), "filters_and_mistakes.png")
    run.finish({"test_accuracy": float((predictions == test_labels).mean()),
                "val_accuracy": history["val_accuracy"][-1],
                "train_images_per_second": history["images_per_second"][-1]})


if __name__ == "__main__":
    main()
