"""GLDFN blind super-resolution network (Wen et al., IEEE TIP 2024) as the paper describes it."""
from gldfn_model.config import GLDFNConfig, get_config
from gldfn_model.network import GLDFN, build_model

__all__ = ["GLDFN", "GLDFNConfig", "build_model", "get_config"]
__version__ = "0.1.0"
