"""The run folder: its layout, its status life cycle, and what a finished run is good for
(loading it, evaluating it, predicting with it). Every other module reads and writes runs here:
`folder.py` (layout and readers), `recorder.py` (the one writer), `inference.py` (a finished run).

    OUT_DIR/runs/<name>/
      config.json        the RunConfig (its four parts and the ablations)
      final.json         status and summary: created -> running -> completed | failed | interrupted
      metrics.csv        one row per epoch
      model.safetensors  the weights of the best validation epoch, or of --stop-epoch (no pickle: loading runs no code)
      checkpoint.json    beside the weights: the model config, vocabulary size, classes, epoch, metrics
      tokenizer.json     the tokenizer the weights were trained with
      predictions.json   validation and test predictions of the kept checkpoint, with the labels

The status is written on every exit of `RunRecorder`: a finished loop, a diverged loss, an
exception, Ctrl-C and SIGTERM (which is turned into `Terminated`, a KeyboardInterrupt).
Run folders of newslab 0.1 (a pickled best.pt) are loaded with torch's weights-only unpickler.
"""

from .folder import FINAL_STATUSES, METRIC_COLUMNS, RunFolder, RunResult, finished_result, run_path
from .inference import EvalResult, LoadedRun, evaluate, evaluate_run, evaluate_texts, load_run, predict, select_device
from .recorder import RunRecorder, Terminated

__all__ = [
    "FINAL_STATUSES",
    "METRIC_COLUMNS",
    "EvalResult",
    "LoadedRun",
    "RunFolder",
    "RunRecorder",
    "RunResult",
    "Terminated",
    "evaluate",
    "evaluate_run",
    "evaluate_texts",
    "finished_result",
    "load_run",
    "predict",
    "run_path",
    "select_device",
]
