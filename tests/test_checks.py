import math

import numpy as np
import pytest
import torch

from rlvr.checks import probability


@pytest.mark.parametrize(
    "value, expected",
    [(0, 0.0), (1, 1.0), (0.25, 0.25), (np.float32(0.5), 0.5), (torch.tensor(0.75), 0.75)],
)
def test_probability_returns_the_float(value, expected):
    got = probability(value, "p")
    assert type(got) is float and got == expected


@pytest.mark.parametrize("value", [-0.01, 1.0001, math.nan, math.inf, np.float64(2.0)])
def test_probability_refuses_values_outside_the_unit_interval(value):
    with pytest.raises(ValueError, match=r"^p=.* must lie in \[0, 1\] \(a rate\)$"):
        probability(value, "p", "a rate")


@pytest.mark.parametrize("value", [True, False, "0.5", None, [0.5], np.array([0.1, 0.2])])
def test_probability_refuses_what_is_not_one_number(value):
    with pytest.raises(TypeError, match="^p must be"):
        probability(value, "p")
