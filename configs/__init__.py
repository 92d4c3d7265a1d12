"""Experiment configs of ``entropix train|compare`` (installed as the package ``entropix.configs``).

Each module has a ``get_config()`` returning an ``ml_collections.ConfigDict``; pass its name to
the CLI: ``entropix compare --config mnist1d_compare``, ``entropix train --config
iclr17_table1:ptb``.
"""
