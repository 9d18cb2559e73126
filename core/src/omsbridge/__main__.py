"""``python -m omsbridge``: the same as the ``omsbridge`` command."""

from omsbridge.cli import main

if __name__ == "__main__":
    main()
