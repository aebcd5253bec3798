"""The surrogate wrapper, its parts, and its call modes (see docs/architecture.md)."""

from phasm.errors import ModelNotLoaded
from phasm.surrogate.mode import ENV_VAR, Mode, mode_from_env, parse_mode
from phasm.surrogate.stats import SurrogateStats
from phasm.surrogate.wrapper import Surrogate, surrogate

__all__ = ["ENV_VAR", "Mode", "ModelNotLoaded", "Surrogate", "SurrogateStats", "mode_from_env", "parse_mode", "surrogate"]
