"""``python -m sairbench`` is the ``sairbench`` command."""

from sairbench.cli import main

if __name__ == "__main__":
    main()
