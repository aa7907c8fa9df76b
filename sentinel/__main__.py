"""`python -m sentinel`: the same CLI as the `sentinel` script."""

from sentinel.cli.main import main

main()
