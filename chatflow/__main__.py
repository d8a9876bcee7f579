"""`python -m chatflow`: the same as the `chatflow` command."""

from chatflow.runtime.cli import main

if __name__ == "__main__":
    main()
