"""Confidence intervals and paired tests on known and synthetic data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from sairbench.stats import mean_ci95, paired_test


def test_mean_ci95_known_values():
    # mean 2.5, sample sd sqrt(5/3), n 4 -> half width t(0.975, 3) * sd / 2
    mean, half = mean_ci95([1.0, 2.0, 3.0, 4.0])
    assert mean == pytest.approx(2.5)
    assert half == pytest.approx(3.182446305284263 * math.sqrt(5 / 3) / 2, rel=1e-9)


def test_mean_ci95_edge_cases():
    m, h = mean_ci95([1.0, float("nan"), 3.0])
    assert m == 2.0 and h == pytest.approx(sps.t.ppf(0.975, 1) * math.sqrt(2) / math.sqrt(2))
    m, h = mean_ci95([7.0])
    assert m == 7.0 and math.isnan(h)
    m, h = mean_ci95([])
    assert math.isnan(m) and math.isnan(h)
    m, h = mean_ci95([float("nan")] * 3)
    assert math.isnan(m) and math.isnan(h)
    assert mean_ci95([5.0, 5.0, 5.0]) == (5.0, 0.0)


def test_mean_ci95_coverage_on_synthetic_data():
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(400):
        m, h = mean_ci95(rng.normal(3.0, 2.0, 15))
        hits += abs(m - 3.0) <= h
    assert 0.91 <= hits / 400 <= 0.99


def test_paired_test_finds_a_shift():
    rng = np.random.default_rng(1)
    b = rng.normal(30, 3, 200)  # per-image scores of model b
    a = b + 0.5 + rng.normal(0, 0.4, 200)  # model a: 0.5 better on the same images
    res = paired_test(a, b, n_boot=2000, seed=0)
    assert res["n"] == 200
    assert res["mean_diff"] == pytest.approx(np.mean(a - b))
    assert res["ci_low"] < 0.5 < res["ci_high"]
    assert res["ci_low"] > 0.3 and res["ci_high"] < 0.7
    assert res["p_wilcoxon"] < 1e-10
    assert res["p_wilcoxon"] == pytest.approx(sps.wilcoxon(a - b).pvalue)


def test_paired_test_no_shift_and_determinism():
    rng = np.random.default_rng(2)
    b = rng.normal(0.9, 0.05, 100)
    a = b + rng.normal(0, 0.01, 100)
    r1 = paired_test(a, b, seed=3)
    r2 = paired_test(a, b, seed=3)
    r3 = paired_test(a, b, seed=4)
    assert r1 == r2
    assert r1["ci_low"] != r3["ci_low"]
    assert r1["ci_low"] < 0 < r1["ci_high"] or r1["p_wilcoxon"] > 0.01


def test_paired_test_edge_cases():
    same = paired_test([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert same["mean_diff"] == 0.0 and same["p_wilcoxon"] == 1.0
    assert same["ci_low"] == 0.0 and same["ci_high"] == 0.0 and same["n"] == 3
    nan_pairs = paired_test([1.0, float("nan"), 3.0, float("inf")], [0.0, 1.0, 1.0, 1.0])
    assert nan_pairs["n"] == 2 and nan_pairs["mean_diff"] == 1.5
    empty = paired_test([], [])
    assert empty["n"] == 0 and math.isnan(empty["mean_diff"]) and math.isnan(empty["p_wilcoxon"])
    one = paired_test([2.0], [1.0])
    assert one["n"] == 1 and one["mean_diff"] == 1.0 and math.isnan(one["ci_low"])
    with pytest.raises(ValueError):
        paired_test([1.0, 2.0], [1.0])
