"""The MicroVM lifecycle: state machine driving, timers, hooks, logs and recovery at start."""

from .service import MicrovmService

__all__ = ["MicrovmService"]
