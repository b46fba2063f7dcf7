"""`python -m rnnedge` runs the CLI."""

from rnnedge.cli import main

main()
