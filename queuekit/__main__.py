"""`python -m queuekit`: the `queuekit` command."""

from .cli import main

main()
