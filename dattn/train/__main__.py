"""``python -m dattn.train``: see ``dattn.train.cli``."""

from .cli import main

main()
