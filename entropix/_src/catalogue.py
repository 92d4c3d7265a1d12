"""The optimizer catalogue: one record for every transformation the package offers.

The command-line runner, the configs, the benchmarks and the conformance test suite all read
this catalogue; nothing else lists the optimizers. Adding an optimizer means writing its module
and one :class:`OptimizerEntry` here — it then appears in ``entropix train``/``compare``, can be
named in a config, is timed by ``benchmarks/speed.py`` and is checked by the conformance suite.
The catalogue also holds the peer baselines the experiments compare against (optax's SGD, Adam
and SAM), so that a config can name them like any other optimizer.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import optax
from optax._src import base

from entropix._src import auto_coupling, local_entropy, replicas, trivialize
from entropix._src import heat as heat_module

OPTIMIZER = "optimizer"
TRANSFORM = "transform"
BASELINE = "baseline"
KINDS = (OPTIMIZER, TRANSFORM, BASELINE)


class OptimizerEntry(NamedTuple):
    """One transformation of the catalogue.

    Attributes:
      name: the name configs and the command line use (e.g. ``"entropy_sgd"``).
      factory: the function that builds the ``optax`` transformation.
      label: display name in tables and plots.
      kind: ``"optimizer"`` (a complete entropix optimizer), ``"transform"`` (an entropix
        transformation to chain before an optimizer) or ``"baseline"`` (a peer method built
        from optax, for comparisons).
      replica_axis: the keyword naming the replica axis (``"axis_name"``) for transformations
        written for one replica of a ``vmap``/``shard_map`` replica axis; ``None`` otherwise.
      cycle: updates per cycle with the factory's defaults: ``L`` for the two-loop optimizers
        (an outer step every ``L`` updates), 2 for SAM (ascent and descent), else 1.
      cycle_argument: the keyword that sets ``cycle`` (``"num_inner_steps"``), or ``None``.
      compiled: whether the factory also builds the compiled form (``compiled=True``, one
        ``update`` per outer step with a ``grad_fn`` extra argument).
      seed_argument: the keyword of the PRNG seed or key, or ``None``.
      data_arguments: keywords the runner fills from the data set when a config leaves them
        out (``"steps_per_epoch"``: minibatches per epoch of the whole training set).
      example_kwargs: small settings that make a fast, well-defined instance (the conformance
        suite and the benchmarks start from them; required arguments are among them).
      description: one line saying what it is.
      variants: named settings that take another code path, each a mapping of overrides of
        ``example_kwargs`` (``"auto_coupling"``: an :func:`entropix.auto_coupling` for the
        optimizers whose coupling γ can adapt online); the conformance suite checks them too.
    """

    name: str
    factory: Callable[..., base.GradientTransformation]
    label: str
    kind: str
    replica_axis: str | None = None
    cycle: int = 1
    cycle_argument: str | None = None
    compiled: bool = False
    seed_argument: str | None = None
    data_arguments: tuple[str, ...] = ()
    example_kwargs: Mapping[str, Any] = types.MappingProxyType({})
    description: str = ""
    variants: Mapping[str, Mapping[str, Any]] = types.MappingProxyType({})

    def cycle_length(self, kwargs: Mapping[str, Any]) -> int:
        """Updates per cycle for a transformation built with ``kwargs``."""
        if self.cycle_argument is None:
            return self.cycle
        return int(kwargs.get(self.cycle_argument, self.cycle))

    def build(self, **overrides: Any) -> base.GradientTransformation:
        """The transformation built from ``example_kwargs`` updated by ``overrides``."""
        return self.factory(**{**self.example_kwargs, **overrides})


def _with_weight_decay(optimizer, weight_decay):
    if weight_decay:
        return optax.chain(optax.add_decayed_weights(weight_decay), optimizer)
    return optimizer


def sgd(
    learning_rate: base.ScalarOrSchedule = 0.1,
    momentum: float = 0.9,
    nesterov: bool = True,
    weight_decay: float = 0.0,
) -> base.GradientTransformation:
    """optax SGD with (Nesterov) momentum and optional weight decay: the papers' baseline."""
    optimizer = optax.sgd(learning_rate, momentum=momentum or None, nesterov=nesterov)
    return _with_weight_decay(optimizer, weight_decay)


def adam(
    learning_rate: base.ScalarOrSchedule = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> base.GradientTransformation:
    """optax Adam with optional (coupled) weight decay."""
    return _with_weight_decay(optax.adam(learning_rate, b1=b1, b2=b2, eps=eps), weight_decay)


def sam(
    learning_rate: base.ScalarOrSchedule = 0.1,
    rho: float = 0.05,
    momentum: float = 0.9,
    nesterov: bool = True,
) -> base.GradientTransformation:
    """SAM (optax.contrib): alternate ascent (ρ) and descent calls, one gradient each."""
    return optax.contrib.sam(
        optax.sgd(learning_rate, momentum=momentum or None, nesterov=nesterov),
        optax.chain(optax.contrib.normalize(), optax.sgd(rho)),
        sync_period=2,
    )


_LOCAL = dict(num_inner_steps=3, coupling=0.5, sgld_learning_rate=0.1, noise=1e-3)
# The automatic coupling of the local-entropy optimizers, starting from the example's γ.
_AUTO_COUPLING = types.MappingProxyType(
    {
        "auto_coupling": types.MappingProxyType(
            {"coupling": auto_coupling.auto_coupling(initial=_LOCAL["coupling"])}
        )
    }
)
_REPLICAS = "axis_name"

_ENTRIES = (
    OptimizerEntry(
        "sgd", sgd, "SGD (Nesterov)", BASELINE, description="SGD with Nesterov momentum (optax)"
    ),
    OptimizerEntry("adam", adam, "Adam", BASELINE, description="Adam (optax)"),
    OptimizerEntry(
        "sam",
        sam,
        "SAM",
        BASELINE,
        cycle=2,
        description="sharpness-aware minimization (optax.contrib), one gradient per call",
    ),
    OptimizerEntry(
        "entropy_sgd",
        local_entropy.entropy_sgd,
        "Entropy-SGD",
        OPTIMIZER,
        cycle=20,
        cycle_argument="num_inner_steps",
        compiled=True,
        seed_argument="key",
        example_kwargs=types.MappingProxyType({"learning_rate": 0.5, **_LOCAL}),
        description="Entropy-SGD: SGLD inner loop, SGD outer step on x − μ",
        variants=_AUTO_COUPLING,
    ),
    OptimizerEntry(
        "entropy_adam",
        local_entropy.entropy_adam,
        "Entropy-Adam",
        OPTIMIZER,
        cycle=5,
        cycle_argument="num_inner_steps",
        compiled=True,
        seed_argument="key",
        example_kwargs=types.MappingProxyType({"learning_rate": 0.05, **_LOCAL}),
        description="Entropy-Adam: Adam on the local-entropy gradient",
        variants=_AUTO_COUPLING,
    ),
    OptimizerEntry(
        "hj",
        local_entropy.hj,
        "HJ (prox)",
        OPTIMIZER,
        cycle=5,
        cycle_argument="num_inner_steps",
        compiled=True,
        example_kwargs=types.MappingProxyType(
            {"learning_rate": 0.5, "num_inner_steps": 3, "coupling": 0.5}
        ),
        description="non-viscous Hamilton–Jacobi descent (stochastic proximal point)",
        variants=_AUTO_COUPLING,
    ),
    OptimizerEntry(
        "heat",
        heat_module.heat,
        "HEAT",
        OPTIMIZER,
        cycle=20,
        cycle_argument="num_inner_steps",
        compiled=True,
        seed_argument="key",
        example_kwargs=types.MappingProxyType(
            {"learning_rate": 0.1, "num_inner_steps": 3, "coupling": 100.0}
        ),
        description="heat-equation (Gaussian) smoothing of the loss",
    ),
    OptimizerEntry(
        "local_entropy",
        local_entropy.local_entropy,
        "local entropy (any outer)",
        OPTIMIZER,
        cycle=20,
        cycle_argument="num_inner_steps",
        compiled=True,
        seed_argument="key",
        example_kwargs=types.MappingProxyType({"outer": optax.sgd(0.5), **_LOCAL}),
        description="local-entropy descent with any optax inner and outer transformations",
        variants=_AUTO_COUPLING,
    ),
    OptimizerEntry(
        "elastic_sgd",
        replicas.elastic_sgd,
        "Elastic-SGD",
        OPTIMIZER,
        replica_axis=_REPLICAS,
        example_kwargs=types.MappingProxyType({"learning_rate": 0.1, "elastic_coupling": 0.5}),
        description="synchronous Elastic-SGD: every step a pull toward the replica mean",
    ),
    OptimizerEntry(
        "parle",
        replicas.parle,
        "Parle",
        OPTIMIZER,
        replica_axis=_REPLICAS,
        cycle=25,
        cycle_argument="num_inner_steps",
        compiled=True,
        seed_argument="key",
        data_arguments=("steps_per_epoch",),
        example_kwargs=types.MappingProxyType(
            {"learning_rate": 0.5, "elastic_coupling": 0.5, **_LOCAL}
        ),
        description="Parle: Entropy-SGD replicas coupled elastically once per outer step",
        variants=_AUTO_COUPLING,
    ),
    OptimizerEntry(
        "rsgd",
        replicas.replicated_sgd,
        "rSGD",
        OPTIMIZER,
        replica_axis=_REPLICAS,
        example_kwargs=types.MappingProxyType(
            {"learning_rate": 0.1, "elastic_coupling": 0.5, "every": 2}
        ),
        description="replicated SGD: SGD on the replicated loss, coupled every K steps",
    ),
    OptimizerEntry(
        "add_elastic_coupling",
        replicas.add_elastic_coupling,
        "elastic coupling",
        TRANSFORM,
        replica_axis=_REPLICAS,
        example_kwargs=types.MappingProxyType({"elastic_coupling": 0.5}),
        description="the elastic force toward the replica mean, to chain before an optimizer",
    ),
    OptimizerEntry(
        "trivialized_sgd",
        trivialize.trivialized_sgd,
        "Trivialized-SGD",
        OPTIMIZER,
        seed_argument="key",
        example_kwargs=types.MappingProxyType(
            {"learning_rate": 0.1, "spin_coupling": 1e-2, "num_layers": 3, "tau0": 10.0, "key": 0}
        ),
        description="SGD with an annealed random field (Trivialized-SGD)",
    ),
    OptimizerEntry(
        "add_trivializing_field",
        trivialize.add_trivializing_field,
        "trivializing field",
        TRANSFORM,
        seed_argument="key",
        example_kwargs=types.MappingProxyType(
            {"spin_coupling": 1e-2, "num_layers": 3, "tau0": 10.0, "key": 0}
        ),
        description="the annealed random field of Trivialized-SGD, to chain before an optimizer",
    ),
)

OPTIMIZERS: Mapping[str, OptimizerEntry] = types.MappingProxyType(
    {entry.name: entry for entry in _ENTRIES}
)


def optimizer_entry(name: str) -> OptimizerEntry:
    """The catalogue entry called ``name``.

    Args:
      name: a catalogue name (``entropix.OPTIMIZERS`` lists them).

    Returns:
      The :class:`OptimizerEntry`.

    Raises:
      ValueError: unknown name (the message lists the valid ones).

    Examples:
      >>> import entropix
      >>> entry = entropix.optimizer_entry("entropy_sgd")
      >>> entry.label, entry.cycle_length({"num_inner_steps": 5}), entry.compiled
      ('Entropy-SGD', 5, True)
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; valid names: {', '.join(OPTIMIZERS)}.")
    return OPTIMIZERS[name]
