"""Flax (Linen) networks of the papers' benchmarks, their losses and metrics.

Importing this subpackage imports Flax; the core ``entropix`` package does not.

Every model is a ``flax.linen.Module`` called as ``model.apply(variables, x, train=...)``:
``train=True`` enables dropout (pass ``rngs={"dropout": key}``) and batch statistics in
BatchNorm (pass ``mutable=["batch_stats"]``); ``train=False`` is deterministic and uses the
running averages.
"""

from entropix.models.batch_norm import recompute_batch_stats
from entropix.models.committee import CommitteeMachine
from entropix.models.convnets import (
    AllCNN,
    Conv1DNet,
    LeNet,
    allcnn,
    lenet,
    lenet_ch2,
    mnist1d_cnn,
    small_allcnn,
    small_lenet,
    small_lenet_ch6,
)
from entropix.models.losses import (
    accuracy,
    committee_error,
    committee_logistic_loss,
    cross_entropy_loss,
    error_rate,
    l2_penalty,
    make_loss_fn,
    make_metrics_fn,
    make_stateful_loss_fn,
    perplexity,
    unpack_batch,
)
from entropix.models.lstm import (
    LSTMLanguageModel,
    LSTMLayer,
    char_lstm,
    char_lstm_hessian,
    ptb_lstm,
)
from entropix.models.mlp import MLP, deep_mnistfc, mnistfc, small_fc, small_mnistfc, tiny_fc
from entropix.models.registry import (
    MODEL_NAMES,
    count_params,
    example_input,
    get_model,
    get_model_factory,
    init_shapes,
    param_count,
)
from entropix.models.train_state import apply_gradients
from entropix.models.wrn import WideBasicBlock, WideResNet, wrn_16_4, wrn_28_10

__all__ = [
    "MLP",
    "MODEL_NAMES",
    "AllCNN",
    "CommitteeMachine",
    "Conv1DNet",
    "LSTMLanguageModel",
    "LSTMLayer",
    "LeNet",
    "WideBasicBlock",
    "WideResNet",
    "accuracy",
    "allcnn",
    "apply_gradients",
    "char_lstm",
    "char_lstm_hessian",
    "committee_error",
    "committee_logistic_loss",
    "count_params",
    "cross_entropy_loss",
    "deep_mnistfc",
    "error_rate",
    "example_input",
    "get_model",
    "get_model_factory",
    "init_shapes",
    "l2_penalty",
    "lenet",
    "lenet_ch2",
    "make_loss_fn",
    "make_metrics_fn",
    "make_stateful_loss_fn",
    "mnist1d_cnn",
    "mnistfc",
    "param_count",
    "perplexity",
    "ptb_lstm",
    "recompute_batch_stats",
    "small_allcnn",
    "small_fc",
    "small_lenet",
    "small_lenet_ch6",
    "small_mnistfc",
    "tiny_fc",
    "unpack_batch",
    "wrn_16_4",
    "wrn_28_10",
]
