"""Runtime: settings, the one wiring of the running parts, the CLI, the dev stack and processes."""
