"""The `meshlab` subcommands other than `run`, one module per family; `meshlab.cli` adds them
to its group."""
