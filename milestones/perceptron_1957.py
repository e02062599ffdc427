"""1957: Frank Rosenblatt's perceptron.

At the Cornell Aeronautical Laboratory, Rosenblatt built a machine that learned to sort
pictures into two classes by adjusting its weights after every mistake: if it said "no" to a
"yes", add the input to the weights; if it said "yes" to a "no", subtract it. He proved that
when a straight line can separate the two classes, this rule finds one in a finite number of
mistakes. Here the perceptron is your Linear layer, and the rule moves its weights.
"""

from __future__ import annotations

from harness import MilestoneRun  # first: it sets the BLAS threads before numpy loads  # noqa: I001

import numpy as np

from tinytorch.activations import Sigmoid
from tinytorch.layers import Linear
from tinytorch.losses import BCELoss
from tinytorch.tensor import Tensor, manual_seed


def separable_points(count: int, margin: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Points in the square [-1, 1]^2, labelled by a hidden line, none closer than `margin` to it."""
    normal = rng.normal(size=2)
    normal /= np.linalg.norm(normal)
    offset = rng.uniform(-0.3, 0.3)
    points = []
    while len(points) < count:
        candidate = rng.uniform(-1, 1, size=2)
        if abs(candidate @ normal + offset) > margin:
            points.append(candidate)
    inputs = np.array(points, dtype=np.float32)
    labels = (inputs @ normal + offset > 0).astype(np.float32)
    return inputs, labels


def predict(perceptron: Linear, inputs: np.ndarray) -> np.ndarray:
    """The perceptron fires (1) when its weighted sum is positive."""
    return (perceptron(Tensor(inputs)).data[:, 0] > 0).astype(np.float32)


def train_epoch(perceptron: Linear, inputs: np.ndarray, labels: np.ndarray, rate: float,
                order: np.ndarray) -> int:
    """One pass of Rosenblatt's rule over the data; returns the number of mistakes."""
    mistakes = 0
    for index in order:
        point = inputs[index : index + 1]
        error = labels[index] - predict(perceptron, point)[0]   # +1, 0 or -1
        if error != 0:
            mistakes += 1
            perceptron.weight.data += rate * error * point     # move the line toward the point
            perceptron.bias.data += rate * error
    return mistakes


def plot(inputs, labels, perceptron, mistakes_per_epoch):
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    grid_x, grid_y = np.meshgrid(np.linspace(-1.1, 1.1, 200), np.linspace(-1.1, 1.1, 200))
    grid = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1).astype(np.float32)
    regions = predict(perceptron, grid).reshape(grid_x.shape)
    left.contourf(grid_x, grid_y, regions, levels=[-0.5, 0.5, 1.5], colors=["#f4c7c3", "#c6dbef"], alpha=0.8)
    left.scatter(*inputs[labels == 0].T, s=12, c="#c0392b", label="class 0")
    left.scatter(*inputs[labels == 1].T, s=12, c="#2166ac", label="class 1")
    left.set_title("decision boundary learned by the perceptron")
    left.legend(loc="upper right")
    right.plot(range(1, len(mistakes_per_epoch) + 1), mistakes_per_epoch, marker="o")
    right.set_xlabel("epoch")
    right.set_ylabel("mistakes per epoch")
    right.set_title("learning: mistakes fall to zero")
    return figure


def main() -> None:
    run = MilestoneRun.start("perceptron", story=__doc__)
    config = run.config
    rng = np.random.default_rng(config["seed"])
    manual_seed(config["seed"])
    inputs, labels = separable_points(config["points"], config["margin"], rng)
    held_out_inputs, held_out_labels = inputs[config["train"]:], labels[config["train"]:]
    inputs, labels = inputs[: config["train"]], labels[: config["train"]]

    perceptron = Linear(2, 1)
    perceptron.weight.data[:] = 0.0   # Rosenblatt's machine started knowing nothing
    sigmoid, bce = Sigmoid(), BCELoss()
    mistakes_per_epoch, losses = [], []
    for _ in run.progress(range(config["epochs"]), "epochs"):
        mistakes = train_epoch(perceptron, inputs, labels, config["rate"], rng.permutation(len(inputs)))
        mistakes_per_epoch.append(mistakes)
        scores = perceptron(Tensor(inputs)).reshape(-1)
        losses.append(float(bce(sigmoid(scores), Tensor(labels)).item()))  # a smooth view of the same progress
        run.status = {"mistakes": str(mistakes), "bce": f"{losses[-1]:.3f}"}
        if mistakes == 0:   # Rosenblatt's convergence theorem: no mistakes left, the line separates
            break

    accuracy = float((predict(perceptron, inputs) == labels).mean())
    held_out_accuracy = float((predict(perceptron, held_out_inputs) == held_out_labels).mean())
    run.console.print(f"converged after {len(mistakes_per_epoch)} epochs; "
                      f"weights {np.round(perceptron.weight.data.ravel(), 3)}, bias {perceptron.bias.data.round(3)}")
    run.save_figure(plot(inputs, labels, perceptron, mistakes_per_epoch), "decision_boundary.png")
    run.finish({"accuracy": accuracy, "held_out_accuracy": held_out_accuracy,
                "epochs": float(len(mistakes_per_epoch)), "final_bce": losses[-1]})


if __name__ == "__main__":
    main()
