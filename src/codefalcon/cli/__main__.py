"""`python -m codefalcon.cli` is the `codefalcon` command."""

from codefalcon.cli import main

main()
