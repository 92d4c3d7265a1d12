"""``python -m entropix`` runs the experiment CLI."""

import sys

from entropix.experiments.cli import main

sys.exit(main())
