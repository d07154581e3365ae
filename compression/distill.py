"""Knowledge distillation: train a smaller MLP on a teacher network's logits (needs torch).

The student is an independent network, so certificates do not transfer structurally; what
makes sense afterwards is verifying the student itself, or teacher/student *differential*
properties (ECOSYSTEM.md section 2.9).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from nncert.compression._common import calibration_set
from nncert.compression.records import RecordMixin
from nncert.verify.errors import InvalidOptionsError
from nncert.verify.network import (
    Dense,
    HardTanh,
    Layer,
    LeakyReLU,
    Network,
    ReLU,
    Sigmoid,
    Tanh,
)

#: activation name -> (IR layer, torch module factory name and arguments)
ACTIVATIONS: dict[str, tuple[Layer, str, tuple[Any, ...]]] = {
    "relu": (ReLU(), "ReLU", ()),
    "leaky_relu": (LeakyReLU(0.01), "LeakyReLU", (0.01,)),
    "hardtanh": (HardTanh(-1.0, 1.0), "Hardtanh", (-1.0, 1.0)),
    "sigmoid": (Sigmoid(), "Sigmoid", ()),
    "tanh": (Tanh(), "Tanh", ()),
}


@dataclass(frozen=True)
class DistillRecord(RecordMixin):
    """What :func:`distill` did.

    Attributes:
        hidden: hidden widths of the student.
        activation: the student's activation name.
        loss: ``"mse"`` or ``"kl"``.
        temperature: softmax temperature of the KL loss.
        epochs: full-batch Adam steps.
        lr: learning rate.
        seed: the seed (initialization and default inputs).
        n_samples: training inputs.
        final_loss: training loss after the last step.
        output_mse: mean squared logit difference student vs teacher on the training inputs.
        agreement: fraction of training inputs where the argmax classes agree.
        parameters_before: teacher parameters.
        parameters_after: student parameters.
    """

    kind = "distill"

    hidden: tuple[int, ...]
    activation: str
    loss: str
    temperature: float
    epochs: int
    lr: float
    seed: int
    n_samples: int
    final_loss: float
    output_mse: float
    agreement: float
    parameters_before: int
    parameters_after: int


def _train(
    torch: Any,
    Xn: Any,
    Yt: Any,
    sizes: tuple[int, ...],
    act_name: str,
    act_args: tuple[Any, ...],
    widths: tuple[int, ...],
    seed: int,
    epochs: int,
    lr: float,
    loss: str,
    tau: float,
) -> tuple[Any, float]:
    """Full-batch Adam in float64 under a forked, seeded torch RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mods: list[Any] = []
        for k in range(len(sizes) - 1):
            mods.append(torch.nn.Linear(sizes[k], sizes[k + 1], dtype=torch.float64))
            if k < len(sizes) - 2:
                mods.append(getattr(torch.nn, act_name)(*act_args))
        student = torch.nn.Sequential(*mods)
        xt = torch.from_numpy(Xn)
        yt = torch.from_numpy(Yt)
        opt = torch.optim.Adam(student.parameters(), lr=lr)

        def objective() -> Any:
            out = student(xt)
            if loss == "mse":
                return torch.mean((out - yt) ** 2)
            logp = torch.log_softmax(out / tau, dim=1)
            q = torch.softmax(yt / tau, dim=1)
            return torch.nn.functional.kl_div(logp, q, reduction="batchmean") * tau**2

        for _ in range(epochs):
            opt.zero_grad()
            value = objective()
            value.backward()
            opt.step()
        with torch.no_grad():
            final = float(objective())
    return student, final


def distill(
    teacher: Network,
    hidden: Sequence[int] = (16,),
    *,
    X: ArrayLike | None = None,
    epochs: int = 500,
    lr: float = 1e-2,
    seed: int = 0,
    activation: Literal["relu", "leaky_relu", "hardtanh", "sigmoid", "tanh"] = "relu",
    loss: Literal["mse", "kl"] = "mse",
    temperature: float = 1.0,
    n_samples: int = 2048,
) -> tuple[Network, DistillRecord]:
    r"""Train a student MLP ``Dense (act Dense)*`` to reproduce the teacher's logits.

    Training is full-batch Adam in float64 on CPU, with torch's global RNG state untouched
    (``torch.random.fork_rng``) and seeded by ``seed``, so the result is deterministic on a
    given machine. Losses: ``"mse"`` on logits, or ``"kl"``:
    :math:`\tau^2\,\mathrm{KL}(\mathrm{softmax}(f_T/\tau)\,\|\,\mathrm{softmax}(f_S/\tau))`.
    The student network is built directly from the float64 torch weights (exact).

    Args:
        teacher: the network to imitate.
        hidden: hidden layer widths of the student (may be empty: a linear student).
        X: training inputs, shape ``(n, n_inputs)``; default ``n_samples`` uniform samples in
            ``[0, 1]^n_inputs`` (the teacher needs no labels).
        epochs: optimizer steps, ``>= 1``.
        lr: Adam learning rate.
        seed: seed of the initialization and of the default inputs.
        activation: the student's activation.
        loss: ``"mse"`` or ``"kl"``.
        temperature: KL temperature ``> 0``.
        n_samples: size of the default input set.

    Returns:
        ``(student network, record)``.

    Raises:
        InvalidOptionsError: on bad widths, activation, loss or hyper-parameters.
        ImportError: when torch is not installed.
    """
    widths = tuple(int(h) for h in hidden)
    if any(h < 1 for h in widths):
        raise InvalidOptionsError(f"hidden={tuple(hidden)!r}: widths must be >= 1")
    if activation not in ACTIVATIONS:
        raise InvalidOptionsError(
            f"activation={activation!r} must be one of {', '.join(ACTIVATIONS)}"
        )
    if loss not in ("mse", "kl"):
        raise InvalidOptionsError(f"loss={loss!r} must be 'mse' or 'kl'")
    if not (isinstance(epochs, int) and epochs >= 1):
        raise InvalidOptionsError(f"epochs={epochs!r} must be an int >= 1")
    if not (float(lr) > 0 and float(temperature) > 0):
        raise InvalidOptionsError("lr and temperature must be > 0")
    import torch

    Xn = calibration_set(teacher, X, n=n_samples, seed=seed)
    Yt = teacher.forward(Xn)
    act_layer, act_name, act_args = ACTIVATIONS[activation]
    sizes = (teacher.n_inputs, *widths, teacher.n_outputs)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny full-batch steps: one thread is faster and reproducible
    try:
        student, final = _train(
            torch,
            Xn,
            Yt,
            sizes,
            act_name,
            act_args,
            widths,
            seed,
            epochs,
            float(lr),
            loss,
            float(temperature),
        )
    finally:
        torch.set_num_threads(threads)
    linears = [m for m in student if isinstance(m, torch.nn.Linear)]
    layers: list[Layer] = []
    for k, lin in enumerate(linears):
        layers.append(Dense(lin.weight.detach().numpy(), lin.bias.detach().numpy()))
        if k < len(linears) - 1:
            layers.append(act_layer)
    net = Network(tuple(layers), teacher.input_shape, name=f"{teacher.name or 'net'}-student")
    Ys = net.forward(Xn)
    rec = DistillRecord(
        hidden=widths,
        activation=activation,
        loss=loss,
        temperature=float(temperature),
        epochs=int(epochs),
        lr=float(lr),
        seed=int(seed),
        n_samples=int(Xn.shape[0]),
        final_loss=final,
        output_mse=float(np.mean((Ys - Yt) ** 2)),
        agreement=float(np.mean(np.argmax(Ys, axis=1) == np.argmax(Yt, axis=1))),
        parameters_before=teacher.n_parameters,
        parameters_after=net.n_parameters,
    )
    return net, rec


__all__ = ["ACTIVATIONS", "DistillRecord", "distill"]
