"""ICLR'17 Table 1: Entropy-SGD vs the paper's baselines — one row per model.

Choose the row with ``--config configs/iclr17_table1.py:ROW``, ROW ∈ {mnistfc, lenet, allcnn,
ptb, charlstm}.

Data: MNIST rows — IDX files (``--config.data_dir=DIR`` with ``train-images-idx3-ubyte[.gz]``
…) or tfds ``mnist`` prepared with internet, scaled to [−1, 1]; allcnn — tfds ``cifar10``,
global contrast normalization + ZCA, no augmentation; ptb — Mikolov's preprocessed Penn
Treebank, ``--config.data_dir=DIR`` with ``ptb.{train,valid,test}.txt``; charlstm — War and
Peace as one UTF-8 file, ``--config.dataset_kwargs.path=FILE`` (80/10/10 contiguous split).
Published (test error %, or test perplexity, @ effective epochs):

| row | Entropy-SGD | baseline |
|---|---|---|
| mnistfc | 1.37 ± 0.03 @ 120 | Adam 1.39 ± 0.03 @ 66 |
| lenet | 0.50 ± 0.01 @ 80 | Adam 0.51 ± 0.01 @ 100 |
| allcnn (All-CNN-BN) | 7.81 ± 0.09 @ 160 | SGD 7.71 ± 0.19 @ 180 |
| ptb (PTB-LSTM, test perplexity) | 77.656 ± 0.171 @ 25 | SGD 78.6 ± 0.26 @ 55 |
| charlstm (char-LSTM) | Entropy-Adam 1.217 ± 0.005 @ 25 | Adam 1.226 ± 0.01 @ 40 |

Entropy-SGD: L = 20, η' = 0.1, Nesterov 0.9 in both loops, scaled outer step η = 1; MNIST
ε = 10⁻³, γ = 10⁻⁴ ×1.001 per outer step, η ÷10 after the 2nd outer epoch, dropout 0.15
(mnistfc) / 0.25 (lenet) vs the baseline's 0.5; CIFAR ε = 10⁻⁴, γ = 0.03 ×1.001, η ÷5 every
4 outer epochs. Baselines: Adam η = 10⁻³ ÷5 every 30 epochs (MNIST); SGD + Nesterov η = 0.1
÷5 every 60 epochs, 200 epochs (CIFAR).

Language models (BPTT windows with the LSTM state carried across them, ``seq_len``):
PTB-LSTM is Zaremba et al.'s large model (2 × 1500, dropout 0.65, batch 20, 35 steps);
Entropy-SGD L = 5, η' = 1, momentum 0.5, ε = 10⁻⁴, γ = 10⁻³ fixed, η = 1 ÷10 every outer
epoch after the 3rd; baseline SGD without momentum, η = 1 ÷1.15 per epoch after the 14th, 55
epochs, gradients clipped to norm 10 (Zaremba; the clip is assumed for Entropy-SGD too). The
test perplexity is evaluated with one stream (Zaremba's test batch of 1). char-LSTM (2 × 128,
unrolled 50 steps, batch 50 as in Karpathy's char-rnn): Entropy-Adam L = 5, η = 0.01 ÷2 every
outer epoch, β₁ = 0.5, γ = 0.01 fixed (η' and ε not stated: 0.01 and 10⁻⁴ here); baseline
Adam η = 0.002 ÷2 every 5 epochs; gradients clipped to norm 5 (char-rnn's default). The
char-LSTM "perplexities" are on the scale of the per-character cross-entropy in nats (a
perplexity of 1.2 would be 0.26 bits per character); compare them with ``test_loss``.
"""

from entropix.experiments.config_base import experiment

ROWS = {
    "mnistfc": dict(dataset="mnist", budget=120, esgd_dropout=0.15, baseline="adam"),
    "lenet": dict(dataset="mnist", budget=100, esgd_dropout=0.25, baseline="adam"),
    "allcnn": dict(dataset="cifar10", budget=200, esgd_dropout=None, baseline="sgd"),
}
LANGUAGE_ROWS = ("ptb", "charlstm")
ALL_ROWS = (*ROWS, *LANGUAGE_ROWS)


def get_config(row="mnistfc"):
    if row in LANGUAGE_ROWS:
        return ptb_config() if row == "ptb" else charlstm_config()
    if row not in ROWS:
        raise ValueError(f"unknown row {row!r}; valid: {', '.join(ALL_ROWS)}.")
    r = ROWS[row]
    mnist = r["dataset"] == "mnist"
    entropy_sgd = dict(
        name="entropy_sgd",
        label="Entropy-SGD",
        learning_rate=1.0,
        num_inner_steps=20,
        sgld_learning_rate=0.1,
        noise=1e-3 if mnist else 1e-4,
        momentum=0.9,
        inner_momentum=0.9,
        coupling=dict(
            schedule="exponential", initial_coupling=1e-4 if mnist else 0.03, growth_rate=1e-3
        ),
        lr_drops=[40] if mnist else [80, 160],
        lr_factor=0.1 if mnist else 0.2,
    )
    if r["esgd_dropout"] is not None:
        entropy_sgd["model_kwargs"] = dict(dropout=r["esgd_dropout"])
    if r["baseline"] == "adam":
        baseline = dict(
            name="adam",
            label="Adam",
            learning_rate=1e-3,
            lr_drops=[30, 60, 90],
            lr_factor=0.2,
            model_kwargs=dict(dropout=0.5),
        )
    else:
        baseline = dict(
            name="sgd",
            label="SGD",
            learning_rate=0.1,
            momentum=0.9,
            lr_drops=[60, 120, 180],
            lr_factor=0.2,
        )
    return experiment(
        f"iclr17_table1_{row}",
        dataset=r["dataset"],
        model=row,
        budget_epochs=r["budget"],
        optimizers=[entropy_sgd, baseline],
    )


def ptb_config():
    entropy_sgd = dict(
        name="entropy_sgd",
        label="Entropy-SGD",
        learning_rate=1.0,
        num_inner_steps=5,
        sgld_learning_rate=1.0,
        noise=1e-4,
        momentum=0.5,
        inner_momentum=0.5,
        coupling=1e-3,
        lr_drops=[15, 20],
        lr_factor=0.1,
        clip_norm=10.0,
    )
    sgd = dict(
        name="sgd",
        label="SGD",
        learning_rate=1.0,
        momentum=0.0,
        lr_drops=list(range(14, 55)),
        lr_factor=1 / 1.15,
        clip_norm=10.0,
    )
    return experiment(
        "iclr17_table1_ptb",
        dataset="ptb",
        model="ptb-lstm",
        batch_size=20,
        seq_len=35,
        eval_batch_size=1,
        budget_epochs=55,
        eval_every_epochs=1.0,
        train_eval_examples=100_000,
        optimizers=[entropy_sgd, sgd],
    )


def charlstm_config():
    entropy_adam = dict(
        name="entropy_adam",
        label="Entropy-Adam",
        learning_rate=0.01,
        b1=0.5,
        num_inner_steps=5,
        sgld_learning_rate=0.01,
        noise=1e-4,
        coupling=0.01,
        lr_drops=[5, 10, 15, 20],
        lr_factor=0.5,
        clip_norm=5.0,
    )
    adam = dict(
        name="adam",
        label="Adam",
        learning_rate=2e-3,
        lr_drops=[5, 10, 15, 20, 25, 30, 35],
        lr_factor=0.5,
        clip_norm=5.0,
    )
    return experiment(
        "iclr17_table1_charlstm",
        dataset="text",
        dataset_kwargs={"path": ""},  # War and Peace: --config.dataset_kwargs.path=FILE
        model="char-lstm",
        batch_size=50,
        seq_len=50,
        budget_epochs=40,
        eval_every_epochs=1.0,
        train_eval_examples=100_000,
        optimizers=[entropy_adam, adam],
    )
