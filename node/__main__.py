"""``python -m node`` runs the ``mosaik`` console script."""

from node.cli import main

main()
