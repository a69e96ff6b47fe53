"""newslab: Transformer experiments on news-topic classification (AG News)."""

from .config import ABLATIONS, RunConfig
from .errors import ConfigError, NewslabError
from .runs import RunResult, evaluate_run, load_run, predict
from .train import train

__all__ = [
    "ABLATIONS",
    "ConfigError",
    "NewslabError",
    "RunConfig",
    "RunResult",
    "evaluate_run",
    "load_run",
    "predict",
    "train",
]
__version__ = "0.2.0"
