"""Commands (floor 3): each exposes add_arguments(parser) and run(args) -> int."""
