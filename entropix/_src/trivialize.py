"""Trivialized-SGD: an annealed random magnetic field added to the gradient.

Thesis (Chaudhari 2018), chapter 2, Algorithm 1. Perturbing a spherical ``p``-spin glass
Hamiltonian by a random field ``h ~ N(0, ν² I)`` changes the topology of its landscape: above the
critical field ``ν_c = J √(p(p−2))`` the exponentially many local minima collapse to a single one
("total trivialization"). Trivialized-SGD transfers the idea to deep networks by adding a field
``h_cur`` of fixed random direction to the back-propagated gradient, starting on the trivialized
side (``√2 ν_c``) and annealing it to zero.

Note: the spin-glass coupling ``J`` of this module is unrelated to the local-entropy coupling
``γ`` (argument ``coupling``) of the Entropy-SGD family; it is therefore called
``spin_coupling`` here.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from entropix._src import common, validation

__all__ = [
    "TrivializingFieldState",
    "add_trivializing_field",
    "critical_field",
    "field_alignment",
    "field_schedule",
    "get_trivializing_field",
    "min_abs_gradient",
    "trivialization_heuristics",
    "trivialization_order_parameter",
    "trivialized_sgd",
]


class TrivializingFieldState(NamedTuple):
    """State of :func:`add_trivializing_field`.

    Attributes:
      count: number of ``update`` calls so far (the SGD iteration ``i``), ``int32``.
      field: the random field ``h`` (same structure, shapes and dtypes as the parameters),
        drawn once at ``init`` with standard deviation ``ν_c = J √(p(p−2))``; its direction is
        fixed for the whole run (unless ``resample=True``, where it is the last draw).
      key: PRNG key used to resample the field when ``resample=True`` (carried but unused
        otherwise).
    """

    count: jax.Array
    field: optax.Updates
    key: jax.Array


def critical_field(spin_coupling: float | jax.Array, num_layers: int | jax.Array) -> jax.Array:
    r"""Critical field strength ``ν_c = J √(p(p−2))`` of a spherical ``p``-spin glass.

    At ``ν = ν_c`` the order parameter :func:`trivialization_order_parameter` vanishes; fields
    above it trivialize the landscape (Fyodorov 2013; thesis eq. 2.15).

    Args:
      spin_coupling: the coupling ``J`` of the spin glass (standard deviation of the couplings).
      num_layers: the interaction order ``p`` (for networks: the number of layers).

    Returns:
      ``J √(p(p−2))`` as a scalar array.

    Examples:
      >>> round(float(critical_field(1.0, 3)), 6)  # √3
      1.732051

    References:
      P. Chaudhari, *A Picture of the Energy Landscape of Deep Neural Networks*, PhD thesis,
      UCLA 2018, §2.3 (eq. 2.15).
    """
    p = jnp.asarray(num_layers, dtype=jnp.result_type(float))
    return jnp.asarray(spin_coupling) * jnp.sqrt(p * (p - 2.0))


def trivialization_order_parameter(
    field_std: float | jax.Array,
    spin_coupling: float | jax.Array,
    num_layers: int | jax.Array,
) -> jax.Array:
    r"""Order parameter ``B`` of a ``p``-spin glass in a random field (thesis eq. 2.15).

    .. math::
      B = \frac{J^2 p (p-2) - ν^2}{J^2 p^2 + ν^2} \in (-1, 1 - 2/p].

    ``B > 0``: exponentially many critical points; ``B = -Ω(1/N)``: total trivialization (one
    minimum); ``B = 0`` at ``ν = ν_c``.

    Args:
      field_std: standard deviation ``ν`` of the field components.
      spin_coupling: the spin-glass coupling ``J``.
      num_layers: the interaction order ``p``.

    Returns:
      ``B`` as a scalar array.

    Examples:
      >>> round(float(trivialization_order_parameter(3.0, 1.0, 3)), 6)
      -0.333333

    References:
      Y. V. Fyodorov, *High-dimensional random fields and random matrix theory*, 2013;
      Chaudhari, PhD thesis 2018, §2.3 (eq. 2.15, Theorem 2.7).
    """
    p = jnp.asarray(num_layers, dtype=jnp.result_type(float))
    j2 = jnp.asarray(spin_coupling) ** 2
    nu2 = jnp.asarray(field_std) ** 2
    return (j2 * p * (p - 2.0) - nu2) / (j2 * p * p + nu2)


def field_schedule(step: int | jax.Array, tau0: float | jax.Array) -> jax.Array:
    r"""Annealing factor ``m(i)`` of the field at SGD iteration ``i``.

    Thesis Algorithm 1 uses ``τ_i = n (e^{−i/τ0} − ½)`` and ``h_cur = (1 + 2τ_i/N)^{1/2} h``;
    with the thesis's heuristic ``n ≡ N`` (both the per-layer width) this is

    .. math::
      m(i) = \sqrt{2}\, e^{-i / (2 τ_0)},

    so the field starts at ``√2 ν_c`` (trivialized side, ``B = −(p−2)/(3p−4)``), crosses the
    critical field ``ν_c`` (``B = 0``) at ``i = τ_0 \ln 2`` and decays to zero. The width ``N``
    cancels, which is why :func:`add_trivializing_field` does not take it.

    Args:
      step: iteration ``i`` (scalar or array).
      tau0: time constant ``τ_0 > 0`` in iterations.

    Returns:
      ``m(i)`` (float array of the shape of ``step``).

    Examples:
      >>> round(float(field_schedule(0, 500.0)), 6)
      1.414214

    References:
      Chaudhari, PhD thesis 2018, §2.3.3, eqs. 2.19–2.20 and Algorithm 1.
    """
    step = jnp.asarray(step, dtype=jnp.result_type(float))
    return jnp.sqrt(2.0) * jnp.exp(-step / (2.0 * jnp.asarray(tau0)))


def _draw_field(key: jax.Array, params: Any, std: jax.Array) -> Any:
    """Draws ``std · N(0, I)`` with the structure, shapes and dtypes of ``params``.

    Integer and boolean leaves carry no gradient and get no field; the keys are split over the
    float leaves only, so adding an integer leaf does not change the field of the others.
    """
    leaves, treedef = jax.tree.flatten(params)
    num_floats = sum(common.is_float_leaf(leaf) for leaf in leaves)
    keys = iter(jax.random.split(key, max(num_floats, 1)))
    out = []
    for leaf in leaves:
        dtype = jnp.dtype(leaf.dtype)
        if common.is_float_leaf(leaf):
            noise = jax.random.normal(next(keys), leaf.shape, dtype=dtype)
            out.append((std * noise).astype(dtype))
        else:
            out.append(jnp.zeros(leaf.shape, dtype))
    return jax.tree.unflatten(treedef, out)


def add_trivializing_field(
    spin_coupling: float | jax.Array,
    *,
    num_layers: int | jax.Array,
    tau0: float | jax.Array,
    key: int | jax.Array,
    resample: bool = False,
) -> optax.GradientTransformation:
    r"""Adds the annealed random field of Trivialized-SGD to the gradient.

    A field of fixed random direction is drawn once,

    .. math::
      h \sim J \sqrt{p(p-2)}\; \mathcal N(0, I),

    (``ν_c = J√(p(p−2))`` is the critical field of a ``p``-spin glass), and at iteration ``i``
    the transformation returns

    .. math::
      g_i + h_{cur}, \qquad h_{cur} = \sqrt 2\, e^{-i/(2 τ_0)}\, h,

    i.e. the gradient of ``loss(w) + h_curᵀ w``. Chain it *before* any optax optimizer
    (the thesis used SGD with Nesterov momentum and Adam); weight decay may be chained before or
    after. With ``resample=True`` a fresh ``h`` is drawn every iteration with the same annealed
    magnitude: the "resampled, annealed noise" baseline (Neelakantan et al. 2015) that the thesis
    compares against (Table 2.1).

    The schedule is thesis Algorithm 1 with ``τ_i = n(e^{−i/τ0} − ½)``,
    ``h_cur = (1 + 2τ_i/N)^{1/2} h`` and the heuristic ``n ≡ N`` (see :func:`field_schedule`);
    the width ``N`` therefore cancels. :func:`trivialization_heuristics` estimates ``p`` from a
    parameter pytree.

    Args:
      spin_coupling: the coupling ``J > 0`` (thesis: ``10⁻³`` for a 16-layer MLP, ``10⁻⁴`` for
        CNNs). Unrelated to the local-entropy coupling ``γ``.
      num_layers: the interaction order ``p ≥ 3`` (number of layers of the network; a
        conv+BN+pool block counts as one layer). ``ν_c`` vanishes for ``p ≤ 2``.
      tau0: annealing time constant ``τ_0 > 0`` in iterations (thesis: 500 or 1000); the field
        crosses ``ν_c`` at iteration ``τ_0 ln 2``.
      key: a PRNG key (``jax.random.key`` or legacy ``PRNGKey``) or an integer seed; stored
        in the state.
      resample: if ``True``, draw a new field every iteration (baseline).

    Returns:
      An ``optax.GradientTransformation``. ``init`` accepts arrays or
      ``jax.ShapeDtypeStruct`` leaves; the field keeps each leaf's dtype (e.g. bfloat16).

    Raises:
      ValueError: if ``spin_coupling``, ``num_layers`` or ``tau0`` are out of range.

    Examples:
      >>> import jax, jax.numpy as jnp, optax
      >>> tx = optax.chain(
      ...     add_trivializing_field(1e-3, num_layers=16, tau0=500.0, key=jax.random.key(0)),
      ...     optax.sgd(0.1, momentum=0.9, nesterov=True))
      >>> params = {"w": jnp.zeros((3, 2))}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.ones((3, 2))}, state, params)

    References:
      P. Chaudhari, *A Picture of the Energy Landscape of Deep Neural Networks*, PhD thesis,
      UCLA 2018, §2.3.3 and Algorithm 1; P. Chaudhari and S. Soatto, *On the energy landscape of
      deep networks*, arXiv:1511.06485; A. Neelakantan et al., *Adding gradient noise improves
      learning for very deep networks*, arXiv:1511.06807.
    """
    validation.check_scalar("spin_coupling", spin_coupling, lambda v: v > 0, "a positive number")
    validation.check_scalar(
        "num_layers", num_layers, lambda v: v >= 3, "an integer >= 3 (ν_c = 0 for p <= 2)"
    )
    validation.check_scalar("tau0", tau0, lambda v: v > 0, "a positive number of iterations")
    if not isinstance(resample, bool):
        raise ValueError(f"`resample` must be a bool, got {resample!r}.")

    def init_fn(params: optax.Params) -> TrivializingFieldState:
        std = critical_field(spin_coupling, num_layers)
        field_key, state_key = jax.random.split(common.as_key(key))
        field = _draw_field(field_key, params, std)
        return TrivializingFieldState(count=jnp.zeros([], jnp.int32), field=field, key=state_key)

    def update_fn(
        updates: optax.Updates,
        state: TrivializingFieldState,
        params: optax.Params | None = None,
    ) -> tuple[optax.Updates, TrivializingFieldState]:
        del params
        scale = field_schedule(state.count, tau0)
        if resample:
            next_key, draw_key = jax.random.split(state.key)
            field = _draw_field(draw_key, state.field, critical_field(spin_coupling, num_layers))
        else:
            next_key, field = state.key, state.field
        updates = jax.tree.map(
            lambda g, h: (g + scale.astype(g.dtype) * h.astype(g.dtype)).astype(g.dtype),
            updates,
            field,
        )
        new_state = TrivializingFieldState(
            count=optax.safe_increment(state.count), field=field, key=next_key
        )
        return updates, new_state

    return optax.GradientTransformation(init_fn, update_fn)


def trivialized_sgd(
    learning_rate: optax.ScalarOrSchedule,
    *,
    spin_coupling: float | jax.Array,
    num_layers: int | jax.Array,
    tau0: float | jax.Array,
    key: int | jax.Array,
    momentum: float | None = 0.9,
    nesterov: bool = True,
    weight_decay: float | jax.Array | None = None,
    resample: bool = False,
) -> optax.GradientTransformation:
    r"""Trivialized-SGD: the annealed field chained before SGD with Nesterov momentum.

    .. math::
      w_{i+1} = w_i - η\,\mathrm{Nesterov}\big(∇ℓ(w_i; ξ_i) + λ w_i
                + \sqrt2\, e^{-i/(2τ_0)} h\big),
      \qquad h \sim J\sqrt{p(p-2)}\,\mathcal N(0, I).

    Equivalent to ``optax.chain([add_decayed_weights(λ),] add_trivializing_field(...),
    optax.sgd(learning_rate, momentum, nesterov))``.

    Args:
      learning_rate: SGD learning rate ``η`` (scalar or optax schedule).
      spin_coupling: coupling ``J`` of the field (see :func:`add_trivializing_field`).
      num_layers: interaction order ``p ≥ 3`` (number of layers).
      tau0: annealing time constant ``τ_0`` in iterations.
      key: PRNG key (or integer seed) of the field.
      momentum: momentum of SGD (``None`` for plain SGD); the thesis used 0.9.
      nesterov: Nesterov momentum (thesis: ``True``).
      weight_decay: optional ℓ2 coefficient ``λ`` added to the gradient (thesis: ``10⁻³`` for
        CNNs); ``None`` adds nothing (then ``update`` does not need ``params``).
      resample: resampled-noise baseline (see :func:`add_trivializing_field`).

    Returns:
      An ``optax.GradientTransformation``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> tx = trivialized_sgd(0.1, spin_coupling=1e-4, num_layers=8, tau0=1000.0,
      ...                      key=jax.random.key(0))
      >>> state = tx.init({"w": jnp.ones(4)})

    References:
      Chaudhari, PhD thesis 2018, §2.3.3 (Algorithm 1) and §2.4.3 (All-CNN-BN with SGD+Nesterov).
    """
    parts = []
    if weight_decay is not None:
        parts.append(optax.add_decayed_weights(weight_decay))
    parts.append(
        add_trivializing_field(
            spin_coupling, num_layers=num_layers, tau0=tau0, key=key, resample=resample
        )
    )
    parts.append(optax.sgd(learning_rate, momentum=momentum, nesterov=nesterov))
    return optax.chain(*parts)


def trivialization_heuristics(params: Any) -> tuple[int, int]:
    r"""The thesis's estimates of the order ``p`` and width ``N`` of a network.

    ``p`` = number of weight tensors with at least 2 dimensions (dense kernels, convolution
    kernels; biases and normalization scales, being 1-D, are not layers) and
    ``N = round(√(#parameters / p))`` (thesis §2.4.2: "N := (#weights/p)^{1/2}").
    Only ``p`` enters :func:`add_trivializing_field` (the width cancels in the schedule);
    ``N`` sets the scale of the polynomial band ``|B| = O(1/N)``.

    Args:
      params: a parameter pytree (arrays or ``jax.ShapeDtypeStruct``).

    Returns:
      ``(num_layers, width)`` as Python ints.

    Raises:
      ValueError: if ``params`` has no leaf with at least 2 dimensions.

    Examples:
      >>> import jax.numpy as jnp
      >>> trivialization_heuristics({"l1": {"w": jnp.zeros((784, 100)), "b": jnp.zeros(100)},
      ...                            "l2": {"w": jnp.zeros((100, 10)), "b": jnp.zeros(10)}})
      (2, 199)

    References:
      Chaudhari, PhD thesis 2018, §2.4.2.
    """
    leaves = jax.tree.leaves(params)
    num_layers = sum(1 for x in leaves if len(x.shape) >= 2)
    if num_layers == 0:
        raise ValueError(
            "`params` has no weight tensor with >= 2 dimensions, so the number of layers p "
            "cannot be estimated; pass num_layers explicitly."
        )
    num_weights = sum(math.prod(x.shape) for x in leaves)
    width = round(math.sqrt(num_weights / num_layers))
    return num_layers, width


def min_abs_gradient(grads: Any, *, per_leaf: bool = False) -> Any:
    r"""Smallest absolute gradient component, ``min_i |∂f/∂w_i|`` (thesis Fig. 2.3b).

    The thesis reports that the field keeps this quantity larger during training.

    Args:
      grads: a gradient pytree.
      per_leaf: if ``True`` return a pytree of per-leaf minima instead of the global one.

    Returns:
      A float32 scalar (or a pytree of them).

    Examples:
      >>> import jax.numpy as jnp
      >>> round(float(min_abs_gradient({"a": jnp.array([0.5, -0.1]), "b": jnp.array([2.0])})), 6)
      0.1

    References:
      Chaudhari, PhD thesis 2018, §2.4.3, Fig. 2.3b.
    """
    mins = jax.tree.map(lambda g: jnp.min(jnp.abs(g)).astype(jnp.float32), grads)
    if per_leaf:
        return mins
    return jnp.min(jnp.stack(jax.tree.leaves(mins)))


def field_alignment(field: Any, params: Any) -> jax.Array:
    r"""Alignment of the weights with the field, ``|hᵀw| / (‖h‖ ‖w‖)`` (thesis Fig. 2.4).

    Computed in float32 over the whole pytree. Under a fixed-direction field the weights align
    with ``h`` (the field term ``h_curᵀ w`` is minimized), unlike with resampled noise.

    Args:
      field: the field ``h`` (e.g. from :func:`get_trivializing_field`).
      params: the weights ``w``, same structure.

    Returns:
      A float32 scalar in ``[0, 1]`` (0 if either vector is zero).

    Examples:
      >>> import jax.numpy as jnp
      >>> float(field_alignment({"w": jnp.array([1.0, 0.0])}, {"w": jnp.array([-2.0, 0.0])}))
      1.0

    References:
      Chaudhari, PhD thesis 2018, §2.4.3, Fig. 2.4.
    """

    def dot(a, b):
        return sum(
            jnp.vdot(x.astype(jnp.float32), y.astype(jnp.float32))
            for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
        )

    hw = dot(field, params)
    hh = dot(field, field)
    ww = dot(params, params)
    denom = jnp.sqrt(hh * ww)
    return jnp.where(denom > 0, jnp.abs(hw) / jnp.where(denom > 0, denom, 1.0), 0.0)


def get_trivializing_field(state: Any) -> Any:
    """Returns the field ``h`` from an optimizer state containing a trivializing field.

    Searches the (possibly nested: ``optax.chain``, ``inject_hyperparams``, ...) state for the
    unique :class:`TrivializingFieldState`.

    Args:
      state: an optax state.

    Returns:
      The field pytree ``h`` (the last draw when ``resample=True``).

    Raises:
      ValueError: if the state contains no or several trivializing fields.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> tx = trivialized_sgd(0.1, spin_coupling=1.0, num_layers=3, tau0=10.0,
      ...                      key=jax.random.key(0))
      >>> h = get_trivializing_field(tx.init({"w": jnp.ones(2)}))
    """
    found = common.find_states(state, lambda node: isinstance(node, TrivializingFieldState))
    if len(found) != 1:
        raise ValueError(
            f"expected exactly one TrivializingFieldState in the optimizer state, found "
            f"{len(found)}."
        )
    return found[0].field
