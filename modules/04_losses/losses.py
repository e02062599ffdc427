# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 04: Losses
#
# A network turns inputs into predictions. A **loss** turns predictions and the right answers
# into *one number* that says how wrong the network is. Training is nothing more than making
# that number smaller: module 05 (autograd) computes how the loss changes with every weight,
# module 06 (optimizers) moves the weights downhill. So the loss is the *definition* of what
# the network learns; choose it badly, or compute it carelessly, and no amount of training
# helps.
#
# A good loss is
#
# - **zero (or smallest) when the prediction is right** and grows as it gets worse,
# - **smooth**, so that its gradient says which way "better" is,
# - **numerically safe**: finite for every input the network can produce, including the
#   extreme ones it produces when it is very confident.
#
# In this module you build the losses PyTorch users reach for every day:
#
# | loss | task | prediction | target |
# | --- | --- | --- | --- |
# | `MSELoss` | regression | any real numbers | real numbers, same shape |
# | `CrossEntropyLoss` | one of C classes | logits `(N, C)` | class indices `(N,)` |
# | `BCELoss` | yes/no | probabilities in [0, 1] | 0/1 (or soft) labels |
# | `BCEWithLogitsLoss` | yes/no | logits (any real) | 0/1 (or soft) labels |
#
# and two functions from information theory that explain *why* cross-entropy is the right
# loss for classification: `entropy(p)` and `kl_divergence(p, q)`.
#
# The running theme is numerical stability. `exp` is the most dangerous function in deep
# learning: in float32 it overflows to `inf` as soon as its argument passes about 88.7. You
# will compute every loss so that it never does.

# %%
from __future__ import annotations

from typing import Any

import numpy as np

from tinytorch.tensor import Tensor

# %% [markdown]
# ## 1. One loss per example, then a reduction
#
# Every loss here first computes one number per example (per element, for MSE and BCE), then
# *reduces* them, as chosen by `reduction`:
#
# - `"mean"` (the default): the average. The loss, and so the size of its gradient, does not
#   depend on the batch size, so a learning rate tuned with 32 examples per batch still works
#   with 256.
# - `"sum"`: the total. Grows with the batch.
# - `"none"`: no reduction; the per-example losses, in the shape of the input. Useful for
#   weighting examples, or for finding the examples the model gets most wrong.
#
# `reduce_loss` is that choice in one function; the cell after it is given. The
# base class `Loss` checks the `reduction` name once, when the loss is built, and
# `loss(prediction, target)` calls `forward`, the method each loss writes (module 05 attaches
# gradients to `forward`). The helper `_as_tensor(value, like=...)` turns a list or numpy
# array into a Tensor, in `like`'s dtype if given: start each `forward` with it, so the
# prediction decides the dtype of the loss.

# %% nbgrader={"grade": false, "grade_id": "reduce-loss", "locked": false, "schema_version": 3, "solution": true, "task": false}
REDUCTIONS = ("mean", "sum", "none")


def reduce_loss(losses: Tensor, reduction: str) -> Tensor:
    """The mean of `losses` (0-d), their sum (0-d), or `losses` unchanged for "none"."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %%
def _as_tensor(value: Any, like: Tensor | None = None) -> Tensor:
    """`value` as a Tensor; with `like`, a floating tensor takes `like`'s dtype.

    Targets often arrive as lists, numpy arrays, or in another float dtype than the
    prediction; the prediction decides the dtype of the loss.
    """
    tensor = value if isinstance(value, Tensor) else Tensor(value)
    if like is not None and tensor.dtype != like.dtype:
        tensor = tensor.to(like.dtype)
    return tensor


class Loss:
    """Base class of the losses: stores `reduction`; calling the loss calls `forward`."""

    def __init__(self, reduction: str = "mean") -> None:
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {', '.join(map(repr, REDUCTIONS))}, not {reduction!r}")
        self.reduction = reduction

    def __call__(self, prediction: Any, target: Any) -> Tensor:
        return self.forward(prediction, target)

    def forward(self, prediction: Any, target: Any) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define forward(prediction, target)")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reduction={self.reduction!r})"


# %% [markdown]
# ## 2. Mean squared error, for regression
#
# When the network predicts a number (a price, a temperature, a coordinate), the natural
# measure of error is the distance to the right number. MSE squares it:
#
# $$\text{MSE} = \frac{1}{n}\sum_i (\hat y_i - y_i)^2$$
#
# Squaring makes every error positive, punishes large errors much more than small ones, and
# has the simplest possible gradient, $2(\hat y - y)/n$: proportional to the error itself.
#
# **The shape trap.** A network ending in `Linear(16, 1)` predicts shape `(N, 1)`; the targets
# usually come as shape `(N,)`. Broadcasting happily computes `(N, 1) - (N,)`, which is an
# `(N, N)` matrix: the difference of *every* prediction with *every* target. Its mean is a
# perfectly finite, plausible-looking number, the network trains a little, and nothing tells
# you that it is learning to predict the average target for every input. PyTorch only prints
# a warning. We refuse: prediction and target must have the same shape, and the error names
# both shapes so the fix (`prediction.reshape(-1)` or `target.reshape(-1, 1)`) is obvious.

# %% nbgrader={"grade": false, "grade_id": "mse-loss", "locked": false, "schema_version": 3, "solution": true, "task": false}
class MSELoss(Loss):
    """Mean squared error between a prediction and a target of the same shape."""

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        """(prediction - target)**2, reduced; a ValueError naming both shapes if they differ."""
        # YOUR CODE HERE
        raise NotImplementedError()


# %% [markdown]
# ## 3. Cross-entropy, for classification
#
# A classifier outputs **logits**: one real number per class, shape `(N, C)`. Softmax turns a
# row of logits $x$ into probabilities, $p_j = e^{x_j} / \sum_k e^{x_k}$. A good classifier
# gives the *true* class $y$ a high probability, so we maximise $p_y$, or equivalently
# minimise the **negative log-likelihood**
#
# $$\ell = -\log p_y = -x_y + \log\sum_k e^{x_k}.$$
#
# The log turns "probability of the whole data set" (a product over examples) into a sum over
# examples, and it punishes confident mistakes without limit: $p_y = 0.01$ costs 4.6,
# $p_y = 10^{-6}$ costs 13.8. The right-hand form, logit minus **log-sum-exp**, is how we
# compute it.
#
# **Why not just `log(softmax(x))[y]`?** Two ways to fail:
#
# 1. *Overflow.* A logit of 1000 (float64) or of 89 (float32) makes $e^{x}$ infinite; softmax
#    becomes `inf / inf = nan`, and the loss is `nan`. Training is over.
# 2. *Underflow.* With logits `[0, -1000]`, the second class has probability $e^{-1000}$,
#    which rounds to 0, and `log(0) = -inf`, although the right answer, $-1000$, is an
#    ordinary number.
#
# **The log-sum-exp trick.** For any constant $m$,
# $\log\sum_k e^{x_k} = m + \log\sum_k e^{x_k - m}$. Choose $m = \max_k x_k$: now the largest
# exponent is $e^0 = 1$, nothing can overflow, the sum lies between 1 and C so its log is
# finite, and the terms that underflow to 0 are the ones too small to matter. The negative
# log probabilities are then `log(sum(exp(x - m))) - (x - m)`, computed without ever forming a
# probability. The shift $m$ changes nothing mathematically, so it is a constant: `detach()`
# it (module 05 will then not differentiate through the max).
#
# **Picking the true class.** With negative log-probabilities `nll` of shape `(N, C)` and
# labels `target` of shape `(N,)`, `nll[rows, target]` with `rows = 0, 1, ..., N-1` picks one
# number per row: integer-array indexing.
#
# **Labels must be checked.** numpy reads index `-1` as "the last class" and will happily
# train a model on that. A label outside `0 .. C-1` is always a bug in the data pipeline
# (often: labels numbered from 1, or C miscounted), so raise a ValueError that names the bad
# label and C.
#
# **A number to remember: ln C.** If all logits of a row are equal, every class gets
# probability 1/C and the loss is $\ln C$: 0.69 for 2 classes, 2.30 for 10, 10.8 for 50257 (a
# GPT vocabulary). A freshly initialised network should start close to that. If your first
# loss is far above ln C, the initial weights are too large and the network is confidently
# wrong before it has seen anything.

# %% nbgrader={"grade": false, "grade_id": "cross-entropy-loss", "locked": false, "schema_version": 3, "solution": true, "task": false}
class CrossEntropyLoss(Loss):
    """Negative log-likelihood of the true classes under softmax(logits), via log-sum-exp."""

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Loss of logits (N, C) against integer class indices (N,), reduced.

        A label outside 0 .. C-1 raises a ValueError naming the label and C; shapes that do
        not fit raise a ValueError naming them.
        """
        # YOUR CODE HERE
        raise NotImplementedError()


# %% [markdown]
# ## 4. Binary cross-entropy, and why the logits version is stabler
#
# For a yes/no question the network outputs one probability $p$ that the answer is yes
# (usually `sigmoid(x)` of a logit $x$), and the label is $y \in \{0, 1\}$. Cross-entropy
# with two classes becomes
#
# $$\ell = -\big[y \log p + (1 - y)\log(1 - p)\big].$$
#
# Soft labels ($y = 0.9$, say) are allowed: the formula is the same.
#
# **`BCELoss` and the clamp.** A probability of exactly 0 or 1 makes one of the logs
# $-\infty$. That happens sooner than you think: in float32, `sigmoid(17)` is exactly 1.0. Like
# PyTorch, clamp each log term at $-100$ (`log_p.maximum(-100)`), so the worst a single example
# can cost is 100. It keeps the loss finite, but it is a patch: the true loss for a logit of
# 30 and label 0 is 30, not 100, and beyond the clamp the gradient is zero, so the network
# gets no signal to fix its worst mistakes. A probability outside [0, 1] means logits were
# passed by mistake: raise a ValueError that says to use `BCEWithLogitsLoss`.
#
# **`BCEWithLogitsLoss`: never form the probability.** Work with the logit $x$ directly. With
# $\log \sigma(x) = -\log(1 + e^{-x})$ and $\log(1 - \sigma(x)) = -x - \log(1 + e^{-x})$,
#
# $$\ell = (1 - y)\,x + \log(1 + e^{-x}).$$
#
# For very negative $x$ the $e^{-x}$ overflows, so split by sign: for $x < 0$,
# $\log(1 + e^{-x}) = -x + \log(1 + e^{x})$. Both cases together give the stable form
#
# $$\ell = \max(x, 0) - x\,y + \log\!\big(1 + e^{-|x|}\big),$$
#
# where the exponent is never positive, so nothing overflows, and the loss is exact at any
# logit. (Tensor has no `abs`, but $|x| = \max(x, -x)$.) This is why classifiers end in a
# *linear* layer and put the sigmoid inside the loss. The same holds for softmax: output
# logits, let `CrossEntropyLoss` take care of the rest.

# %% nbgrader={"grade": false, "grade_id": "bce-loss", "locked": false, "schema_version": 3, "solution": true, "task": false}
class BCELoss(Loss):
    """Binary cross-entropy of probabilities in [0, 1] against labels in [0, 1]."""

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        """-(y log p + (1-y) log(1-p)) with each log clamped at -100, reduced.

        Prediction and target must have the same shape (ValueError otherwise), and every
        probability must lie in [0, 1] (ValueError otherwise).
        """
        # YOUR CODE HERE
        raise NotImplementedError()


class BCEWithLogitsLoss(Loss):
    """Binary cross-entropy of sigmoid(logits), computed stably from the logits."""

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """max(x, 0) - x*y + log(1 + exp(-|x|)), reduced; shapes must match (ValueError)."""
        # YOUR CODE HERE
        raise NotImplementedError()


# %% [markdown]
# ## 5. Entropy and KL divergence: what cross-entropy measures
#
# **Entropy** is the average surprise of a distribution, in *nats* (natural log):
#
# $$H(p) = -\sum_j p_j \log p_j.$$
#
# A one-hot distribution (certain of one outcome) has entropy 0; the uniform distribution over
# C outcomes has the largest possible, $\ln C$. A term with $p_j = 0$ contributes nothing:
# $p \log p \to 0$ as $p \to 0$, so we define $0 \log 0 = 0$. The computer does not know
# that: `0 * log(0)` is `0 * -inf = nan`. `xlogy(x, y)` computes $x \log y$ with that
# convention; a way to write it with Tensor operations: where $x = 0$, replace $y$ by 1 before
# taking the log (`log 1 = 0`), with the boolean tensors `x > 0` and `x <= 0` as 0/1 masks.
#
# **KL divergence** measures how badly a distribution $q$ stands in for the true one $p$:
#
# $$\mathrm{KL}(p \,\|\, q) = \sum_j p_j \log\frac{p_j}{q_j} = \sum_j \big(p_j\log p_j - p_j \log q_j\big).$$
#
# It is never negative, and it is 0 exactly when $q = p$. Where $p_j = 0$ the term is 0
# whatever $q_j$ is; where $p_j > 0$ but $q_j = 0$ it is infinite: $q$ calls impossible
# something that happens.
#
# **KL is not a distance: it is asymmetric.** Take $p = (0.5, 0.5)$ and $q = (0.9, 0.1)$:
#
# - $\mathrm{KL}(p\|q) = 0.5\ln\frac{0.5}{0.9} + 0.5\ln\frac{0.5}{0.1} = \ln\frac{5}{3} \approx 0.511$
# - $\mathrm{KL}(q\|p) = 0.9\ln\frac{0.9}{0.5} + 0.1\ln\frac{0.1}{0.5} \approx 0.529 - 0.161 = 0.368$
#
# $\mathrm{KL}(p\|q)$ charges heavily wherever $p$ has mass and $q$ has little (here the second
# outcome, which $q$ thinks unlikely). Which direction you minimise changes what a model
# learns; module 16's distillation loss is a KL between a teacher's and a student's outputs.
#
# **The link to cross-entropy.** $-\sum_j p_j \log q_j = H(p) + \mathrm{KL}(p\|q)$. With a
# one-hot label $p$, $H(p) = 0$, so the classification loss of section 3 *is* the KL
# divergence from the label to the model's prediction: minimising it pulls the prediction
# towards the truth.
#
# Both functions reduce along `axis` (the last, by default), so a batch of distributions of
# shape `(N, C)` gives N numbers.

# %% nbgrader={"grade": false, "grade_id": "entropy-kl", "locked": false, "schema_version": 3, "solution": true, "task": false}
def xlogy(x: Tensor, y: Tensor) -> Tensor:
    """x * log(y) elementwise, taken as 0 wherever x is 0 (so 0 log 0 = 0, not nan)."""
    # YOUR CODE HERE
    raise NotImplementedError()


def entropy(p: Tensor, axis: int = -1) -> Tensor:
    """-sum p log p along `axis` (natural log, 0 log 0 = 0), e.g. shape (N, C) -> (N,)."""
    # YOUR CODE HERE
    raise NotImplementedError()


def kl_divergence(p: Tensor, q: Tensor, axis: int = -1) -> Tensor:
    """KL(p || q) = sum p log(p / q) along `axis` (0 log 0 = 0); >= 0, and 0 when q equals p."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## Try it
#
# Run this file (`python modules/04_losses/losses.py`) or these cells in the notebook.

# %%
if __name__ == "__main__":
    prediction = Tensor([[2.5], [0.0], [2.0], [8.0]])      # a Linear(..., 1) output: (4, 1)
    target = Tensor([3.0, -0.5, 2.0, 7.0])                 # the labels: (4,)
    print("MSE:", MSELoss()(prediction.reshape(-1), target))
    try:
        MSELoss()(prediction, target)
    except ValueError as error:
        print("refused:", error)
    print("what broadcasting would have computed:", ((prediction - target) ** 2).mean().item())

    logits = Tensor([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]])
    labels = Tensor(np.array([0, 1]))
    print("cross-entropy:", CrossEntropyLoss()(logits, labels),
          "per example:", CrossEntropyLoss(reduction="none")(logits, labels))
    print("uniform logits over 10 classes:", CrossEntropyLoss()(Tensor(np.zeros((4, 10))), Tensor(np.zeros(4, dtype=np.int64))),
          "= ln 10 =", np.log(10))

    # the naive formula against log-sum-exp at logit 1000 (float64)
    huge = np.array([[1000.0, 0.0, -1000.0]])
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        naive = -np.log(np.exp(huge) / np.exp(huge).sum(axis=1, keepdims=True))[0]
    stable = CrossEntropyLoss(reduction="none")(Tensor(huge.repeat(3, axis=0)), Tensor(np.array([0, 1, 2])))
    print("loss of each class as the true one, logits [1000, 0, -1000]:")
    print("  naive -log(softmax(x)):", naive, "| log-sum-exp:", stable)

    print("BCE at p = 0 and 1:", BCELoss(reduction="none")(Tensor([0.0, 1.0, 0.0]), Tensor([1.0, 0.0, 0.0])))
    print("BCE with logits at +-1e4:", BCEWithLogitsLoss(reduction="none")(Tensor([1e4, -1e4]), Tensor([0.0, 0.0])))

    p, q = Tensor(np.array([0.5, 0.5])), Tensor(np.array([0.9, 0.1]))
    # -0.0 is zero: IEEE floats have a signed zero, and -(0.0) gives it
    print(f"H(p) = {entropy(p).item():.4f} (ln 2 = {np.log(2):.4f}), H(one-hot) = {entropy(Tensor([0.0, 1.0])).item()}")
    print(f"KL(p||q) = {kl_divergence(p, q).item():.4f}, KL(q||p) = {kl_divergence(q, p).item():.4f}, "
          f"KL(p||p) = {kl_divergence(p, p).item()}")

# %% [markdown]
# ## Systems insight: float32 `exp` overflows at 88.7
#
# The largest float32 is about $3.4 \times 10^{38}$, and $\ln(3.4 \times 10^{38}) \approx 88.72$:
# `exp` of anything larger is `inf`. For float64 the limit is about 709.8. Logits of 90 are
# not exotic: a confident network, a large learning rate, or one bad batch produces them. The
# cell below measures it: the naive softmax-then-log cross-entropy in float32 breaks exactly at
# that boundary, while log-sum-exp stays exact (the loss for logit s is ln(1 + e^s), a hair
# above s). It then measures the price of forming the
# probability in binary cross-entropy: in float32, `sigmoid(x)` rounds to exactly 1.0 from
# about x = 17, after which `BCELoss` can only answer its clamp value of 100, while
# `BCEWithLogitsLoss` keeps giving the true loss, x.

# %%
if __name__ == "__main__":
    f32 = np.float32
    print("float32 largest:", np.finfo(f32).max, "-> exp overflows above ln(max) =", np.log(np.finfo(f32).max))
    print(f"{'logit':>8} {'naive CE (float32)':>20} {'log-sum-exp CE':>16}")
    for scale in (10.0, 88.0, 88.7, 88.8, 100.0, 1000.0):
        row = np.array([[scale, 0.0]], dtype=f32)          # true class 1, so the loss is `scale`
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            e = np.exp(row)
            naive = -np.log(e / e.sum(axis=1, keepdims=True))[0, 1]
        stable = CrossEntropyLoss()(Tensor(row), Tensor(np.array([1]))).item()
        print(f"{scale:>8} {naive:>20.6f} {stable:>16.6f}")

    print(f"\n{'logit x':>8} {'sigmoid(x) f32':>15} {'BCELoss':>10} {'WithLogits':>11}   (label 0: the true loss is about x)")
    for x in (5.0, 10.0, 15.0, 17.0, 20.0, 30.0):
        logit = Tensor(np.array([x], dtype=f32))
        probability = Tensor(1 / (1 + np.exp(-logit.data)))
        label = Tensor(np.array([0.0], dtype=f32))
        print(f"{x:>8} {probability.item():>15.9f} {BCELoss()(probability, label).item():>10.4f} "
              f"{BCEWithLogitsLoss()(logit, label).item():>11.4f}")

# %% [markdown]
# ## Checkpoint
#
# `tito check 04` runs `tests/checkpoints/test_04_losses.py`. It compares every loss with
# PyTorch in float64 (`torch.nn.MSELoss`, `CrossEntropyLoss`, `BCELoss`, `BCEWithLogitsLoss`)
# for each reduction, on shapes and values drawn by Hypothesis, including logits of $\pm 10^4$.
# It checks that cross-entropy of uniform logits is ln C and stays finite at huge logits in
# float32, that bad labels and mismatched shapes raise errors naming the culprit, that BCE is
# finite at p = 0 and 1, the entropy of uniform and one-hot distributions, KL(p, p) = 0,
# KL >= 0, the asymmetry example above, KL against PyTorch's `kl_div`, and that every result
# is a Tensor in the input's dtype.
