"""``python -m strom``: the same program as the ``strom`` command (see :mod:`strom.cli`)."""

from strom.cli import main

if __name__ == "__main__":
    main(prog_name="strom")
