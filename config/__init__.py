"""Stack configuration: read once, validated whole, handed on as frozen dataclasses."""

from config.loader import load
from config.schema import ConfigError
from config.types import Duration, Size
from config.secrets import Secrets
from config.settings import Settings

__all__ = ["ConfigError", "Duration", "Secrets", "Settings", "Size", "load"]
