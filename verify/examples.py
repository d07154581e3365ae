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

import copy
import functools
import importlib.resources
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nncert.verify.errors import InvalidNetworkError
from nncert.verify.spec import Property, robustness_property

if TYPE_CHECKING:
    from nncert.verify.network import Network

#: Name of the metadata file inside ``nncert/verify/data``.
METADATA_FILE = "examples.json"


def _data_dir() -> Path:
    """The package's ``data`` directory as a filesystem path."""
    return Path(str(importlib.resources.files("nncert.verify") / "data"))


@functools.cache
def _metadata() -> dict[str, Any]:
    path = _data_dir() / METADATA_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path}: bundled example metadata missing; run benchmarks/train_examples.py"
        ) from None
    meta: dict[str, Any] = json.loads(text)
    return meta


@functools.cache
def _by_name() -> dict[str, dict[str, Any]]:
    return {str(n["name"]): n for n in _metadata()["networks"]}


class UnknownExampleError(InvalidNetworkError, KeyError):
    """An example name that is not bundled.

    An :class:`~nncert.verify.errors.NncertError` (command lines report it as an input error,
    exit 3) and still a :class:`KeyError` for callers that catch one.
    """

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def _entry(name: str) -> dict[str, Any]:
    try:
        return _by_name()[name]
    except KeyError:
        raise UnknownExampleError(
            f"example:{name}: unknown example; available: {', '.join(list_examples())}"
        ) from None


def list_examples() -> list[str]:
    """Names of the bundled example networks, in a fixed order (Iris, moons, digits)."""
    return list(_by_name())


def example_info(name: str) -> dict[str, Any]:
    """The metadata of one example (a deep copy; modifying it changes nothing).

    Keys: ``name``, ``dataset``, ``activation``, ``architecture``, ``file``, ``input_shape``,
    ``n_inputs``, ``n_classes``, ``n_hidden_neurons``, ``n_parameters``, ``train_accuracy``,
    ``test_accuracy``, ``training``, ``normalisation`` (``min``/``max`` per raw feature) and
    ``properties`` (``domain``, ``eps`` and ``points``; each point has ``id``, ``test_index``,
    ``label``, ``x0`` in normalised coordinates (flattened), ``attack_radius``,
    ``counterexample`` and ``counterexample_class``).

    Raises:
        UnknownExampleError: for an unknown name (a ``KeyError``; the message lists the
            available ones).
    """
    return copy.deepcopy(_entry(name))


def example_path(name: str) -> Path:
    """Path of the example's ONNX file inside the installed package.

    Raises:
        UnknownExampleError: for an unknown name (a ``KeyError``).
    """
    return _data_dir() / str(_entry(name)["file"])


def example_properties(
    name: str, *, eps: list[float] | None = None, points: list[int] | None = None
) -> list[Property]:
    """The robustness properties of an example, one per point and epsilon (point-major).

    Args:
        name: the example.
        eps: override the epsilon grid (default: the bundled grid).
        points: indices of the bundled points to use (default: all).

    Returns:
        Properties named ``"<name>:p<k>:eps=<eps>"``, each with ``label`` set.
    """
    info = _entry(name)
    spec = info["properties"]
    lo, hi = (float(v) for v in spec["domain"])
    grid = [float(e) for e in (spec["eps"] if eps is None else eps)]
    all_points = spec["points"]
    chosen = all_points if points is None else [all_points[i] for i in points]
    n_classes = int(info["n_classes"])
    props: list[Property] = []
    for point in chosen:
        for e in grid:
            prop = robustness_property(
                point["x0"], e, int(point["label"]), n_classes, domain=(lo, hi)
            )
            props.append(
                Property(prop.cases, name=f"{name}:{point['id']}:eps={e:g}", label=prop.label)
            )
    return props


def load_example(name: str) -> tuple[Network, list[Property]]:
    """Load a bundled network (via :func:`nncert.verify.importers.from_onnx`) and its properties.

    Returns:
        ``(network, properties)``: the network's ``name`` is the example name and its
        ``source`` the ONNX path; the properties are :func:`example_properties` ``(name)``.

    Raises:
        UnknownExampleError: for an unknown name (a ``KeyError``).
    """
    from nncert.verify.importers import from_onnx

    path = example_path(name)
    network = from_onnx(path, name=name)
    return network, example_properties(name)


__all__ = [
    "UnknownExampleError",
    "example_info",
    "example_path",
    "example_properties",
    "list_examples",
    "load_example",
]
