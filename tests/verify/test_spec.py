"""Boxes and robustness properties: an empty input box is an input error naming the
variable (issue 17)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from nncert.verify.errors import InvalidPropertyError
from nncert.verify.spec import Box, robustness_property


def test_empty_box_names_the_variable() -> None:
    msg = "empty input box: X_3 has lower bound 0.5 > upper bound 0.4"
    with pytest.raises(InvalidPropertyError, match=re.escape(msg)):
        Box(np.array([0.0, 0.0, 0.0, 0.5]), np.array([1.0, 1.0, 1.0, 0.4]))
    assert Box(np.zeros(2), np.zeros(2)).dim == 2  # a point is not empty


def test_robustness_property_with_an_empty_region() -> None:
    with pytest.raises(InvalidPropertyError, match=r"empty input box: X_0 has lower bound 0\.9"):
        robustness_property(np.array([0.5, 0.5]), 0.1, 0, 2, domain=(0.9, 0.8))
    with pytest.raises(InvalidPropertyError, match="does not intersect"):
        robustness_property(np.array([2.0, 0.5]), 0.1, 0, 2, domain=(0.0, 1.0))
