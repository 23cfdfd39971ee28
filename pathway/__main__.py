"""``python -m pathway`` is the ``pathway`` command."""

import sys

from pathway.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
