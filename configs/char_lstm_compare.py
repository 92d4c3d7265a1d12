"""Fast CPU language-model comparison: char-LSTM on an offline corpus, Adam/SGD vs entropic.

Data: the license texts every Debian/Ubuntu system ships in ``/usr/share/common-licenses``
(package ``base-files``; ≈ 237k characters, 86 distinct, links skipped), read as one character
stream and split 80/10/10 contiguously; any other corpus via
``--config.dataset_kwargs.path=FILE_OR_DIR`` (and ``--config.dataset_kwargs.pattern=GLOB``).
Model: the ICLR'17 char-LSTM (2 × 128, one-hot characters), unrolled 50 steps, 32 parallel
streams, the LSTM state carried from window to window; gradients clipped to norm 5.
Budget: 10 effective epochs (passes over the training windows) per replica.

Expected (seed 0, measured on 2 CPU cores; 5.8 minutes for all five, `entropix compare
--config configs/char_lstm_compare.py`), test perplexity per character (lower is better) and
next-character error: SGD + Nesterov 6.17 (42.5%), Parle (n = 3) 6.81 (41.1%), Entropy-SGD
7.25 (46.2%), Adam 7.36 (45.8%), Entropy-Adam 8.39 (50.3%). Top Hessian eigenvalue of the
training loss: ≈ 34 (Adam), 4.3 (SGD), 2.7–3 (Entropy-SGD/Adam), 1.4 (Parle). The budget is
short: every method is still improving at 10 epochs.
"""

from entropix.experiments.config_base import experiment


def get_config():
    clip = dict(clip_norm=5.0)
    local = dict(num_inner_steps=5, coupling=0.01, noise=1e-4, lr_drops=[7.5], lr_factor=0.2)
    return experiment(
        "char_lstm_compare",
        dataset="text",
        dataset_kwargs={"path": "/usr/share/common-licenses", "pattern": "*"},
        model="char-lstm",
        batch_size=32,
        seq_len=50,
        budget_epochs=10,
        eval_every_epochs=1.0,
        train_eval_examples=20_000,
        diagnostics_examples=64,
        optimizers=[
            dict(
                name="adam", label="Adam", learning_rate=2e-3, lr_drops=[7.5], lr_factor=0.2, **clip
            ),
            dict(
                name="sgd",
                label="SGD (Nesterov)",
                learning_rate=0.5,
                momentum=0.9,
                lr_drops=[7.5],
                lr_factor=0.2,
                **clip,
            ),
            dict(
                name="entropy_adam",
                label="Entropy-Adam",
                learning_rate=0.01,
                b1=0.5,
                sgld_learning_rate=0.01,
                **local,
                **clip,
            ),
            dict(
                name="entropy_sgd",
                label="Entropy-SGD",
                learning_rate=1.0,
                sgld_learning_rate=0.5,
                momentum=0.5,
                **local,
                **clip,
            ),
            dict(
                name="parle",
                label="Parle (n=3)",
                learning_rate=1.0,
                sgld_learning_rate=0.5,
                elastic_coupling=0.1,
                num_replicas=3,
                **local,
                **clip,
            ),
        ],
    )
