"""The root refinement of the ReLU-phase search on a real MNIST-FC network.

``mnist-net_256x4`` with ``prop_2_0.03``: plain CROWN with optimised objective slopes leaves
some of the nine cases open at the root; with the hidden-layer bounds refined by optimised
slopes (:meth:`~nncert.verify.bounds.BoundEngine.refine_intermediate`) every case closes
there. The proof records the refinement in its recipe and the independent checker re-derives
it; a recipe without it does not close those cases (so the checker really uses it).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest

from nncert.certificates.proofcheck import check_tree
from nncert.verify.importers import from_onnx
from nncert.verify.options import VerifyOptions
from nncert.verify.relu_bab import ReluBabSettings, relu_bab_case
from nncert.verify.result import CaseContext
from nncert.verify.vnnlib import load_vnnlib

MNIST = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks" / "vnncomp" / "mnistfc"

pytestmark = pytest.mark.skipif(not MNIST.is_dir(), reason="shared MNIST-FC suite not present")


def test_refined_root_closes_cases_and_the_checker_rederives_it() -> None:
    net = from_onnx(str(MNIST / "onnx" / "mnist-net_256x4.onnx")).normalized()
    prop = load_vnnlib(str(MNIST / "vnnlib" / "prop_2_0.03.vnnlib"))
    needed = 0
    for i, case in enumerate(prop.cases):
        ctx = CaseContext(
            VerifyOptions(), time.perf_counter() + 60, np.random.default_rng(0), None, i, None
        )
        out = relu_bab_case(net, case, ctx, settings=ReluBabSettings())
        assert out.status == "verified" and out.proof is not None
        tree = out.proof
        assert tree.recipe["root_alpha_iters"] == ReluBabSettings().root_alpha_iters
        assert tree.n_nodes == 1  # closed at the root
        assert check_tree(net, case, tree).ok
        plain = dataclasses.replace(tree, recipe={**tree.recipe, "root_alpha_iters": 0})
        needed += not check_tree(net, case, plain).ok
    assert needed >= 1
