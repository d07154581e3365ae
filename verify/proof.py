r"""Proof trees: how a branch-and-bound search proved an unsafe case unreachable.

A case is unreachable iff :math:`m^* = \min_{x \in X} \max_r (A_r f(x) - b_r) > 0`. A search
splits the case's region and closes every piece; the *proof tree* records the splits and, for
every leaf, what closed it, so that an independent checker can re-derive the proof without
trusting the search (docs/PROOFS.md):

* **input split** of node ``p`` on dimension ``d`` at point ``s``: child ``0`` is ``p``'s
  region with ``hi_d = s``, child ``1`` with ``lo_d = s``; together they cover ``p``'s region
  whatever ``s`` is (if ``s`` lies outside ``[lo_d, hi_d]`` one child is empty and the other
  is all of ``p``);
* **phase split** of node ``p`` on hidden neuron ``j`` (flat index over the normal form's hidden
  layers, in order): child ``0`` adds the constraint ``z_j >= 0`` (active), child ``1`` adds
  ``z_j <= 0`` (inactive); every input satisfies one of them;
* **bound split** of node ``p`` on hidden neuron ``j`` at point ``s``: child ``0`` adds
  ``z_j >= s``, child ``1`` adds ``z_j <= s`` (again every input satisfies one of them). The
  constraint only tightens the neuron's pre-activation bounds, from which the bound engine
  builds its relaxation, so it is valid for every activation (sigmoid, tanh, ...): what a
  search that splits general activations (GenBaB) records. Unlike a phase split it fixes no
  phase (no multipliers or leaf LPs refer to it).

Leaves are closed by

* :data:`CLOSED_BY_BOUND`: the bound engine's lower bound of the objective over the leaf
  (its region, with its phase constraints as bounds on the hidden pre-activations) is ``> 0``;
  the bounds are recomputed top-down, each node's hidden-layer bounds intersected with its
  parent's, as the search did; ``params`` may hold lower-line slopes (any slopes in the
  activation family's range give a sound bound, so the checker need not trust them);
* :data:`CLOSED_BY_EMPTY`: no input satisfies the leaf's constraints (sound bounds cross);
* :data:`CLOSED_BY_LP`: the leaf is linear (every neuron's phase is fixed) and a dual vector
  in ``params`` proves the LP bound ``> 0`` (or a Farkas ray proves infeasibility), checked in
  exact rational arithmetic.

The tree is stored as flat arrays (node ``k``'s parent precedes it), so it serialises compactly.
Coverage is structural: children are rebuilt from the parent and the split record, never read
from storage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nncert.verify.errors import NncertError

#: node kinds (``split``)
LEAF = 0
INPUT_SPLIT = 1
PHASE_SPLIT = 2
BOUND_SPLIT = 3

#: how a leaf is closed (``closed_by``)
OPEN = 0
CLOSED_BY_BOUND = 1
CLOSED_BY_EMPTY = 2
CLOSED_BY_LP = 3

SPLIT_NAMES = {LEAF: "leaf", INPUT_SPLIT: "input", PHASE_SPLIT: "phase", BOUND_SPLIT: "bound"}
CLOSE_NAMES = {OPEN: "open", CLOSED_BY_BOUND: "bound", CLOSED_BY_EMPTY: "empty", CLOSED_BY_LP: "lp"}


class ProofTreeError(NncertError, ValueError):
    """A proof tree whose structure is inconsistent (a certificate built from it is refused)."""


@dataclass(frozen=True, eq=False)
class ProofTree:
    """The proof tree of one unsafe case (see the module docstring).

    Attributes:
        parent: ``(n,)`` parent node index; ``-1`` for the root (node 0); ``parent[k] < k``.
        side: ``(n,)`` which child of its parent a node is (``0`` or ``1``; ``0`` for the root).
        split: ``(n,)`` :data:`LEAF`, :data:`INPUT_SPLIT`, :data:`PHASE_SPLIT` or
            :data:`BOUND_SPLIT`.
        index: ``(n,)`` the split's input dimension or flat hidden neuron (``-1`` for leaves).
        value: ``(n,)`` the split point of an input or bound split (``0`` otherwise).
        closed_by: ``(n,)`` for leaves, how they are closed (:data:`OPEN` for splits).
        param_start: ``(n,)`` offset of the node's parameters in ``params``.
        param_len: ``(n,)`` their number (``0``: none).
        params: flat float64 parameters (slopes, LP duals).
        recipe: how bounds are recomputed (``intermediate``, ``extra_slopes``,
            ``alpha_iters``, ``combine_rows``), for the checker to reproduce the search.
    """

    parent: NDArray[np.int64]
    side: NDArray[np.int8]
    split: NDArray[np.int8]
    index: NDArray[np.int64]
    value: NDArray[np.float64]
    closed_by: NDArray[np.int8]
    param_start: NDArray[np.int64]
    param_len: NDArray[np.int64]
    params: NDArray[np.float64]
    recipe: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        casts: dict[str, type] = {
            "parent": np.int64,
            "side": np.int8,
            "split": np.int8,
            "index": np.int64,
            "value": np.float64,
            "closed_by": np.int8,
            "param_start": np.int64,
            "param_len": np.int64,
            "params": np.float64,
        }
        for name, dtype in casts.items():
            arr: NDArray[Any] = np.array(getattr(self, name), dtype=dtype, copy=True).reshape(-1)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "recipe", dict(self.recipe))

    #: the array fields, in storage order
    ARRAYS = (
        "parent",
        "side",
        "split",
        "index",
        "value",
        "closed_by",
        "param_start",
        "param_len",
        "params",
    )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProofTree):
            return NotImplemented
        return all(
            np.array_equal(getattr(self, a), getattr(other, a)) for a in self.ARRAYS
        ) and dict(self.recipe) == dict(other.recipe)

    def __hash__(self) -> int:
        return hash((self.parent.tobytes(), self.split.tobytes(), self.value.tobytes()))

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return int(self.parent.size)

    @property
    def leaves(self) -> NDArray[np.int64]:
        """Indices of the leaves."""
        return np.flatnonzero(self.split == LEAF).astype(np.int64)

    def node_params(self, k: int) -> NDArray[np.float64]:
        """The parameters of node ``k`` (empty when it has none)."""
        s, n = int(self.param_start[k]), int(self.param_len[k])
        return self.params[s : s + n]

    def children(self) -> NDArray[np.int64]:
        """``(n, 2)`` children of every node by side (``-1`` where absent)."""
        out = np.full((self.n_nodes, 2), -1, dtype=np.int64)
        k = np.arange(1, self.n_nodes)
        out[self.parent[1:], self.side[1:]] = k
        return out

    def problems(self) -> list[str]:
        """Structural problems (empty for a well-formed, complete tree).

        Checks: a root at 0 and parents before children; every split node has exactly two
        children, one per side; leaves carry a closing method and splits none; kinds and
        parameter slices are in range. Network-dependent checks (dimension and neuron
        indices) are the checker's.
        """
        n = self.n_nodes
        out: list[str] = []
        sizes = {
            a: getattr(self, a).size
            for a in ("side", "split", "index", "value", "closed_by", "param_start", "param_len")
        }
        bad = [a for a, s in sizes.items() if s != n]
        if bad:
            return [f"arrays {bad} do not have {n} entries"]
        if n == 0:
            return ["the tree has no nodes"]
        if self.parent[0] != -1:
            out.append("node 0 is not the root")
        ks = np.arange(1, n)
        if np.any(self.parent[1:] < 0) or np.any(self.parent[1:] >= ks):
            out.append("a node's parent does not precede it")
            return out
        if np.any((self.side != 0) & (self.side != 1)):
            out.append("a side is not 0 or 1")
            return out
        if not np.all(np.isin(self.split, (LEAF, INPUT_SPLIT, PHASE_SPLIT, BOUND_SPLIT))):
            out.append("unknown split kind")
        counts = np.zeros((n, 2), dtype=np.int64)
        np.add.at(counts, (self.parent[1:], self.side[1:]), 1)
        is_split = self.split != LEAF
        if np.any(counts[is_split] != 1):
            k = int(np.flatnonzero(is_split & np.any(counts != 1, axis=1))[0])
            out.append(f"split node {k} does not have exactly one child on each side")
        if np.any(counts[~is_split] != 0):
            k = int(np.flatnonzero(~is_split & np.any(counts != 0, axis=1))[0])
            out.append(f"leaf {k} has children")
        leaf = ~is_split
        unclosed = leaf & ~np.isin(self.closed_by, (CLOSED_BY_BOUND, CLOSED_BY_EMPTY, CLOSED_BY_LP))
        if np.any(unclosed):
            out.append(f"leaf {int(np.flatnonzero(unclosed)[0])} is not closed")
        if np.any(is_split & (self.closed_by != OPEN)):
            out.append("a split node claims to be closed")
        if np.any(is_split & (self.index < 0)):
            out.append("a split has a negative index")
        if (
            np.any(self.param_start < 0)
            or np.any(self.param_len < 0)
            or np.any(self.param_start + self.param_len > self.params.size)
        ):
            out.append("parameter slices out of range")
        if not (np.all(np.isfinite(self.value)) and np.all(np.isfinite(self.params))):
            out.append("non-finite split points or parameters")
        return out


class ProofRecorder:
    """Builds a :class:`ProofTree` while a search runs (node ids are handed out in order).

    Example:
        >>> rec = ProofRecorder()
        >>> root = rec.root()
        >>> lo, hi = rec.split(root, INPUT_SPLIT, 0, 0.5)
        >>> rec.close(lo, CLOSED_BY_BOUND); rec.close(hi, CLOSED_BY_EMPTY)
        >>> rec.tree().problems()
        []
    """

    def __init__(self, recipe: Mapping[str, Any] | None = None) -> None:
        self._parent: list[int] = []
        self._side: list[int] = []
        self._split: list[int] = []
        self._index: list[int] = []
        self._value: list[float] = []
        self._closed: list[int] = []
        self._pstart: list[int] = []
        self._plen: list[int] = []
        self._params: list[NDArray[np.float64]] = []
        self._n_params = 0
        self.recipe = dict(recipe or {})

    @property
    def n_nodes(self) -> int:
        """Nodes so far."""
        return len(self._parent)

    def _add(self, parent: int, side: int) -> int:
        self._parent.append(parent)
        self._side.append(side)
        self._split.append(LEAF)
        self._index.append(-1)
        self._value.append(0.0)
        self._closed.append(OPEN)
        self._pstart.append(0)
        self._plen.append(0)
        return len(self._parent) - 1

    def root(self) -> int:
        """Create the root (node 0)."""
        if self._parent:
            raise ProofTreeError("the tree already has a root")
        return self._add(-1, 0)

    def split(self, node: int, kind: int, index: int, value: float = 0.0) -> tuple[int, int]:
        """Split ``node``; returns the ids of its children (side 0, side 1)."""
        if self._split[node] != LEAF or self._closed[node] != OPEN:
            raise ProofTreeError(f"node {node} is already split or closed")
        self._split[node] = int(kind)
        self._index[node] = int(index)
        self._value[node] = float(value)
        return self._add(node, 0), self._add(node, 1)

    def split_many(
        self, nodes: Sequence[int] | NDArray[np.int64], kind: int, index: Any, value: Any
    ) -> NDArray[np.int64]:
        """Split several nodes at once; returns ``(len(nodes), 2)`` child ids."""
        idx = np.broadcast_to(np.asarray(index, dtype=np.int64), (len(nodes),))
        val = np.broadcast_to(np.asarray(value, dtype=np.float64), (len(nodes),))
        out = np.empty((len(nodes), 2), dtype=np.int64)
        for j, node in enumerate(nodes):
            out[j] = self.split(int(node), kind, int(idx[j]), float(val[j]))
        return out

    def close(self, node: int, how: int, params: Any = None) -> None:
        """Record that leaf ``node`` is closed by ``how`` (with optional parameters)."""
        if self._split[node] != LEAF:
            raise ProofTreeError(f"node {node} is split, it cannot be closed")
        self._closed[node] = int(how)
        if params is not None:
            p = np.asarray(params, dtype=np.float64).reshape(-1)
            self._pstart[node] = self._n_params
            self._plen[node] = p.size
            self._params.append(p)
            self._n_params += p.size

    def close_many(self, nodes: Sequence[int] | NDArray[np.int64], how: int) -> None:
        """Close several leaves without parameters."""
        for node in nodes:
            self.close(int(node), how)

    def graft(self, node: int, sub: ProofTree) -> None:
        """Attach ``sub`` (a tree whose root stands for ``node``) below the open leaf ``node``.

        Used to merge the subtrees that worker processes built for parts of a search.
        """
        if self._split[node] != LEAF or self._closed[node] != OPEN:
            raise ProofTreeError(f"node {node} is not an open leaf")
        ids = np.empty(sub.n_nodes, dtype=np.int64)
        ids[0] = node
        for k in range(sub.n_nodes):
            if k > 0:
                ids[k] = self._add(int(ids[sub.parent[k]]), int(sub.side[k]))
            if sub.split[k] != LEAF:
                self._split[ids[k]] = int(sub.split[k])
                self._index[ids[k]] = int(sub.index[k])
                self._value[ids[k]] = float(sub.value[k])
            elif sub.closed_by[k] != OPEN:
                p = sub.node_params(k)
                self.close(int(ids[k]), int(sub.closed_by[k]), p if p.size else None)

    def tree(self) -> ProofTree:
        """The tree recorded so far."""
        params = np.concatenate(self._params) if self._params else np.zeros(0)
        return ProofTree(
            parent=np.asarray(self._parent, dtype=np.int64),
            side=np.asarray(self._side, dtype=np.int8),
            split=np.asarray(self._split, dtype=np.int8),
            index=np.asarray(self._index, dtype=np.int64),
            value=np.asarray(self._value, dtype=np.float64),
            closed_by=np.asarray(self._closed, dtype=np.int8),
            param_start=np.asarray(self._pstart, dtype=np.int64),
            param_len=np.asarray(self._plen, dtype=np.int64),
            params=params,
            recipe=self.recipe,
        )


__all__ = [
    "BOUND_SPLIT",
    "CLOSED_BY_BOUND",
    "CLOSED_BY_EMPTY",
    "CLOSED_BY_LP",
    "CLOSE_NAMES",
    "INPUT_SPLIT",
    "LEAF",
    "OPEN",
    "PHASE_SPLIT",
    "SPLIT_NAMES",
    "ProofRecorder",
    "ProofTree",
    "ProofTreeError",
]
