"""``python -m cercle.cli``: the same as the ``cercle`` command."""

from cercle.cli import main

main()
