"""The example networks bundled with nncert, with ready-made robustness properties.

The networks are small classifiers trained by ``benchmarks/train_examples.py`` on
scikit-learn's offline datasets, mirroring the source paper's experiments (FORMULATIONS.md
section 12): Iris (4 inputs, 3 classes) and ``make_moons`` (2 inputs, 2 classes) MLPs with
ReLU, hardtanh, sigmoid and tanh activations, plus an MLP and a small convolutional network
on 8x8 digits (64 inputs, 10 classes). Every network takes inputs min-max normalised to
``[0, 1]`` (the normalisation is recorded in the metadata, not baked into the network), so
the properties live in the unit box.

Each network comes with a few correctly classified test points ``x0`` and an epsilon grid;
:func:`load_example` returns one L-infinity robustness property per point and epsilon, clipped
to the domain ``[0, 1]``. The metadata (:func:`example_info`) also records, per point, the
smallest radius at which a PGD attack found a counterexample (``attack_radius``, ``None``
when none was found) and that counterexample; such a property with ``eps >= attack_radius``
is known to be false.

Example:
    >>> from nncert.verify.examples import list_examples, load_example
    >>> "iris_relu" in list_examples()
    True
    >>> network, properties = load_example("iris_relu")   # doctest: +SKIP
    >>> properties[0].name                                 # doctest: +SKIP
    'iris_relu:p0:eps=0.01'
"""

from __future__ import annotations

from nncert.verify.example_catalog import (
    METADATA_FILE,
    UnknownExampleError,
    example_info,
    example_path,
    example_properties,
    list_examples,
)
from nncert.verify.importers import from_onnx
from nncert.verify.network import Network
from nncert.verify.spec import Property


def load_example(name: str) -> tuple[Network, list[Property]]:
    """Load a bundled network (via :func:`nncert.verify.importers.from_onnx`) and its properties.

    Returns:
        ``(network, properties)``: the network's ``name`` is the example name and its
        ``source`` the ONNX path; the properties are :func:`example_properties` ``(name)``.

    Raises:
        UnknownExampleError: for an unknown name (a ``KeyError``).
    """
    path = example_path(name)
    network = from_onnx(path, name=name)
    return network, example_properties(name)


__all__ = [
    "METADATA_FILE",
    "UnknownExampleError",
    "example_info",
    "example_path",
    "example_properties",
    "list_examples",
    "load_example",
]
