"""``python -m host.cli``: the ``lab`` command without the console script."""

from host.cli.main import main

main()
