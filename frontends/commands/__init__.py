"""One module per `launch.py` subcommand: `add_arguments(parser)` and `run(args)`."""
