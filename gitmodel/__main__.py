"""`python -m gitmodel ...` runs the same command line as `git model ...`."""

from gitmodel.cli import main

main()
