"""Landscape diagnostics: Hessian spectra, Fisher, local energy and entropy, gradient noise.

Every measurement takes a ``loss_fn(params, batch)`` (params any pytree) and ``batches``: a list
of batches or a pytree stacked along a leading batch-group axis; dataset-level quantities are
means over the batches (see :mod:`entropix.landscape.dataset`). Hessian tools work matrix-free
through Hessian-vector products (forward-over-reverse); only :func:`hessian_spectrum` forms the
dense Hessian, and it refuses above ``max_params``.

The plotting functions import matplotlib lazily (an optional dependency).
"""

from entropix.landscape.dataset import (
    BatchList,
    StackedBatches,
    batch_mean,
    full_loss_and_grad,
    prepare_batches,
    stack_batches,
)
from entropix.landscape.density import (
    SpectralDensity,
    broadened_density,
    density_moments,
    hessian_density,
    slq_density,
)
from entropix.landscape.fisher import (
    adam_fisher_diagonal,
    empirical_fisher_diagonal,
    find_adam_state,
)
from entropix.landscape.hvp import (
    LinearOperator,
    batch_hvp,
    hessian_operator,
    hessian_vector_product,
)
from entropix.landscape.lanczos import (
    LanczosResult,
    Tridiagonal,
    hessian_eigenvalues,
    lanczos_eigenvalues,
    lanczos_tridiagonal,
    tridiagonal_eigh,
)
from entropix.landscape.llc import (
    DevinterpSettings,
    LLCEstimate,
    LLCSettings,
    LLCWarning,
    default_nbeta,
    estimate_llc,
    llc_settings_from_devinterp,
    llc_settings_to_devinterp,
)
from entropix.landscape.local_energy import LocalEnergy, is_normalization_param, local_energy
from entropix.landscape.local_entropy import (
    LocalEntropyGradient,
    LocalEntropyValue,
    estimate_local_entropy,
    estimate_local_entropy_gradient,
)
from entropix.landscape.noise import (
    NoiseSpectrum,
    gradient_diversity,
    minibatch_gradient_covariance,
    noise_covariance,
    noise_spectrum,
    per_example_gradients,
    sgd_temperature,
)
from entropix.landscape.plots import plot_density, plot_eigenvalue_histogram, plot_local_energy
from entropix.landscape.potential import (
    AngularMomentum,
    IterateCovariance,
    LinearizedPotential,
    PotentialMismatch,
    ProjectedLinearization,
    angular_momentum,
    iterate_covariance,
    linearized_potential,
    lyapunov_covariance,
    potential_mismatch,
    projected_linearization,
    sgd_stationary_covariance,
)
from entropix.landscape.spectrum import (
    SpectrumSummary,
    hessian_matrix,
    hessian_spectrum,
    spectrum_summary,
)
from entropix.landscape.trace import TraceEstimate, hessian_trace, hutchinson_trace
from entropix.landscape.trajectory import (
    Autocorrelation,
    GradientNorms,
    TrajectorySpectrum,
    autocorrelation,
    full_gradient_norms,
    increment_spectrum,
    snapshot_matrix,
)

__all__ = [
    "AngularMomentum",
    "Autocorrelation",
    "BatchList",
    "DevinterpSettings",
    "GradientNorms",
    "IterateCovariance",
    "LLCEstimate",
    "LLCSettings",
    "LLCWarning",
    "LanczosResult",
    "LinearOperator",
    "LinearizedPotential",
    "LocalEnergy",
    "LocalEntropyGradient",
    "LocalEntropyValue",
    "NoiseSpectrum",
    "PotentialMismatch",
    "ProjectedLinearization",
    "SpectralDensity",
    "SpectrumSummary",
    "StackedBatches",
    "TraceEstimate",
    "TrajectorySpectrum",
    "Tridiagonal",
    "adam_fisher_diagonal",
    "angular_momentum",
    "autocorrelation",
    "batch_hvp",
    "batch_mean",
    "broadened_density",
    "default_nbeta",
    "density_moments",
    "empirical_fisher_diagonal",
    "estimate_llc",
    "estimate_local_entropy",
    "estimate_local_entropy_gradient",
    "find_adam_state",
    "full_gradient_norms",
    "full_loss_and_grad",
    "gradient_diversity",
    "hessian_density",
    "hessian_eigenvalues",
    "hessian_matrix",
    "hessian_operator",
    "hessian_spectrum",
    "hessian_trace",
    "hessian_vector_product",
    "hutchinson_trace",
    "increment_spectrum",
    "is_normalization_param",
    "iterate_covariance",
    "lanczos_eigenvalues",
    "lanczos_tridiagonal",
    "linearized_potential",
    "llc_settings_from_devinterp",
    "llc_settings_to_devinterp",
    "local_energy",
    "lyapunov_covariance",
    "minibatch_gradient_covariance",
    "noise_covariance",
    "noise_spectrum",
    "per_example_gradients",
    "plot_density",
    "plot_eigenvalue_histogram",
    "plot_local_energy",
    "potential_mismatch",
    "prepare_batches",
    "projected_linearization",
    "sgd_stationary_covariance",
    "sgd_temperature",
    "slq_density",
    "snapshot_matrix",
    "spectrum_summary",
    "stack_batches",
    "tridiagonal_eigh",
]
