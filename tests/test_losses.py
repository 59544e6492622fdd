"""The losses against hand computations, and their stability at extreme logits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from minibloom.errors import InputError
from minibloom.losses import bce_with_logits, cross_entropy, log_softmax, mse


def test_cross_entropy_by_hand():
    logits = np.array([[0.0, math.log(3.0)], [2.0, 2.0]], np.float32)  # p = [1/4, 3/4] and [1/2, 1/2]
    expected = -(math.log(0.25) + math.log(0.5)) / 2
    assert cross_entropy(logits, np.array([0, 1])) == pytest.approx(expected, rel=1e-6)


def test_ignored_targets_do_not_count_and_all_ignored_is_nan():
    logits = np.array([[0.0, 0.0], [5.0, -5.0]], np.float32)
    assert cross_entropy(logits, np.array([1, -100])) == pytest.approx(math.log(2), rel=1e-6)
    assert np.isnan(cross_entropy(logits, np.array([-100, -100])))


def test_log_softmax_is_stable_at_huge_logits():
    x = np.array([[1e30, 0.0, -1e30]], np.float32)
    out = log_softmax(x)
    assert np.isfinite(out[0, :2]).all() and out[0, 0] == 0.0
    assert cross_entropy(np.array([[1000.0, 0.0]], np.float32), np.array([1])) == pytest.approx(1000.0)


def test_bce_with_logits_by_hand_and_stable():
    x, t = np.array([[0.0, 2.0]], np.float32), np.array([[1.0, 0.0]], np.float32)
    by_hand = (math.log(2.0) + (2.0 + math.log1p(math.exp(-2.0)))) / 2
    assert bce_with_logits(x, t) == pytest.approx(by_hand, rel=1e-6)
    assert bce_with_logits(np.array([[-1e4, 1e4]], np.float32), np.array([[0.0, 1.0]])) == 0.0


def test_mse_by_hand():
    assert mse(np.array([1.0, 2.0], np.float32), np.array([0.0, 4.0])) == pytest.approx(2.5)


def test_out_of_range_targets_are_named():
    with pytest.raises(InputError, match="labels holds 7 at flat position 1"):
        cross_entropy(np.zeros((2, 3), np.float32), np.array([0, 7]))
