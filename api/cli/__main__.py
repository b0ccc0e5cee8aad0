"""`python -m api.cli`: the `bedside` command."""

from api.cli import main

main()
