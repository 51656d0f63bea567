from placer.targets.target import BUILTIN_TARGETS, Target, load_target

__all__ = ["BUILTIN_TARGETS", "Target", "load_target"]
