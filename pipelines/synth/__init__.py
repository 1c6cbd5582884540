"""Sample-district generator: a deterministic landing drop with an answer key (`fundguard synth`)."""
from .generator import FAMILIES, KEY_COLUMNS, answer_key_path, generate

__all__ = ["FAMILIES", "KEY_COLUMNS", "answer_key_path", "generate"]
