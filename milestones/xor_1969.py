"""1969: Minsky and Papert, and the problem one layer cannot solve.

In their book Perceptrons, Marvin Minsky and Seymour Papert proved that a single-layer
perceptron can only draw one straight line, so it can never compute XOR: "one or the other,
but not both". Funding for neural networks dried up for a decade. The way out, a hidden
layer trained by backpropagating errors, was popularised in 1986. Here you watch both: a
single layer, whose best line could get at most three of the four right and which gradient
descent leaves at two (50%, every output near 0.5), and a two-layer network, trained with your
autograd and your optimizer, getting all four.
"""

from __future__ import annotations

from harness import MilestoneRun  # first: it sets the BLAS threads before numpy loads  # noqa: I001

import numpy as np

import tinytorch.autograd  # noqa: F401  (gives tensors their gradients)
from tinytorch.activations import Tanh
from tinytorch.layers import Linear, Sequential
from tinytorch.losses import BCEWithLogitsLoss
from tinytorch.optimizers import Adam
from tinytorch.tensor import Tensor, manual_seed
from tinytorch.training import Trainer

INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
LABELS = np.array([[0], [1], [1], [0]], dtype=np.float32)


def xor_accuracy(model) -> float:
    predictions = model(Tensor(INPUTS)).data > 0
    return float((predictions == (LABELS > 0.5)).mean())


def train(run: MilestoneRun, model, name: str) -> list[float]:
    config = run.config
    trainer = Trainer(model, Adam(model.parameters(), lr=config["lr"]), BCEWithLogitsLoss())
    batches = [(Tensor(INPUTS), Tensor(LABELS))]
    losses = []
    for _ in run.progress(range(config["epochs"]), name):
        losses.append(trainer.train_epoch(batches))
        run.status = {"loss": f"{losses[-1]:.4f}"}
    return losses


def plot(single, mlp, single_losses, mlp_losses):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    grid_x, grid_y = np.meshgrid(np.linspace(-0.5, 1.5, 200), np.linspace(-0.5, 1.5, 200))
    grid = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1).astype(np.float32)
    for axis, model, title in ((axes[0], single, "one layer: a single straight line"),
                               (axes[1], mlp, "two layers: the plane bends")):
        regions = (model(Tensor(grid)).data.reshape(grid_x.shape) > 0).astype(float)
        axis.contourf(grid_x, grid_y, regions, levels=[-0.5, 0.5, 1.5], colors=["#f4c7c3", "#c6dbef"])
        for point, label in zip(INPUTS, LABELS[:, 0]):
            axis.scatter(*point, s=160, c="#2166ac" if label else "#c0392b", edgecolors="black")
        axis.set_title(f"{title} ({xor_accuracy(model):.0%})")
    axes[2].plot(single_losses, label="one layer")
    axes[2].plot(mlp_losses, label="two layers")
    axes[2].set_yscale("log")
    axes[2].set_xlabel("epoch")
    axes[2].set_title("training loss (binary cross-entropy)")
    axes[2].legend()
    return figure


def main() -> None:
    run = MilestoneRun.start("xor", story=__doc__)
    manual_seed(run.config["seed"])
    single = Sequential(Linear(2, 1))
    mlp = Sequential(Linear(2, run.config["hidden"]), Tanh(), Linear(run.config["hidden"], 1))
    single_losses = train(run, single, "one layer ")
    mlp_losses = train(run, mlp, "two layers")
    run.save_figure(plot(single, mlp, single_losses, mlp_losses), "decision_regions.png")
    run.finish({"single_layer_accuracy": xor_accuracy(single), "mlp_accuracy": xor_accuracy(mlp),
                "mlp_final_loss": mlp_losses[-1]})


if __name__ == "__main__":
    main()
