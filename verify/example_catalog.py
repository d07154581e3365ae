"""The catalogue of bundled example networks: names, files, metadata and their properties.

The lowest-level part of :mod:`nncert.verify.examples` (which adds :func:`load_example`): the
importers resolve ``example:NAME`` through it without depending on the example loader.
"""

from __future__ import annotations

import copy
import functools
import importlib.resources
import json
from pathlib import Path
from typing import Any

from nncert.verify.errors import InvalidNetworkError
from nncert.verify.spec import Property, robustness_property

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


def dataset_metadata(dataset: str) -> dict[str, Any] | None:
    """The metadata recorded for a training dataset (``None`` if there is none)."""
    found = _metadata().get("datasets", {}).get(dataset)
    return None if found is None else copy.deepcopy(found)


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


__all__ = [
    "METADATA_FILE",
    "UnknownExampleError",
    "dataset_metadata",
    "example_info",
    "example_path",
    "example_properties",
    "list_examples",
]
