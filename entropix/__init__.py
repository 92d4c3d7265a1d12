"""entropix: entropic optimizers for JAX/Optax.

Entropy-SGD, Entropy-Adam, the Hamilton–Jacobi (proximal) and HEAT variants as optax gradient
transformations with ``lax.scan``-compiled inner loops, plus scoping schedules and metrics.
Trivialized-SGD's annealed field is here too. Landscape diagnostics, toy landscapes, models,
data and experiments live in the subpackages ``entropix.landscape``, ``entropix.toys``,
``entropix.models``, ``entropix.data`` and ``entropix.experiments``.
"""

from entropix._src.auto_coupling import (
    AutoCoupling,
    AutoCouplingState,
    auto_coupling,
    current_coupling,
)
from entropix._src.catalogue import OPTIMIZERS, OptimizerEntry, optimizer_entry
from entropix._src.heat import heat
from entropix._src.local_entropy import (
    SGLDChainResult,
    entropy_adam,
    entropy_sgd,
    hj,
    local_entropy,
    sgld_chain,
)
from entropix._src.loop import (
    HeatState,
    InnerRule,
    LocalEntropyState,
    anchor_params,
    is_outer_step,
    outer_count_schedule,
    outer_step_count,
    two_loop,
    two_loop_state,
)
from entropix._src.metrics import GradientAlignment, gradient_alignment, local_entropy_gradient
from entropix._src.replicas import (
    ElasticCouplingState,
    add_elastic_coupling,
    elastic_sgd,
    ensemble_probabilities,
    parle,
    replica_mean,
    replicated_sgd,
)
from entropix._src.schedules import (
    average_weight_from_thesis_alpha,
    bounded_exponential_scoping,
    coupling_from_variance,
    exponential_scoping,
    linear_scoping,
    parle_scoping,
)
from entropix._src.trivialize import (
    TrivializingFieldState,
    add_trivializing_field,
    critical_field,
    field_alignment,
    field_schedule,
    get_trivializing_field,
    min_abs_gradient,
    trivialization_heuristics,
    trivialization_order_parameter,
    trivialized_sgd,
)

__version__ = "0.2.0.dev0"

__all__ = [
    "OPTIMIZERS",
    "AutoCoupling",
    "AutoCouplingState",
    "ElasticCouplingState",
    "GradientAlignment",
    "HeatState",
    "InnerRule",
    "LocalEntropyState",
    "OptimizerEntry",
    "SGLDChainResult",
    "TrivializingFieldState",
    "add_elastic_coupling",
    "add_trivializing_field",
    "anchor_params",
    "auto_coupling",
    "average_weight_from_thesis_alpha",
    "bounded_exponential_scoping",
    "coupling_from_variance",
    "critical_field",
    "current_coupling",
    "elastic_sgd",
    "ensemble_probabilities",
    "entropy_adam",
    "entropy_sgd",
    "exponential_scoping",
    "field_alignment",
    "field_schedule",
    "get_trivializing_field",
    "gradient_alignment",
    "heat",
    "hj",
    "is_outer_step",
    "linear_scoping",
    "local_entropy",
    "local_entropy_gradient",
    "min_abs_gradient",
    "optimizer_entry",
    "outer_count_schedule",
    "outer_step_count",
    "parle",
    "parle_scoping",
    "replica_mean",
    "replicated_sgd",
    "sgld_chain",
    "trivialization_heuristics",
    "trivialization_order_parameter",
    "trivialized_sgd",
    "two_loop",
    "two_loop_state",
]
