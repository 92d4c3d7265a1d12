"""Text corpora for the language models: character corpora and word-level PTB, from local files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from entropix.data.dataset import Dataset, DatasetNotFoundError, how_to_get

PTB_FILES = ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt")
EOS = "<eos>"


def build_vocab(*token_streams: Sequence[str]) -> tuple[str, ...]:
    """Sorted vocabulary of all tokens in the given streams (strings count as character streams).

    Args:
      *token_streams: texts or lists of tokens.

    Returns:
      The id → token table.

    Examples:
      >>> build_vocab("abca", "d")
      ('a', 'b', 'c', 'd')
    """
    tokens: set[str] = set()
    for stream in token_streams:
        tokens.update(stream)
    return tuple(sorted(tokens))


def encode(tokens: Sequence[str], vocab: Sequence[str]) -> np.ndarray:
    """Maps tokens to ids of ``vocab``.

    Args:
      tokens: a text (characters) or a list of words.
      vocab: the id → token table.

    Returns:
      int32 ids.

    Raises:
      ValueError: a token is not in the vocabulary (named in the message).

    Examples:
      >>> encode("cab", ("a", "b", "c")).tolist()
      [2, 0, 1]
    """
    index = {t: i for i, t in enumerate(vocab)}
    try:
        return np.fromiter((index[t] for t in tokens), np.int32, count=len(tokens))
    except KeyError as e:
        raise ValueError(
            f"token {e.args[0]!r} is not in the vocabulary of {len(vocab)} tokens."
        ) from None


def _stream_dataset(name: str, splits: Sequence[np.ndarray], vocab: tuple[str, ...]) -> Dataset:
    # Next-token pairs: x[t] predicts y[t] = ids[t + 1].
    train, valid, test = (np.asarray(s, np.int32) for s in splits)
    return Dataset(
        name=name,
        x_train=train[:-1],
        y_train=train[1:],
        x_test=test[:-1],
        y_test=test[1:],
        num_classes=len(vocab),
        x_valid=valid[:-1],
        y_valid=valid[1:],
        vocab=vocab,
    )


def char_dataset(
    text: str, name: str = "text", fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> Dataset:
    """A character corpus split contiguously into train/valid/test (Karpathy et al.: 80/10/10).

    The vocabulary is built from the whole text, so every split is encodable.

    Args:
      text: the corpus.
      name: dataset name.
      fractions: train, validation and test fractions (summing to 1).

    Returns:
      A text ``Dataset`` (``x`` = ids, ``y`` = next ids, ``num_classes`` = vocabulary size).

    Examples:
      >>> ds = char_dataset("abcabcabcabcabcabcabcabcabcabc")
      >>> ds.num_classes, ds.vocab, ds.x_train[:4].tolist(), ds.y_train[:4].tolist()
      (3, ('a', 'b', 'c'), [0, 1, 2, 0], [1, 2, 0, 1])
    """
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) <= 0:
        raise ValueError(f"fractions={fractions} must be three positive numbers summing to 1.")
    vocab = build_vocab(text)
    ids = encode(text, vocab)
    n_train = int(fractions[0] * len(ids))
    n_valid = int(fractions[1] * len(ids))
    if min(n_train, n_valid, len(ids) - n_train - n_valid) < 2:
        raise ValueError(f"text of {len(ids)} characters is too short to split as {fractions}.")
    splits = (ids[:n_train], ids[n_train : n_train + n_valid], ids[n_train + n_valid :])
    return _stream_dataset(name, splits, vocab)


def load_text_corpus(
    path: str | Path,
    name: str = "text",
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    pattern: str = "*.txt",
) -> Dataset:
    """Loads a character corpus from a UTF-8 file, or the files of a directory matching ``pattern``.

    Files are read in sorted order; links to a file already read are skipped (Debian's
    ``/usr/share/common-licenses`` links ``GPL`` to ``GPL-3``, for example).

    Args:
      path: file or directory (e.g. War and Peace for char-LSTM).
      name: dataset name.
      fractions: contiguous train/valid/test split.
      pattern: glob of the files to read in a directory (``"*"`` for every file).

    Returns:
      A text ``Dataset``.

    Raises:
      DatasetNotFoundError: nothing to read at ``path``.

    Examples:
      >>> import tempfile
      >>> p = Path(tempfile.mkdtemp()) / "corpus.txt"
      >>> _ = p.write_text("hello world " * 10)
      >>> load_text_corpus(p).num_classes
      8
    """
    path = Path(path)
    if path.is_dir():
        files, seen = [], set()
        for file in sorted(path.glob(pattern)):
            real = file.resolve()
            if file.is_file() and real not in seen:
                seen.add(real)
                files.append(file)
    else:
        files = [path] if path.is_file() else []
    if not files:
        raise DatasetNotFoundError(f"{name}: no text at {path}. " + how_to_get("text"))
    text = "".join(f.read_text(encoding="utf-8") for f in files)
    return char_dataset(text, name=name, fractions=fractions)


def _ptb_words(path: Path) -> list[str]:
    # Zaremba et al.: every line ends with an end-of-sentence token.
    words: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        words.extend(line.split())
        words.append(EOS)
    return words


def load_ptb(data_dir: str | Path) -> Dataset:
    """Word-level Penn Treebank (Mikolov's preprocessed version) from a local directory.

    Reads ``ptb.train.txt``, ``ptb.valid.txt``, ``ptb.test.txt`` (≈929k / 73k / 82k words,
    10,000-word vocabulary including ``<unk>`` and ``<eos>``), appending ``<eos>`` per line.
    The vocabulary comes from the training split, as usual.

    Args:
      data_dir: the directory (``simple-examples/data`` of Mikolov's archive).

    Returns:
      A text ``Dataset`` with validation split.

    Raises:
      DatasetNotFoundError: a file is missing.
      ValueError: the validation or test split has a word the training split lacks.

    Examples:
      >>> import tempfile
      >>> d = Path(tempfile.mkdtemp())
      >>> for f in PTB_FILES:
      ...     _ = (d / f).write_text("the cat <unk>\\nthe dog\\n")
      >>> ds = load_ptb(d)
      >>> ds.vocab, ds.x_train.tolist()
      (('<eos>', '<unk>', 'cat', 'dog', 'the'), [4, 2, 1, 0, 4, 3])
    """
    data_dir = Path(data_dir)
    missing = [f for f in PTB_FILES if not (data_dir / f).is_file()]
    if missing:
        raise DatasetNotFoundError(f"ptb: {missing} not found in {data_dir}. " + how_to_get("ptb"))
    train, valid, test = (_ptb_words(data_dir / f) for f in PTB_FILES)
    vocab = build_vocab(train)
    return _stream_dataset("ptb", [encode(s, vocab) for s in (train, valid, test)], vocab)
