"""Personalized Epoch: when an edge stops its local training early.

Official rule (FedUReID poster, EasyFL ``reid/trainers.py``): after an epoch, stop
when at any batch of it the batch precision was 1 or the running sample-weighted
precision of the epoch so far exceeded the threshold (0.95). Precision is the
top-1 accuracy of the memory logits against the pseudo-labels.
"""

from __future__ import annotations

from collections.abc import Sequence

from reid_core.config.choices import EARLY_STOP_RULES as RULES
from reid_core.config.schema import EarlyStopConfig


def precision_rule(batch_correct: Sequence[int], batch_sizes: Sequence[int], threshold: float) -> bool:
    """True if some batch was all correct or the running precision passed ``threshold``.

    Parameters
    ----------
    batch_correct, batch_sizes : sequences of int
        Correct predictions and images of each batch of the epoch, in order.
    threshold : float
        Running-precision threshold (strictly exceeded), 0.95 in the paper.
    """
    if len(batch_correct) != len(batch_sizes):
        raise ValueError(
            f"batch_correct and batch_sizes differ in length ({len(batch_correct)}, {len(batch_sizes)})"
        )
    correct_so_far = seen_so_far = 0
    for correct, size in zip(batch_correct, batch_sizes):
        if size <= 0 or not 0 <= correct <= size:
            raise ValueError(f"need 0 <= correct <= size and size > 0, got correct={correct}, size={size}")
        correct_so_far += correct
        seen_so_far += size
        if correct == size or correct_so_far / seen_so_far > threshold:
            return True
    return False


def plateau_rule(epoch_losses: Sequence[float], patience: int, min_delta: float) -> bool:
    """True if each of the last ``patience`` epochs improved on the best earlier loss by < min_delta.

    Improvement of epoch e is (best(losses[:e]) - losses[e]) / |best(losses[:e])|,
    so a worse epoch counts as no progress. Needs ``patience + 1`` epochs.
    """
    if patience < 1:
        raise ValueError(f"patience must be >= 1, got {patience}")
    if len(epoch_losses) < patience + 1:
        return False
    for epoch in range(len(epoch_losses) - patience, len(epoch_losses)):
        best_before = min(epoch_losses[:epoch])
        improvement = (best_before - epoch_losses[epoch]) / max(abs(best_before), 1e-12)
        if improvement >= min_delta:
            return False
    return True


def trend_rule(epoch_losses: Sequence[float], window: int, min_delta: float) -> bool:
    """True if the last ``window`` epochs' mean loss is less than ``min_delta`` below the ``window`` before.

    The drop is relative: (mean(before) - mean(last)) / |mean(before)|. Averaging a window rides
    out the epoch-to-epoch noise of a small edge's loss, which stops ``plateau_rule`` at the first
    unlucky epoch while the loss still falls. Needs ``2 * window`` epochs.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if len(epoch_losses) < 2 * window:
        return False
    before = sum(epoch_losses[-2 * window:-window]) / window
    last = sum(epoch_losses[-window:]) / window
    return (before - last) / max(abs(before), 1e-12) < min_delta


class EarlyStopper:
    """Per-round bookkeeping for the trainer: feed batches, ask after each epoch.

    Parameters
    ----------
    config : EarlyStopConfig
        ``rule`` "none" trains all ``max_epochs``; ``min_epochs`` always run.
    max_epochs : int
        Upper bound on epochs this round.
    """

    def __init__(self, config: EarlyStopConfig, max_epochs: int) -> None:
        if config.rule not in RULES:
            raise ValueError(f"unknown early-stop rule {config.rule!r}; expected one of {RULES}")
        if max_epochs < 1:
            raise ValueError(f"max_epochs must be >= 1, got {max_epochs}")
        self.config = config
        self.max_epochs = max_epochs
        # trend: unset, a fifth of the round's epochs (16 -> 3, 4 -> 1): the rule can fire from 2/5 of a round
        self.window = config.window if config.window is not None else max(1, max_epochs // 5)
        self.epochs_run = 0
        self.epoch_losses: list[float] = []
        self.epoch_precisions: list[float] = []
        self.stopped_early = False
        self._correct: list[int] = []
        self._sizes: list[int] = []
        self._loss_sum = 0.0

    def update_batch(self, correct: int, size: int, loss: float) -> None:
        """Record one batch: correct top-1 predictions, images and mean loss."""
        if size <= 0 or not 0 <= correct <= size:
            raise ValueError(f"need 0 <= correct <= size and size > 0, got correct={correct}, size={size}")
        self._correct.append(int(correct))
        self._sizes.append(int(size))
        self._loss_sum += float(loss) * size

    def end_epoch(self) -> bool:
        """Close the epoch; True means stop (early, or ``max_epochs`` reached)."""
        seen = sum(self._sizes)
        if seen:
            self.epoch_losses.append(self._loss_sum / seen)
            self.epoch_precisions.append(sum(self._correct) / seen)
        self.epochs_run += 1
        early = self.epochs_run >= self.config.min_epochs and self._rule_fires()
        self._correct, self._sizes, self._loss_sum = [], [], 0.0
        if early and self.epochs_run < self.max_epochs:
            self.stopped_early = True
        return early or self.epochs_run >= self.max_epochs

    def _rule_fires(self) -> bool:
        rule = self.config.rule
        if rule == "precision":
            threshold = self.config.precision_threshold
            return bool(self._sizes) and precision_rule(self._correct, self._sizes, threshold)
        if rule == "plateau":
            return plateau_rule(self.epoch_losses, self.config.patience, self.config.min_delta)
        if rule == "trend":
            return trend_rule(self.epoch_losses, self.window, self.config.min_delta)
        return False
