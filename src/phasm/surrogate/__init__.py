"""The surrogate wrapper and its call modes."""

from phasm.surrogate.mode import ENV_VAR, Mode, mode_from_env, parse_mode
from phasm.surrogate.stats import SurrogateStats
from phasm.surrogate.wrapper import ModelNotLoaded, Surrogate, surrogate

__all__ = ["ENV_VAR", "Mode", "ModelNotLoaded", "Surrogate", "SurrogateStats", "mode_from_env", "parse_mode", "surrogate"]
