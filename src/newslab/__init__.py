"""newslab: Transformer experiments on news-topic classification (AG News)."""

from .config import ABLATIONS, ConfigError, NewslabError, RunConfig
from .train import RunResult, evaluate_run, load_run, predict, train

__all__ = ["ABLATIONS", "ConfigError", "NewslabError", "RunConfig", "RunResult", "evaluate_run", "load_run",
           "predict", "train"]
__version__ = "0.1.0"
