"""The private toolbox shared by every optimizer of the package.

Hyper-parameter evaluation, PRNG keys, Langevin noise, weight decay, the momentum transforms of
the inner and outer loops, the float-leaf masking that lets integer leaves ride along in a
parameter tree, the search for a transformation's state inside a composed optax state, and the
keyword groups (and their one description) the local-entropy optimizers share.
Every optimizer module imports these from here and from nowhere else.
"""

from __future__ import annotations

import math
import re
import textwrap
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax
from optax._src import base

from entropix._src import validation

Params = Any


def schedule_value(hyperparameter: base.ScalarOrSchedule, count: jax.Array) -> jax.Array:
    """Evaluates a scalar-or-schedule hyper-parameter at ``count``."""
    if callable(hyperparameter):
        return hyperparameter(count)
    return hyperparameter


def is_static_zero(value: Any) -> bool:
    """Whether ``value`` is the Python/NumPy number 0 (so work for it can be skipped).

    A JAX array that holds 0 is not static: ``optax.inject_hyperparams`` passes hyper-parameters
    as arrays, and the transformation built at ``init`` must have the same structure as the one
    built inside ``update``.
    """
    number = validation.concrete_value(value)
    return number is not None and number == 0 and not isinstance(value, jax.Array)


def float_dtype() -> jnp.dtype:
    """The default float dtype: float64 under ``jax_enable_x64``, else float32."""
    return jnp.result_type(float)


def cast_like(value: Any, like: jax.Array) -> jax.Array:
    """``value`` as an array of ``like``'s dtype (keeps bf16 params in bf16)."""
    return jnp.asarray(value, like.dtype)


def as_key(key: int | jax.Array) -> jax.Array:
    """Returns a raw ``uint32[2]`` PRNG key from an int seed, a raw key or a typed key.

    An integer *array* (as ``optax.inject_hyperparams`` passes an int seed) is a seed too.
    """
    if isinstance(key, int) or (hasattr(key, "dtype") and jnp.issubdtype(key.dtype, jnp.integer)):
        if jnp.ndim(key) == 0:
            return jax.random.PRNGKey(key)
        return jnp.asarray(key, jnp.uint32)
    return jax.random.key_data(key)


def fold_in(key: jax.Array, data: Any) -> jax.Array:
    """``jax.random.fold_in`` of a raw Threefry key, bit for bit, without JAX's rolled hash loop.

    ``fold_in(key, d)`` is the Threefry hash of the counter ``(0, d)``; written out (see
    :func:`threefry2x32`) it is a few scalar operations instead of a while loop of kernels.
    """
    y0, y1 = threefry2x32(as_key(key), jnp.uint32(0), jnp.asarray(data).astype(jnp.uint32))
    return jnp.stack([y0, y1])


def step_key(key: jax.Array, count: jax.Array, stream: int) -> jax.Array:
    """The key of step ``count`` for one random stream (so every form draws the same noise)."""
    return fold_in(fold_in(key, count), stream)


def fresh_copy(leaf: Any) -> jax.Array:
    """A new buffer with ``leaf``'s value (zeros for a ``jax.ShapeDtypeStruct``).

    States must never share a buffer with the factory or with ``params``: a state donated to a
    jitted step would otherwise delete the buffer that the next ``init`` reads.
    """
    if isinstance(leaf, jax.ShapeDtypeStruct):
        return jnp.zeros(leaf.shape, leaf.dtype)
    return jnp.array(leaf, copy=True)


# ---------------------------------------------------------------------------------------------
# Periodic branches under vmap. `jax.vmap` turns a `lax.cond` whose predicate is batched into a
# `select` that evaluates both branches on every call, so a step form vmapped over replicas
# (its step counter is a batched state leaf) would run the outer step at every inner step.
# ---------------------------------------------------------------------------------------------


@jax.custom_batching.custom_vmap
def _any_in_batch(pred: jax.Array) -> jax.Array:
    return pred


@_any_in_batch.def_vmap
def _any_in_batch_vmap(axis_size, in_batched, pred):
    del axis_size
    (batched,) = in_batched
    return (jnp.any(pred, axis=0) if batched else pred), False


def batch_cond(pred: jax.Array, true_fn: Callable[[], Any], false_fn: Callable[[], Any]) -> Any:
    """``lax.cond(pred, true_fn, false_fn)`` that stays a branch when ``vmap`` batches ``pred``.

    Under ``vmap`` the predicate is first reduced over the batch (to an unbatched value, with no
    collective): when no element needs ``true_fn`` (``L − 1`` of every ``L`` inner steps) only
    ``false_fn`` runs; otherwise the inner ``lax.cond`` — a select under ``vmap`` — gives every
    element its own branch, so elements whose counters differ are still exact. Without ``vmap``
    and under ``shard_map`` both predicates are the same scalar.
    """
    return jax.lax.cond(
        _any_in_batch(pred), lambda: jax.lax.cond(pred, true_fn, false_fn), false_fn
    )


# ---------------------------------------------------------------------------------------------
# Float leaves: optimizers move only the inexact leaves of a tree; integer leaves (step
# counters, embedding ids kept in params) pass through unchanged, as in optax.sgd.
# ---------------------------------------------------------------------------------------------


def is_float_leaf(leaf: Any) -> bool:
    """Whether ``leaf`` (array or ShapeDtypeStruct) has an inexact dtype."""
    return jnp.issubdtype(jnp.result_type(leaf.dtype), jnp.inexact)


def float_leaves(tree: Params) -> Params:
    """``tree`` with every non-float leaf replaced by ``None`` (an empty subtree)."""
    return jax.tree.map(lambda leaf: leaf if is_float_leaf(leaf) else None, tree)


def float_leaves_like(tree: Params, like: Params) -> Params:
    """``tree`` with ``None`` wherever ``like`` has a non-float leaf.

    ``like`` fixes the structure, so ``tree`` may hold anything (None, float0, ints) where
    ``like`` has a non-float leaf, as gradients of integer parameters do.
    """
    return jax.tree.map(lambda ref, t: t if is_float_leaf(ref) else None, like, tree)


def merge_float_leaves(floats: Params, full: Params) -> Params:
    """``full`` with its float leaves replaced by those of ``floats`` (``None`` elsewhere)."""
    float_values = iter(jax.tree.leaves(floats))
    merged = [next(float_values) if is_float_leaf(leaf) else leaf for leaf in jax.tree.leaves(full)]
    return jax.tree.unflatten(jax.tree.structure(full), merged)


def zero_updates_for_non_floats(floats: Params, params: Params) -> Params:
    """Updates for ``params``: those of ``floats`` and zeros of the leaf's dtype elsewhere."""
    zeros = jax.tree.map(lambda leaf: leaf if is_float_leaf(leaf) else jnp.zeros_like(leaf), params)
    return merge_float_leaves(floats, zeros)


# ---------------------------------------------------------------------------------------------
# Langevin noise
# ---------------------------------------------------------------------------------------------


# Threefry-2x32 with 20 rounds (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as
# 1, 2, 3", SC 2011, https://doi.org/10.1145/2063384.2063405): rotation constants of the 2x32
# variant and the key-schedule parity constant.
_THREEFRY_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_THREEFRY_PARITY = 0x1BD11BDA


def threefry2x32(key: jax.Array, x0: jax.Array, x1: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The Threefry-2x32-20 block cipher of counters ``(x0, x1)`` under a raw ``uint32[2]`` key.

    Written out round by round in ``uint32`` arithmetic, so that XLA fuses the hash into the
    elementwise pass that consumes it: counter-based noise is generated inside the pass that
    adds it, without a loop over rounds and without a noise buffer. Bit-identical to
    ``jax.extend.random.threefry_2x32``.
    """
    u32 = jnp.uint32
    key = jnp.asarray(key, u32)
    schedule = (key[0], key[1], key[0] ^ key[1] ^ u32(_THREEFRY_PARITY))
    x0 = jnp.asarray(x0, u32) + schedule[0]
    x1 = jnp.asarray(x1, u32) + schedule[1]
    for injection in range(1, 6):
        for rotation in _THREEFRY_ROTATIONS[(injection - 1) % 2]:
            x0 = x0 + x1
            x1 = (x1 << u32(rotation)) | (x1 >> u32(32 - rotation))
            x1 = x1 ^ x0
        x0 = x0 + schedule[injection % 3]
        x1 = x1 + schedule[(injection + 1) % 3] + u32(injection)
    return x0, x1


def _gaussian(key: jax.Array, leaf_index: int, shape, dtype) -> jax.Array:
    # One Threefry hash per coordinate (counter = (coordinate, leaf)), mapped through the
    # inverse normal CDF Φ⁻¹(u) = √2 erf⁻¹(2u − 1) at the midpoints u of a 2^b-point grid
    # (b = 24 bits for float32 and narrower, 32 for float64): symmetric, so the mean is exactly
    # 0, and N(0, 1) up to that grid (|ξ| ≤ 5.4 in float32).
    compute = jnp.float64 if jnp.dtype(dtype) == jnp.float64 else jnp.float32
    bits = 32 if compute == jnp.float64 else 24
    counters = jax.lax.iota(jnp.uint32, math.prod(shape))
    word, _ = threefry2x32(key, counters, jnp.uint32(leaf_index))
    if bits < 32:
        word = word >> jnp.uint32(32 - bits)
    centered = word.astype(compute) * (2.0 / 2**bits) - (1.0 - 1.0 / 2**bits)
    return (math.sqrt(2.0) * jax.lax.erf_inv(centered)).astype(dtype).reshape(shape)


def _rademacher_signs(key: jax.Array, leaves) -> list[jax.Array]:
    # One random bit per coordinate: a single draw of ⌈n/32⌉ words per leaf for the whole tree
    # (one PRNG call per step), each word expanded into 32 signs by shifts that fuse into the
    # pass adding the noise.
    word_counts = [-(-math.prod(leaf.shape) // 32) for leaf in leaves]
    words = jax.random.bits(key, (sum(word_counts),), jnp.uint32)
    shifts = jnp.arange(32, dtype=jnp.uint32)
    signs, offset = [], 0
    for leaf, count in zip(leaves, word_counts, strict=True):
        size = math.prod(leaf.shape)
        bits = (words[offset : offset + count, None] >> shifts) & 1
        sign = 1 - 2 * bits.astype(leaf.dtype)
        signs.append(sign.reshape(-1)[:size].reshape(leaf.shape))
        offset += count
    return signs


def noise_like(tree: Params, key: jax.Array, distribution: str = "gaussian") -> Params:
    """Zero-mean, unit-variance iid noise with the structure, shapes and dtypes of ``tree``.

    ``"gaussian"``: ``N(0, 1)`` per coordinate by the inverse-CDF transform of one
    counter-based Threefry hash per coordinate; ``"rademacher"``: ±1 signs, one random bit
    per coordinate. Both are functions of ``key`` alone, so every form of an optimizer that
    derives the same key draws the same noise.
    """
    leaves, treedef = jax.tree.flatten(tree)
    if distribution == "gaussian":
        key = as_key(key)
        noise = [_gaussian(key, i, leaf.shape, leaf.dtype) for i, leaf in enumerate(leaves)]
    else:
        noise = _rademacher_signs(key, leaves)
    return jax.tree.unflatten(treedef, noise)


def add_scaled_noise(
    tree: Params, scale: Any, key: jax.Array, distribution: str = "gaussian"
) -> Params:
    """Returns ``tree + scale · ξ``; draws nothing when ``scale`` is the number 0.

    A ``scale`` that is zero only at run time (a schedule, a traced hyper-parameter) still
    draws ``ξ`` and adds exactly zero: branching on it with ``lax.cond`` would force the tree
    to be written out before and after the branch, which cost more than the draw itself.
    """
    if is_static_zero(scale):
        return tree
    noise = noise_like(tree, key, distribution)
    return jax.tree.map(lambda t, n: t + jnp.asarray(scale, t.dtype) * n, tree, noise)


def add_weight_decay(grads: Params, params: Params, weight_decay: Any) -> Params:
    """``grads + λ params`` (nothing to do when ``λ`` is the number 0)."""
    if is_static_zero(weight_decay):
        return grads
    return jax.tree.map(lambda g, w: g + cast_like(weight_decay, w) * w, grads, params)


# ---------------------------------------------------------------------------------------------
# Momentum transforms of the inner and outer loops
# ---------------------------------------------------------------------------------------------


def inner_momentum_transform(
    momentum: float | jax.Array, nesterov: bool
) -> base.GradientTransformation:
    """Heavy-ball or Nesterov momentum of the inner loop (identity for momentum 0)."""
    validation.check_unit_interval("inner_momentum", momentum)
    if is_static_zero(momentum):
        return optax.identity()
    return optax.trace(decay=momentum, nesterov=nesterov)


def outer_sgd(
    learning_rate: base.ScalarOrSchedule, momentum: float | jax.Array, nesterov: bool
) -> base.GradientTransformation:
    """SGD with optional (Nesterov) momentum, validated."""
    validation.check_schedule("learning_rate", learning_rate, validation.check_non_negative)
    validation.check_unit_interval("momentum", momentum)
    if is_static_zero(momentum):
        return optax.sgd(learning_rate)
    return optax.sgd(learning_rate, momentum=momentum, nesterov=nesterov)


def chain_before(
    transform: base.GradientTransformation | None, rest: base.GradientTransformation
) -> base.GradientTransformation:
    """``optax.chain(transform, rest)``, or ``rest`` alone when ``transform`` is None."""
    if transform is None:
        return rest
    validation.check_transformation("inner_transform", transform)
    return optax.chain(transform, rest)


# ---------------------------------------------------------------------------------------------
# Finding a transformation's state inside a composed optax state
# ---------------------------------------------------------------------------------------------


def find_states(state: Any, predicate: Callable[[Any], bool]) -> list[Any]:
    """Every node of ``state`` (depth first) for which ``predicate`` holds.

    Looks inside tuples (``optax.chain``, NamedTuple states such as ``MaskedState``), lists and
    dicts (``optax.multi_transform``, ``inject_hyperparams``).
    """
    if predicate(state):
        return [state]
    found = []
    if isinstance(state, (tuple, list)):
        for child in state:
            found.extend(find_states(child, predicate))
    elif isinstance(state, dict):
        for child in state.values():
            found.extend(find_states(child, predicate))
    return found


def renamed_keyword(
    function: str, old: str, old_value: Any, new: str, new_value: Any, new_default: Any
) -> Any:
    """The value of a keyword argument renamed from ``old`` to ``new`` (old name deprecated).

    Returns ``new_value`` unless the caller used ``old``, in which case a ``DeprecationWarning``
    says to rename it and its value is used (an error when both names were set).
    """
    if old_value is None:
        return new_value
    if new_value is not new_default and new_value != new_default:
        raise TypeError(
            f"{function}() got both `{old}` and `{new}`; `{old}` is the deprecated name of "
            f"`{new}`: pass only {new}=..."
        )
    warnings.warn(
        f"{function}(): the `{old}` keyword is deprecated and will be removed in the next "
        f"release; it sets the elastic coupling ρ, now called `{new}`: pass {new}={old_value!r}.",
        DeprecationWarning,
        stacklevel=3,
    )
    return old_value


# --------------------------------------------------------------------------------------------
# Keyword groups shared by the local-entropy optimizers
# --------------------------------------------------------------------------------------------

# The keyword arguments every local-entropy optimizer (Entropy-SGD, Entropy-Adam, HJ) passes
# to :func:`entropix.local_entropy` unchanged.
LOCAL_ENTROPY_KEYWORDS = (
    "num_inner_steps",
    "coupling",
    "sgld_learning_rate",
    "noise",
    "noise_distribution",
    "average_weight",
    "weight_decay",
    "scale_outer_gradient",
    "key",
    "compiled",
    "accumulator_dtype",
)

# The keyword arguments of the SGLD inner rule (``local_entropy_rule``), which
# :func:`entropix.local_entropy` and :func:`entropix.parle` pass on.
SGLD_KEYWORDS = (
    "coupling",
    "sgld_learning_rate",
    "noise",
    "noise_distribution",
    "average_weight",
    "inner",
    "weight_decay",
    "scale_outer_gradient",
)

# One description of each keyword argument the local-entropy optimizers share; their
# docstrings name the arguments in a ``{shared: a, b, …}`` line that
# :func:`shared_argument_docs` replaces with these descriptions.
ARGUMENT_DOCS: dict[str, str] = {
    "num_inner_steps": "``L ≥ 1``, SGLD steps (gradient evaluations) per outer step; static.",
    "coupling": (
        "``γ ≥ 0``, coupling strength (scalar or schedule of the outer-step count, e.g. "
        ':func:`entropix.exponential_scoping`), or ``"auto"`` / :func:`entropix.auto_coupling` '
        "to adapt it online to a target fraction of the gradient norm."
    ),
    "sgld_learning_rate": "``η' > 0``, inner step size.",
    "noise": "``ε ≥ 0``, Langevin noise (temperature ``ε²/2``); ``0`` skips noise generation.",
    "noise_distribution": (
        '``"rademacher"`` (default: iid ±1 signs, the same mean and covariance as '
        "``N(0, I)`` and hence the same Langevin limit — the weak-order-1 Euler scheme — from "
        'one random bit per coordinate instead of a 32-bit hash) or ``"gaussian"`` (the '
        "papers' ``N(0, I)``)."
    ),
    "average_weight": "``α ∈ (0, 1]``, weight of the newest walker sample in ``μ``.",
    "inner_momentum": (
        "momentum of the inner loop (its own buffer, reset every outer step). It acts on the "
        "data gradient only; the coupling ``γ (x' − x)`` is added after it, as in the authors' "
        "code."
    ),
    "inner_nesterov": "Nesterov form of the inner momentum.",
    "weight_decay": "``λ ≥ 0``, ℓ2 penalty added to the inner gradient.",
    "scale_outer_gradient": (
        "outer gradient ``x − μ`` (True, the papers' practice) or ``γ (x − μ)``."
    ),
    "key": "PRNG seed or key of the Langevin noise.",
    "compiled": "compiled form (one update = one outer step with ``grad_fn``).",
    "inner_transform": (
        "optax transformation applied to every inner gradient before the inner momentum, in "
        "both forms (e.g. ``optax.clip_by_global_norm(1.0)``; use it instead of chaining a "
        "transformation before the compiled form); ``None`` for none."
    ),
    "accumulator_dtype": (
        "dtype of the anchor, the walker average and the optimizer states (e.g. "
        "``jnp.float32`` for bfloat16 parameters); ``None`` follows the parameters."
    ),
}

_SHARED_LINE = re.compile(r"^( *)\{shared: ([a-z_,\s]+?)\}$", re.M)


def shared_argument_docs(function: Callable) -> Callable:
    """Replaces each ``{shared: a, b, …}`` line of ``function``'s docstring by the
    :data:`ARGUMENT_DOCS` entries of ``a, b, …`` (``name: description``, wrapped at the line's
    indentation)."""

    def expand(match: re.Match) -> str:
        indent = match.group(1)
        lines = []
        for name in (n.strip() for n in match.group(2).split(",")):
            # Spaces inside ``literals`` are protected so a literal is never split.
            text = re.sub(r"``.*?``", lambda m: m.group(0).replace(" ", "\0"), ARGUMENT_DOCS[name])
            wrapped = textwrap.wrap(
                f"{name}: {text}",
                width=100,
                initial_indent=indent,
                subsequent_indent=indent + "  ",
                break_on_hyphens=False,
            )
            lines += [line.replace("\0", " ") for line in wrapped]
        return "\n".join(lines)

    function.__doc__ = _SHARED_LINE.sub(expand, function.__doc__)
    return function


def forwarded(arguments: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """The entries ``names`` of a factory's arguments (its ``locals()``): a keyword group
    passed on unchanged."""
    return {name: arguments[name] for name in names}
