"""`python -m photocluster` runs the CLI."""

from photocluster.cli import main

main()
