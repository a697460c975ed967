"""``python -m bench`` (and ``torchrun -m bench train ...``) runs the CLI."""

from .cli import main

main()
