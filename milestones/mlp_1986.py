"""1986: Rumelhart, Hinton and Williams, "Learning representations by back-propagating errors".

The paper showed that a network with hidden layers, trained by sending the error backwards
through it, learns its own internal features. Three years later LeCun's group was reading
handwritten ZIP codes for the US Postal Service. Here a multi-layer perceptron built from
your Linear, ReLU and Dropout, fed by your DataLoader and trained by your autograd, Adam and
Trainer, reads MNIST's handwritten digits.
"""

from __future__ import annotations

from harness import MilestoneRun  # first: it sets the BLAS threads before numpy loads  # noqa: I001
from mnist import confusion_matrix, load_mnist, plot_curves, predict, print_confusion, train_classifier
from tinytorch.activations import ReLU
from tinytorch.layers import Dropout, Linear, Sequential
from tinytorch.tensor import manual_seed


def build_mlp(hidden: list[int], dropout: float) -> Sequential:
    layers, width = [], 28 * 28
    for size in hidden:
        layers += [Linear(width, size), ReLU(), Dropout(dropout)]
        width = size
    return Sequential(*layers, Linear(width, 10))


def main() -> None:
    run = MilestoneRun.start("mlp", story=__doc__)
    manual_seed(run.config["seed"])
    splits = load_mnist(run, flat=True)
    model = build_mlp(run.config["hidden"], run.config["dropout"])
    run.console.print(f"model: {model.num_parameters():,} parameters; {len(splits['train'][0]):,} training images")
    history = train_classifier(run, model, splits)

    test_images, test_labels = splits["test"]
    predictions = predict(model, test_images)
    print_confusion(run, confusion_matrix(test_labels, predictions))
    run.save_figure(plot_curves(history, "1986: a multi-layer perceptron on MNIST"), "learning_curves.png")
    run.finish({"test_accuracy": float((predictions == test_labels).mean()),
                "val_accuracy": history["val_accuracy"][-1],
                "train_images_per_second": history["images_per_second"][-1]})


if __name__ == "__main__":
    main()
