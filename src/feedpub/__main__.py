"""``python -m feedpub``: the same as the ``feedpub`` command."""

from feedpub.cli import main

if __name__ == "__main__":
    main(prog_name="feedpub")
