"""The top floor: one module per `fundguard` command (`add_arguments(parser)`, `run(args) -> int`).

Commands parse arguments, call the application steps of `pipelines.app` and print. Nothing imports them
except `pipelines.cli`.
"""
