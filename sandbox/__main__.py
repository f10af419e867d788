"""``python -m sandbox``: run the sandbox server (see ``--help``)."""

from sandbox.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
