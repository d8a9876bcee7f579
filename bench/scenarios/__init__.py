"""One module per scenario; each `run(stack, sizes, ...)` prints as it goes and returns its figures."""
