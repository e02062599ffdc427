"""What the two MNIST milestones (1986 MLP, 1998 CNN) share: data, the training loop with its
progress bar, evaluation, the confusion matrix and the learning curves. Everything that learns
is the student's tinytorch; this file only feeds it and reports."""

from __future__ import annotations

import time

import numpy as np

import tinytorch.autograd  # noqa: F401  (gradients)
from tinytorch.autograd import no_grad
from tinytorch.dataloader import DataLoader, TensorDataset
from tinytorch.losses import CrossEntropyLoss
from tinytorch.optimizers import Adam
from tinytorch.tensor import Tensor
from tinytorch.training import CosineWarmupSchedule, Trainer

MEAN, STD = 0.1307, 0.3081  # of MNIST's training pixels, scaled to [0, 1]


def load_mnist(run, flat: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Normalised images ((N, 784) or (N, 1, 28, 28)) and labels, cut to the preset's sizes."""
    arrays = run.dataset("mnist")
    limits = {"train": run.config.get("train_limit"), "val": run.config.get("val_limit"),
              "test": run.config.get("test_limit")}
    splits = {}
    for split, limit in limits.items():
        images = arrays[f"{split}_images"][:limit].astype(np.float32) / 255.0
        images = (images - MEAN) / STD
        images = images.reshape(len(images), -1) if flat else images[:, None, :, :]
        splits[split] = (images, arrays[f"{split}_labels"][:limit])
    return splits


def predict(model, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Class predictions, in eval mode and without building a graph."""
    model.eval()
    with no_grad():
        predictions = [model(Tensor(images[i:i + batch_size])).data.argmax(axis=1)
                       for i in range(0, len(images), batch_size)]
    model.train()
    return np.concatenate(predictions)


class CountingLoss:
    """Cross-entropy that also counts correct predictions of the batches it sees, so the
    progress bar shows the running training accuracy without a second forward pass."""

    def __init__(self) -> None:
        self.cross_entropy = CrossEntropyLoss()
        self.correct = self.seen = 0

    def __call__(self, logits: Tensor, targets: Tensor) -> Tensor:
        self.correct += int((logits.data.argmax(axis=1) == targets.data).sum())
        self.seen += len(targets.data)
        return self.cross_entropy(logits, targets)


def train_classifier(run, model, splits) -> dict[str, list[float]]:
    """Adam with warm-up and cosine decay; a progress bar per epoch; validation after each."""
    config = run.config
    train_images, train_labels = splits["train"]
    loader = DataLoader(TensorDataset(train_images, train_labels), batch_size=config["batch_size"],
                        shuffle=True, seed=config["seed"])
    optimizer = Adam(model.parameters(), lr=config["lr"])
    total_steps = config["epochs"] * len(loader)
    schedule = CosineWarmupSchedule(optimizer, config["lr"], min(config["warmup"], total_steps - 1), total_steps)
    counting = CountingLoss()
    trainer = Trainer(model, optimizer, counting, schedule=schedule)
    history: dict[str, list[float]] = {"loss": [], "train_accuracy": [], "val_accuracy": [], "images_per_second": []}
    for epoch in range(1, config["epochs"] + 1):
        losses, started = [], time.perf_counter()
        counting.correct = counting.seen = 0
        for inputs, targets in run.progress(loader, f"epoch {epoch}/{config['epochs']}"):
            losses.append(trainer.train_step(inputs, targets))
            run.status = {"loss": f"{np.mean(losses[-50:]):.4f}", "acc": f"{counting.correct / counting.seen:.4f}",
                          "img/s": f"{counting.seen / (time.perf_counter() - started):.0f}"}
        seen = counting.seen
        history["loss"].append(float(np.mean(losses)))
        history["images_per_second"].append(seen / (time.perf_counter() - started))
        val_images, val_labels = splits["val"]
        history["val_accuracy"].append(float((predict(model, val_images) == val_labels).mean()))
        sample = slice(0, min(len(train_labels), 10000))
        history["train_accuracy"].append(float((predict(model, train_images[sample]) == train_labels[sample]).mean()))
        run.console.print(f"  epoch {epoch}: loss {history['loss'][-1]:.4f}  train acc {history['train_accuracy'][-1]:.4f}"
                          f"  val acc {history['val_accuracy'][-1]:.4f}  {history['images_per_second'][-1]:.0f} img/s")
    return history


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, classes: int = 10) -> np.ndarray:
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def print_confusion(run, matrix: np.ndarray) -> None:
    from rich.table import Table

    table = Table(title="confusion matrix (rows: true digit, columns: predicted)", box=None)
    table.add_column("")
    for digit in range(len(matrix)):
        table.add_column(str(digit), justify="right")
    for digit, row in enumerate(matrix):
        table.add_row(str(digit), *(f"[bold]{n}[/bold]" if i == digit else (f"[red]{n}[/red]" if n else "·")
                                    for i, n in enumerate(row)))
    run.console.print(table)


def plot_curves(history: dict[str, list[float]], title: str):
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = range(1, len(history["loss"]) + 1)
    left.plot(epochs, history["loss"], marker="o")
    left.set_xlabel("epoch")
    left.set_ylabel("training loss (cross-entropy)")
    left.set_yscale("log")
    right.plot(epochs, history["train_accuracy"], marker="o", label="train")
    right.plot(epochs, history["val_accuracy"], marker="o", label="validation")
    right.set_xlabel("epoch")
    right.set_ylabel("accuracy")
    right.legend()
    figure.suptitle(title)
    return figure
