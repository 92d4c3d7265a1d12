r"""Replica optimizers: Elastic-SGD, replicated SGD (rSGD) and Parle.

Every transformation here is written for **one replica** and couples replicas with collectives
over a named axis (``jax.lax.pmean(x, axis_name)``). The same code therefore runs

* under ``jax.vmap(update, axis_name="replicas")`` with replicas stacked on a leading axis of
  one device,
* under ``jax.shard_map`` on a device mesh with a ``"replicas"`` axis (optionally a data axis),
* across processes after ``jax.distributed.initialize`` on a multi-host mesh.

The coupling is elastic: replica ``a`` feels ``ρ (x^a − x̄)`` with ``x̄`` the replica mean (the
"master"), the gradient of ``Σ_a (ρ/2)‖x^a − x̄‖²``. Since ``Σ_a (x^a − x̄) = 0`` the coupling
never moves the mean itself.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from optax._src import base

from entropix._src import auto_coupling, common, local_entropy, loop, schedules, validation

Params = Any


def replica_mean(tree: Params, axis_name: str | tuple[str, ...]) -> Params:
    """Mean over the replica axis, with a clear error when the axis is not bound.

    Use it for the master/center weights of Parle, Elastic-SGD and rSGD, and for averaging
    BatchNorm statistics across replicas before evaluation. It equals
    ``jax.lax.pmean(tree, axis_name)`` (values and gradients) and compiles to:

    * an all-reduce (``psum``) when ``axis_name`` is a manual axis of the enclosing
      ``jax.shard_map`` mesh, one per leaf;
    * a pairwise sum of the replica slices when the axis comes from ``jax.vmap`` (or any other
      named map). ``pmean`` under ``vmap`` lowers to a reduction over the leading replica axis,
      which XLA:CPU runs ≈ 25× slower than the elementwise sum of the same slices, and which
      would dominate the cost of Elastic-SGD and rSGD steps on one device.

    Args:
      tree: this replica's pytree.
      axis_name: name of the mapped replica axis, or a tuple of names (e.g. a mesh axis of
        devices and a ``vmap`` axis of replicas per device).

    Returns:
      The mean over replicas (identical on every replica).

    Examples:
      >>> import jax, jax.numpy as jnp, entropix
      >>> stacked = jnp.array([[1.0, 2.0], [3.0, 6.0]])
      >>> jax.vmap(lambda w: entropix.replica_mean(w, "replicas"), axis_name="replicas")(stacked)
      Array([[2., 4.],
             [2., 4.]], dtype=float32)
    """
    names = tuple(axis_name) if isinstance(axis_name, (tuple, list)) else (axis_name,)
    manual = getattr(jax.sharding.get_abstract_mesh(), "manual_axes", ())
    mesh_axes = tuple(name for name in names if name in manual)
    try:
        # A mean over several axes is the mean of the means over each (equal group sizes).
        for name in names:
            if name not in mesh_axes:
                tree = jax.tree.map(lambda leaf, name=name: _gathered_mean(leaf, name), tree)
        return jax.lax.pmean(tree, mesh_axes) if mesh_axes else tree
    except NameError as err:
        raise _unbound_axis_error(axis_name, err) from err


def _gathered_mean(leaf: jax.Array, axis_name: str) -> jax.Array:
    # Under vmap, all_gather hands back the stacked replicas without copying them, and the
    # pairwise slice sum fuses into one elementwise pass; its transpose is again a mean.
    stacked = jax.lax.all_gather(leaf, axis_name)
    return _pairwise_sum(stacked, 0, stacked.shape[0]) / stacked.shape[0]


def _pairwise_sum(stacked: jax.Array, start: int, stop: int) -> jax.Array:
    if stop - start == 1:
        return stacked[start]
    middle = (start + stop) // 2
    return _pairwise_sum(stacked, start, middle) + _pairwise_sum(stacked, middle, stop)


def _unbound_axis_error(axis_name: str, err: NameError) -> ValueError:
    return ValueError(
        f"Replica axis {axis_name!r} is not bound. Replica optimizers are written for one "
        f"replica: run the update under jax.vmap(..., axis_name={axis_name!r}) or "
        f"jax.shard_map over a mesh with an axis named {axis_name!r} (got: {err})."
    )


def ensemble_probabilities(logits: jax.Array, axis_name: str) -> jax.Array:
    """Softmax-averaged ensemble prediction of the replicas.

    Args:
      logits: this replica's logits ``(..., classes)``.
      axis_name: name of the replica axis.

    Returns:
      ``mean_a softmax(logits^a)``, identical on every replica.

    Examples:
      >>> import jax, jax.numpy as jnp, entropix
      >>> logits = jnp.array([[[0.0, 0.0]], [[0.0, jnp.log(3.0)]]])   # 2 replicas, 1 example
      >>> probs = jax.vmap(lambda z: entropix.ensemble_probabilities(z, "r"), axis_name="r")(logits)
      >>> [round(float(p), 3) for p in probs[0, 0]]
      [0.375, 0.625]
    """
    return replica_mean(jax.nn.softmax(logits, axis=-1), axis_name)


class ElasticCouplingState(NamedTuple):
    """State of :func:`add_elastic_coupling`: the number of updates seen."""

    count: jax.Array


def add_elastic_coupling(
    elastic_coupling: base.ScalarOrSchedule | None = None,
    *,
    axis_name: str = "replicas",
    every: int = 1,
    coupling: base.ScalarOrSchedule | None = None,
) -> base.GradientTransformation:
    r"""Adds the elastic force toward the replica mean, every ``K``-th step with strength ``K ρ``.

    .. math::
      g^a \leftarrow g^a + [t \bmod K = 0]\; K ρ_t \,(x^a - \bar x), \qquad
      \bar x = \frac{1}{n}\sum_b x^b

    the gradient of the replicated loss ``Σ_a f(x^a) + (ρ/2) Σ_a ‖x^a − x̄‖²`` (the ``x̄``
    dependence cancels because the deviations sum to zero). ``K = 1`` is synchronous
    Elastic-SGD; ``K > 1`` is rSGD's periodic coupling with the same time-averaged force, and
    communicates only on coupling steps. The force acts on updates ``t = 0, K, 2K, …`` (the
    first update is coupled); the slides count ``t`` from 1 and couple at ``K, 2K, …`` — the
    same force one period earlier. Chain it before any optax optimizer. Integer leaves of the
    parameters pass through unchanged.

    Args:
      elastic_coupling: ``ρ ≥ 0`` (coupling strength; thesis ρ is ``1/elastic_coupling``),
        scalar or schedule of this transformation's update count.
      axis_name: name of the replica axis.
      every: ``K ≥ 1``, apply the coupling every ``K`` updates (scaled by ``K``).
      coupling: deprecated name of ``elastic_coupling`` (removed in the next release).

    Returns:
      An ``optax.GradientTransformation`` that needs ``params``.

    Examples:
      >>> import jax, jax.numpy as jnp, optax, entropix
      >>> coupling = entropix.add_elastic_coupling(0.5, axis_name="r")
      >>> opt = optax.chain(coupling, optax.sgd(0.1))
      >>> params = jnp.array([[0.0], [2.0]])                     # two replicas
      >>> state = jax.vmap(opt.init)(params)
      >>> update = jax.vmap(opt.update, axis_name="r")
      >>> updates, state = update(jnp.zeros_like(params), state, params)
      >>> updates                                                # −0.1 · 0.5 · (x^a − 1)
      Array([[ 0.05],
             [-0.05]], dtype=float32)

    References:
      Zhang, Choromanska, LeCun, *Deep learning with elastic averaging SGD*, NeurIPS 2015;
      Pittorino et al., *Entropic gradient descent algorithms and wide flat minima*, ICLR 2021,
      Algorithm 2.
    """
    elastic_coupling = common.renamed_keyword(
        "add_elastic_coupling", "coupling", coupling, "elastic_coupling", elastic_coupling, None
    )
    if elastic_coupling is None:
        raise TypeError("add_elastic_coupling needs `elastic_coupling` (ρ ≥ 0).")
    validation.check_scalar_or_schedule("elastic_coupling", elastic_coupling)
    validation.check_schedule("elastic_coupling", elastic_coupling, validation.check_non_negative)
    every = validation.check_count("every", every)

    def init_fn(params):
        del params
        return ElasticCouplingState(count=jnp.zeros([], jnp.int32))

    def couple(updates, params, strength):
        floats = common.float_leaves(params)
        center = replica_mean(floats, axis_name)
        pulled = jax.tree.map(
            lambda g, w, c: g + jnp.asarray(strength, g.dtype) * (w - c),
            common.float_leaves_like(updates, params),
            floats,
            center,
        )
        return common.merge_float_leaves(pulled, updates)

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(base.NO_PARAMS_MSG)
        strength = every * common.schedule_value(elastic_coupling, state.count)
        if isinstance(every, int) and every == 1:
            updates = couple(updates, params, strength)
        else:
            updates = jax.lax.cond(
                state.count % every == 0,
                lambda: couple(updates, params, strength),
                lambda: updates,
            )
        return updates, ElasticCouplingState(count=optax.safe_increment(state.count))

    return base.GradientTransformation(init_fn, update_fn)


def elastic_sgd(
    learning_rate: base.ScalarOrSchedule = 0.1,
    *,
    elastic_coupling: base.ScalarOrSchedule = 1.0,
    momentum: float = 0.9,
    nesterov: bool = True,
    axis_name: str = "replicas",
    coupling: base.ScalarOrSchedule | None = None,
) -> base.GradientTransformation:
    r"""Synchronous Elastic-SGD: every step each replica is pulled toward the replica mean.

    .. math::
      x^a \leftarrow x^a - η\, \mathrm{mom}\big(\nabla f_b(x^a) + ρ (x^a - \bar x)\big),
      \qquad \bar x = \frac1n \sum_b x^b

    (thesis eq. 5.4 with the master equal to the replica mean). Communicates every step.
    The thesis scopes ρ (Ch. 5 found Elastic-SGD poor without it); pass a schedule, e.g.
    :func:`entropix.parle_scoping`.

    Args:
      learning_rate: ``η`` (scalar or schedule).
      elastic_coupling: ``ρ`` (scalar or schedule of the step count; thesis ρ is
        ``1/elastic_coupling``).
      momentum: momentum of each replica (0 for none).
      nesterov: Nesterov form of the momentum.
      axis_name: name of the replica axis.
      coupling: deprecated name of ``elastic_coupling`` (removed in the next release).

    Returns:
      An ``optax.GradientTransformation``.

    Examples:
      >>> import entropix
      >>> opt = entropix.elastic_sgd(0.1, elastic_coupling=1.0, axis_name="replicas")

    References:
      Zhang et al., NeurIPS 2015; Chaudhari, PhD thesis, UCLA 2018, §5.2.1.
    """
    elastic_coupling = common.renamed_keyword(
        "elastic_sgd", "coupling", coupling, "elastic_coupling", elastic_coupling, 1.0
    )
    return optax.chain(
        add_elastic_coupling(elastic_coupling, axis_name=axis_name),
        common.outer_sgd(learning_rate, momentum, nesterov),
    )


def replicated_sgd(
    learning_rate: base.ScalarOrSchedule = 0.1,
    *,
    elastic_coupling: base.ScalarOrSchedule = 1e-3,
    every: int = 1,
    momentum: float = 0.0,
    nesterov: bool = False,
    base_optimizer: base.GradientTransformation | None = None,
    axis_name: str = "replicas",
    coupling: base.ScalarOrSchedule | None = None,
) -> base.GradientTransformation:
    r"""Replicated SGD (rSGD): SGD on the replicated loss, coupling applied every ``K`` steps.

    .. math::
      L_R(\{w^a\}) = \sum_a L(w^a) + γ \sum_a \tfrac12 \lVert w^a - \bar w \rVert^2, \qquad
      dw^a = \nabla L(w^a; Ξ^a) + [t \bmod K = 0]\, K γ (w^a - \bar w)

    with ``w̄`` computed before any replica moves and an independent minibatch per replica
    (slides Alg. 2). Scope γ with a schedule (e.g. :func:`entropix.exponential_scoping`).
    Evaluate the center ``w̄`` (:func:`replica_mean`).

    Args:
      learning_rate: step size of the default base optimizer ``optax.sgd``.
      elastic_coupling: the paper's ``γ ≥ 0`` — the elastic ρ of the other replica methods
        (scalar or schedule of the step count).
      every: ``K ≥ 1`` (coupled updates: ``t = 0, K, 2K, …``, see
        :func:`add_elastic_coupling`).
      momentum: momentum of the default SGD base optimizer (0 for none, the slides' setting).
      nesterov: Nesterov form of that momentum.
      base_optimizer: any optax transformation to apply after the coupling (overrides
        ``learning_rate``, ``momentum`` and ``nesterov``).
      axis_name: name of the replica axis.
      coupling: deprecated name of ``elastic_coupling`` (removed in the next release).

    Returns:
      An ``optax.GradientTransformation``.

    Examples:
      >>> import optax, entropix
      >>> opt = entropix.replicated_sgd(0.05, elastic_coupling=1e-2, every=2)
      >>> adam_rsgd = entropix.replicated_sgd(
      ...     elastic_coupling=1e-2, base_optimizer=optax.adam(1e-3))

    References:
      Pittorino, Lucibello, Feinauer, Perugini, Baldassi, Demyanenko, Zecchina, *Entropic
      gradient descent algorithms and wide flat minima*, ICLR 2021, Algorithm 2.
    """
    elastic_coupling = common.renamed_keyword(
        "replicated_sgd", "coupling", coupling, "elastic_coupling", elastic_coupling, 1e-3
    )
    if base_optimizer is None:
        base_optimizer = common.outer_sgd(learning_rate, momentum, nesterov)
    validation.check_transformation("base_optimizer", base_optimizer)
    return optax.chain(
        add_elastic_coupling(elastic_coupling, axis_name=axis_name, every=every), base_optimizer
    )


@common.shared_argument_docs
def parle(
    learning_rate: base.ScalarOrSchedule = 0.1,
    *,
    steps_per_epoch: int | None = None,
    num_inner_steps: int = 25,
    coupling: base.ScalarOrSchedule | str | auto_coupling.AutoCoupling | None = None,
    elastic_coupling: base.ScalarOrSchedule | None = None,
    sgld_learning_rate: base.ScalarOrSchedule = 0.1,
    noise: base.ScalarOrSchedule = 0.0,
    noise_distribution: str = "rademacher",
    average_weight: base.ScalarOrSchedule = 0.75,
    momentum: float = 0.9,
    nesterov: bool = True,
    inner_momentum: float = 0.9,
    inner_nesterov: bool = True,
    weight_decay: float = 0.0,
    axis_name: str = "replicas",
    key: int | jax.Array = 0,
    compiled: bool = False,
    inner_transform: base.GradientTransformation | None = None,
    accumulator_dtype: Any | None = None,
) -> base.GradientTransformationExtraArgs:
    r"""Parle: Entropy-SGD in every replica, coupled elastically once per outer step.

    Each replica runs the Entropy-SGD inner loop on its own minibatches (thesis eq. 5.8a–b);
    every ``L`` steps, with the learning-rate normalization of thesis §5.3.2,

    .. math::
      x^a \leftarrow x^a - η\, \mathrm{nesterov}\big((x^a - μ^a) + ρ (x^a - \bar x)\big),
      \qquad \bar x = \frac1n \sum_b x^b,

    and the master is the replica mean. That is the only communication: one ``pmean`` per outer
    step. The master here is the mean of the current replicas (as in the public Parle code);
    the thesis' simultaneous form (5.8c–d) lags it by one round. Special cases: ``n = 1`` or
    ``elastic_coupling = 0`` is Entropy-SGD; identical replicas on identical data stay identical.

    Defaults are the thesis' Ch. 5 settings, in couplings: ``L = 25``, ``α = 0.75``, no injected
    noise, Nesterov 0.9 on the inner and replica updates, ``γ`` scoped by
    ``parle_scoping(0.01, B, max_coupling=1)`` and ``ρ`` by ``parle_scoping(1, B,
    max_coupling=10)`` (thesis γ₀ = 100, ρ₀ = 1, clipped at γ ≥ 1, ρ ≥ 0.1), with ``B`` =
    ``steps_per_epoch`` minibatches per epoch of the whole data set; ``n = 3`` replicas.

    Args:
      learning_rate: ``η`` of the replica (outer) update; the only tuned quantity in the thesis.
      steps_per_epoch: ``B`` for the default scoping schedules (needed unless both couplings
        are given).
      num_inner_steps: ``L``, inner steps between communications.
      coupling: ``γ`` of the local entropy (scalar or schedule of the outer-step count), or
        ``"auto"`` / :func:`entropix.auto_coupling` to adapt it online, one γ per replica
        (each from its own gradients and walker).
      elastic_coupling: ``ρ`` of the elastic term (scalar or schedule of the outer-step count).
      sgld_learning_rate: ``η₀``, inner step size (not annealed).
      noise: ``ε``, Langevin noise of the inner loop (thesis Ch. 5 uses none).
      {shared: noise_distribution}
      average_weight: ``α``, weight of the newest inner sample (thesis α = 0.25 ↔ 0.75).
      momentum: momentum of the replica update.
      nesterov: Nesterov form of the replica momentum.
      {shared: inner_momentum, inner_nesterov, weight_decay}
      axis_name: name of the replica axis.
      key: PRNG seed or key; each replica folds in its index, so its noise is its own.
      {shared: compiled, inner_transform, accumulator_dtype}

    Returns:
      An ``optax.GradientTransformationExtraArgs``; evaluate ``replica_mean(anchor_params(state))``.

    Examples:
      >>> import entropix
      >>> opt = entropix.parle(0.1, steps_per_epoch=100, num_inner_steps=5)

    References:
      Chaudhari, Baldassi, Zecchina, Soatto, Talwalkar, Oberman, *Parle: parallelizing
      stochastic gradient descent*, 2017; Chaudhari, PhD thesis, UCLA 2018, Ch. 5.
    """
    if coupling is None or elastic_coupling is None:
        if steps_per_epoch is None:
            raise ValueError(
                "parle needs `steps_per_epoch` (minibatches per epoch) for its default scoping "
                "schedules, or explicit `coupling` and `elastic_coupling`."
            )
        if coupling is None:
            coupling = schedules.parle_scoping(0.01, steps_per_epoch, max_coupling=1.0)
        if elastic_coupling is None:
            elastic_coupling = schedules.parle_scoping(1.0, steps_per_epoch, max_coupling=10.0)
    inner = common.chain_before(
        inner_transform, common.inner_momentum_transform(inner_momentum, inner_nesterov)
    )
    scale_outer_gradient = True  # Parle's outer step acts on x − μ
    rule = local_entropy.local_entropy_rule(**common.forwarded(locals(), common.SGLD_KEYWORDS))
    outer = optax.chain(
        add_elastic_coupling(elastic_coupling, axis_name=axis_name),
        common.outer_sgd(learning_rate, momentum, nesterov),
    )
    if not common.is_static_zero(noise):
        rule = _per_replica_noise(rule, axis_name)
    return loop.two_loop(
        rule,
        outer,
        num_inner_steps=num_inner_steps,
        key=key,
        compiled=compiled,
        accumulator_dtype=accumulator_dtype,
    )


def _per_replica_noise(rule: loop.InnerRule, axis_name: str) -> loop.InnerRule:
    """Gives every replica its own Langevin noise by folding the replica index into the key."""

    def step(grads, walker, anchor, average, inner_state, key, outer_count, **extra_args):
        try:
            replica = jax.lax.axis_index(axis_name)
        except NameError as err:
            raise _unbound_axis_error(axis_name, err) from err
        key = common.fold_in(key, replica)
        return rule.step(
            grads, walker, anchor, average, inner_state, key, outer_count, **extra_args
        )

    return rule._replace(step=step)
