"""Several ONNX inputs and outputs, and hidden tensors, as one input and one output.

The IR (:class:`~nncert.verify.network.Network`) maps one flat input vector to one flat output
vector, and :func:`~nncert.verify.importers.from_onnx` reads graphs with one input and one
output. A VNN-LIB 2.0 query may declare several inputs and outputs of a network (the standard's
MIO theory) and hidden tensors (``declare-hidden``, the H theory: the value of an intermediate
ONNX tensor). :mod:`nncert.verify.vnnlib` numbers the query's variables as

.. math::

    x = [\\mathrm{vec}(X_1); \\dots; \\mathrm{vec}(X_p)], \\qquad
    y = [\\mathrm{vec}(Y_1); \\dots; \\mathrm{vec}(Y_q); \\mathrm{vec}(H_1); \\dots;
    \\mathrm{vec}(H_r)]

(declaration order, each tensor flattened in C order). This module rewrites the ONNX graph
into an equivalent one with exactly that single input and single output:

* :func:`bind` matches the declared tensors to the graph. Following the standard, declared
  inputs and outputs are matched to ``graph.input`` (initializers excluded) and
  ``graph.output`` **by order** unless every input and output of the declaration names its
  ONNX tensor, in which case they are matched **by name**; a hidden tensor always names the
  ONNX tensor (a node output). Every graph input must be declared (an undeclared input would
  be a free, unbounded variable); by name, outputs may be a subset. Sizes must agree (symbolic
  dimensions of the model count as 1, the batch of one); a non-leading symbolic input dimension
  is refused.
* :func:`single_io_model` adds one input ``[1, n]`` and, for the input ``X_k`` at offset
  ``o_k`` with ``n_k`` entries, ``Slice(o_k, o_k + n_k)`` on axis 1 and ``Reshape`` to the
  ONNX input's shape (a ``Cast`` first when that input's element type differs), producing the
  tensor the original nodes read; every output and hidden tensor ``T_j`` goes through
  ``Reshape([1, m_j])`` (its declared size: a tensor of another size fails in the importer and
  in onnxruntime instead of being misread) and one ``Concat`` on axis 1 stacks them. Slices,
  reshapes, casts between float types of the same value and concatenation are exact, so the
  rewritten graph computes exactly ``x -> y`` above, with the original nodes unchanged.
* :func:`replay_original` evaluates the **original** model in onnxruntime (hidden tensors added
  as graph outputs of a copy, which changes no computation): each input gets its slice of
  ``x``, the outputs and hidden tensors are read by name and stacked as ``y``. A witness is
  believed only when this replay violates the property too.

Everything that cannot be matched is an :class:`~nncert.verify.errors.InvalidNetworkError`
with a one-line message naming the file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from nncert.verify.errors import InvalidNetworkError
from nncert.verify.fileio import is_gzip, read_input
from nncert.verify.network import FloatArray
from nncert.verify.spec import TensorDecl
from nncert.verify.vnnlib import onnx_name_text

#: prefix of the tensors and nodes the rewrite adds
_PREFIX = "nncert_io"

#: ONNX element types the rewrite feeds and reads (float16, float, double)
_FLOAT_TYPES = {10: np.float16, 1: np.float32, 11: np.float64}


@dataclass(frozen=True)
class TensorSlot:
    """One ONNX tensor of the rewritten interface.

    Attributes:
        name: the tensor's name in the ONNX graph.
        shape: its shape as fed or read (symbolic dimensions of the model as 1).
        size: number of entries (``prod(shape)``; the declared size for hidden tensors).
        declared: the query's variable name.
    """

    name: str
    shape: tuple[int, ...]
    size: int
    declared: str


@dataclass(frozen=True)
class IOBinding:
    """The declared tensors of one network, matched to its ONNX graph.

    Attributes:
        inputs: the graph inputs, in the query's declaration order.
        outputs: the graph outputs (query order), then the hidden tensors (query order).
        n_hidden: how many of ``outputs`` (the last ones) are hidden tensors.
    """

    inputs: tuple[TensorSlot, ...]
    outputs: tuple[TensorSlot, ...]
    n_hidden: int = 0

    @property
    def n_inputs(self) -> int:
        """Entries of the stacked input ``x``."""
        return sum(s.size for s in self.inputs)

    @property
    def n_outputs(self) -> int:
        """Entries of the stacked output ``y`` (hidden tensors included)."""
        return sum(s.size for s in self.outputs)

    def split(self, v: ArrayLike, slots: Sequence[TensorSlot]) -> list[FloatArray]:
        """The pieces of a stacked vector, one per slot, each reshaped to its slot's shape."""
        flat = np.asarray(v, dtype=np.float64).reshape(-1)
        out: list[FloatArray] = []
        start = 0
        for s in slots:
            out.append(flat[start : start + s.size].reshape(s.shape))
            start += s.size
        return out


def load_model(path: str | os.PathLike[str]) -> Any:
    """Read an ``.onnx`` (external data resolved) or ``.onnx.gz`` file as ``onnx.ModelProto``."""
    import onnx

    p = Path(path)
    try:
        if is_gzip(p):
            data, _ = read_input(p, error=InvalidNetworkError)
            return onnx.load_from_string(data)
        return onnx.load(str(p))
    except InvalidNetworkError:
        raise
    except Exception as err:
        raise InvalidNetworkError(f"{p}: cannot read the ONNX model: {err}") from err


def graph_interface(model: Any) -> tuple[list[Any], list[Any]]:
    """The graph's inputs (initializers excluded) and outputs, as ``ValueInfoProto`` lists."""
    graph = model.graph
    consts = {t.name for t in graph.initializer}
    consts |= {s.values.name for s in graph.sparse_initializer}
    return [vi for vi in graph.input if vi.name not in consts], list(graph.output)


def _dims(vi: Any) -> list[int | None] | None:
    """The dimensions of a value info (``None`` for a symbolic one); ``None`` if unknown."""
    tt = vi.type.tensor_type
    if not tt.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]


def _by_name(
    decls: Sequence[TensorDecl], table: dict[str, Any], kind: str, label: str
) -> list[Any]:
    """The graph's ``kind`` (``input``/``output``) value infos the declarations name, in their
    order; a name the graph lacks is an :class:`InvalidNetworkError`."""
    chosen = []
    for d in decls:
        name = onnx_name_text(d.onnx_name)
        vi = table.get(name or "")
        if vi is None:
            raise InvalidNetworkError(
                f"{label}{kind} {d.name}: the model has no {kind} {name!r} "
                f"({kind}s: {sorted(table)})"
            )
        chosen.append(vi)
    return chosen


def bind(
    model: Any,
    inputs: Sequence[TensorDecl],
    outputs: Sequence[TensorDecl],
    hidden: Sequence[TensorDecl] = (),
    *,
    where: str = "",
) -> IOBinding:
    """Match a network declaration to an ONNX graph (see the module docstring).

    Args:
        model: the ``onnx.ModelProto``.
        inputs: the declared inputs, in declaration order.
        outputs: the declared outputs, in declaration order.
        hidden: the declared hidden tensors, in declaration order.
        where: the model file, for messages.

    Returns:
        The binding.

    Raises:
        InvalidNetworkError: counts, names or sizes that do not match, an input with a
            non-leading symbolic dimension, or a hidden tensor no node produces.
    """
    label = f"{where}: " if where else ""
    g_in, g_out = graph_interface(model)
    decls = [*inputs, *outputs]
    named = [onnx_name_text(d.onnx_name) is not None for d in decls]
    if any(named) and not all(named):
        raise InvalidNetworkError(
            f"{label}the query names the ONNX tensor of some inputs/outputs but not all "
            "(the standard maps either all by name or all by order)"
        )
    in_by_name = {vi.name: vi for vi in g_in}
    out_by_name = {vi.name: vi for vi in g_out}
    if all(named) and decls:
        chosen_in = _by_name(inputs, in_by_name, "input", label)
        chosen_out = _by_name(outputs, out_by_name, "output", label)
        missing = sorted(set(in_by_name) - {vi.name for vi in chosen_in})
        if missing:
            raise InvalidNetworkError(
                f"{label}the model's inputs {missing} are not declared in the query"
            )
        if len({vi.name for vi in chosen_in}) != len(chosen_in) or len(
            {vo.name for vo in chosen_out}
        ) != len(chosen_out):
            raise InvalidNetworkError(f"{label}two declarations name the same ONNX tensor")
    else:
        if len(inputs) != len(g_in) or len(outputs) != len(g_out):
            raise InvalidNetworkError(
                f"{label}the query declares {len(inputs)} input(s) and {len(outputs)} "
                f"output(s), the model has {len(g_in)} and {len(g_out)} (matched by order)"
            )
        chosen_in, chosen_out = list(g_in), list(g_out)
    in_slots = []
    for d, vi in zip(inputs, chosen_in):
        dims = _dims(vi)
        if dims is None or any(v is None for v in dims[1:]):
            raise InvalidNetworkError(
                f"{label}input {vi.name!r} has an unknown or non-leading symbolic shape {dims}"
            )
        shape = tuple(1 if v is None or v <= 0 else int(v) for v in dims)
        size = math.prod(shape)
        if size != d.size:
            raise InvalidNetworkError(
                f"{label}input {d.name} declares {d.size} entries {list(d.shape)}, the model's "
                f"input {vi.name!r} has {size} {list(shape)}"
            )
        if vi.type.tensor_type.elem_type not in _FLOAT_TYPES:
            raise InvalidNetworkError(f"{label}input {vi.name!r} is not a float tensor")
        in_slots.append(TensorSlot(vi.name, shape, size, d.name))
    out_slots = []
    for d, vo in zip(outputs, chosen_out):
        dims = _dims(vo)
        if dims is not None and dims:
            size = math.prod(1 if v is None or v <= 0 else int(v) for v in dims)
            if size != d.size:
                raise InvalidNetworkError(
                    f"{label}output {d.name} declares {d.size} entries {list(d.shape)}, the "
                    f"model's output {vo.name!r} has {size}"
                )
        out_slots.append(TensorSlot(vo.name, tuple(d.shape) or (1,), d.size, d.name))
    produced = {o for node in model.graph.node for o in node.output if o}
    for d in hidden:
        onnx_name = onnx_name_text(d.onnx_name)
        if onnx_name is None or onnx_name not in produced:
            raise InvalidNetworkError(
                f"{label}hidden {d.name}: no node of the model produces the tensor {onnx_name!r}"
            )
        if onnx_name in in_by_name:
            raise InvalidNetworkError(f"{label}hidden {d.name}: {onnx_name!r} is a graph input")
        out_slots.append(TensorSlot(onnx_name, tuple(d.shape) or (1,), d.size, d.name))
    return IOBinding(tuple(in_slots), tuple(out_slots), len(hidden))


def _opset(model: Any) -> int:
    for op in model.opset_import:
        if op.domain in ("", "ai.onnx"):
            return int(op.version)
    return 1


def single_io_model(model: Any, binding: IOBinding) -> Any:
    """The model with one input ``[1, n_inputs]`` and one output ``[1, n_outputs]``.

    See the module docstring for the construction; the original nodes are kept unchanged.

    Raises:
        InvalidNetworkError: the model's opset is older than 5 (no ``Reshape`` with a shape
            input).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    opset = _opset(model)
    if opset < 5:
        raise InvalidNetworkError(f"opset {opset} < 5: cannot rewrite several inputs/outputs")
    graph = model.graph
    used = {vi.name for vi in (*graph.input, *graph.output, *graph.value_info)}
    used |= {t.name for t in graph.initializer}
    used |= {o for n in graph.node for o in (*n.input, *n.output)}
    counter = [0]

    def fresh(stem: str) -> str:
        while True:
            counter[0] += 1
            name = f"{_PREFIX}_{stem}_{counter[0]}"
            if name not in used:
                used.add(name)
                return name

    def const(values: Sequence[int]) -> str:
        name = fresh("const")
        inits.append(numpy_helper.from_array(np.asarray(values, dtype=np.int64), name=name))
        return name

    g_in = {vi.name: vi for vi in graph.input}
    in_types = [g_in[s.name].type.tensor_type.elem_type for s in binding.inputs]
    in_type = in_types[0]
    inits: list[Any] = []
    pre: list[Any] = []
    new_in = fresh("input")
    offset = 0
    for slot, etype in zip(binding.inputs, in_types):
        piece = fresh("slice")
        if opset >= 10:
            ins = [new_in, const([offset]), const([offset + slot.size]), const([1])]
            pre.append(helper.make_node("Slice", ins, [piece], name=fresh("node")))
        else:
            pre.append(
                helper.make_node(
                    "Slice",
                    [new_in],
                    [piece],
                    name=fresh("node"),
                    starts=[offset],
                    ends=[offset + slot.size],
                    axes=[1],
                )
            )
        if etype != in_type:
            cast = fresh("cast")
            pre.append(helper.make_node("Cast", [piece], [cast], name=fresh("node"), to=etype))
            piece = cast
        shape = const(slot.shape)
        pre.append(helper.make_node("Reshape", [piece, shape], [slot.name], name=fresh("node")))
        offset += slot.size
    g_out = {vi.name: vi for vi in graph.output}
    out_type = TensorProto.FLOAT
    if binding.outputs and binding.outputs[0].name in g_out:
        out_type = g_out[binding.outputs[0].name].type.tensor_type.elem_type or out_type
    post: list[Any] = []
    pieces = []
    for slot in binding.outputs:
        flat = fresh("flat")
        post.append(
            helper.make_node(
                "Reshape", [slot.name, const([1, slot.size])], [flat], name=fresh("node")
            )
        )
        vo = g_out.get(slot.name)
        etype = vo.type.tensor_type.elem_type if vo is not None else 0
        if etype != out_type:  # unknown (hidden) or another float type: make it the output's
            cast = fresh("cast")
            post.append(helper.make_node("Cast", [flat], [cast], name=fresh("node"), to=out_type))
            flat = cast
        pieces.append(flat)
    new_out = fresh("output")
    post.append(helper.make_node("Concat", pieces, [new_out], name=fresh("node"), axis=1))
    bound = {s.name for s in binding.inputs}
    new_graph = helper.make_graph(
        [*pre, *graph.node, *post],
        graph.name or "nncert_single_io",
        [
            helper.make_tensor_value_info(new_in, in_type, [1, binding.n_inputs]),
            *(vi for vi in graph.input if vi.name not in bound),  # initializer-backed inputs
        ],
        [helper.make_tensor_value_info(new_out, out_type, [1, binding.n_outputs])],
        initializer=[*graph.initializer, *inits],
        sparse_initializer=list(graph.sparse_initializer),
    )
    out = onnx.ModelProto()
    out.CopyFrom(model)
    out.graph.CopyFrom(new_graph)
    return out


def write_single_io(model: Any, binding: IOBinding, folder: str | os.PathLike[str]) -> Path:
    """Write :func:`single_io_model` to ``folder/single_io.onnx`` and return its path."""
    import onnx

    path = Path(folder) / "single_io.onnx"
    rewritten = single_io_model(model, binding)
    try:
        onnx.save(rewritten, str(path))
    except Exception as err:  # too large for one protobuf, ...
        raise InvalidNetworkError(f"cannot write the rewritten model: {err}") from err
    return path


def replay_original(model: Any, binding: IOBinding, x: ArrayLike) -> FloatArray:
    """The stacked ``y`` of the **original** model at the stacked input ``x`` (onnxruntime).

    Each graph input gets its slice of ``x`` (reshaped to its shape, in its element type); the
    outputs and hidden tensors are read by name (hidden tensors become graph outputs of a
    copy), flattened and stacked in the binding's order.

    Raises:
        InvalidNetworkError: onnxruntime refuses the model or a tensor's size differs from the
            declaration.
    """
    import onnx
    import onnxruntime as ort

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    present = {vo.name for vo in copy.graph.output}
    for slot in binding.outputs:
        if slot.name not in present:
            copy.graph.output.append(onnx.ValueInfoProto(name=slot.name))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(
            copy.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        types = {m.name: m.type for m in session.get_inputs()}
        np_types = {"tensor(float)": np.float32, "tensor(double)": np.float64}
        np_types["tensor(float16)"] = np.float16
        feed = {
            s.name: piece.astype(np_types.get(types.get(s.name, ""), np.float32))
            for s, piece in zip(binding.inputs, binding.split(x, binding.inputs))
        }
        names = list(dict.fromkeys(s.name for s in binding.outputs))  # a tensor may repeat
        fetched = dict(zip(names, session.run(names, feed)))
        values = [fetched[s.name] for s in binding.outputs]
    except Exception as err:
        raise InvalidNetworkError(f"onnxruntime cannot run the original model: {err}") from err
    parts = []
    for slot, value in zip(binding.outputs, values):
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
        if arr.size != slot.size:
            raise InvalidNetworkError(
                f"{slot.declared}: the ONNX tensor {slot.name!r} has {arr.size} entries, the "
                f"query declares {slot.size}"
            )
        parts.append(arr)
    return np.concatenate(parts) if parts else np.zeros(0)


__all__ = [
    "IOBinding",
    "TensorSlot",
    "bind",
    "graph_interface",
    "load_model",
    "replay_original",
    "single_io_model",
    "write_single_io",
]
