"""The `newslab` command: parses flags and calls the Python API, nothing more."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from .allocator import reexec_with_tcmalloc
from .config import (
    ABLATIONS,
    BASELINE,
    FIELDS,
    TRAIN_PRESETS,
    RunConfig,
    data_dir_default,
    field_type,
    flag,
    load_config_file,
)
from .errors import ConfigError, NewslabError
from .runs import Terminated


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the message names the flag; --help has the rest. Every
    (sub)command takes --debug, which shows the traceback of a failure instead of its one line."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.add_argument(
            "--debug",
            action="store_true",
            default=argparse.SUPPRESS,
            help="on a failure, show the traceback (also NEWSLAB_DEBUG=1)",
        )

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    """argparse type of counts (workers, seeds, threads, seconds): an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def failure_line(exc: BaseException) -> str | None:
    """The one line for an expected failure (bad input, a file or disk fault, memory); None for a bug,
    which keeps its traceback."""
    if isinstance(exc, NewslabError):
        text = str(exc)
    elif isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        text = f"{where}{exc.strerror or exc}"
    elif isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError) and any(s in str(exc) for s in ("out of memory", "can't allocate memory"))
    ):
        text = (
            f"out of memory ({str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__}); "
            "try a smaller --batch-size, --embed-dim, --vocab-size or --max-len"
        )
    else:
        return None
    return " ".join(text.split())


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per RunConfig setting, help and default taken from the field itself; `--ablation`
    (repeatable) from the ablation registry."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", metavar="FILE", help="YAML or JSON file of the fields below; flags override it")
    source.add_argument(
        "--preset",
        choices=sorted(TRAIN_PRESETS),
        help="a named recipe (its YAML: newslab/presets/NAME.yaml); flags override it",
    )
    defaults = RunConfig()
    for name, (_, f) in FIELDS.items():
        typ = field_type(name)
        shown = f.metadata.get("shown", defaults[name])
        kwargs: dict[str, Any] = dict(
            dest=name, default=argparse.SUPPRESS, help=f"{f.metadata['help']} (default: {shown})"
        )
        if typ is bool:
            parser.add_argument(flag(name), action=argparse.BooleanOptionalAction, **kwargs)
        else:
            metavar = name.upper() if "choices" not in f.metadata else None
            parser.add_argument(flag(name), type=typ, choices=f.metadata.get("choices"), metavar=metavar, **kwargs)
    parser.add_argument(
        "--ablation",
        action="append",
        dest="ablation",
        default=argparse.SUPPRESS,
        choices=(BASELINE, *ABLATIONS),
        help="a named ablation; repeat to combine ablations that "
        "change different settings: "
        + "; ".join(f"{n} ({a.label})" for n, a in ABLATIONS.items())
        + " (default: none)",
    )


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The file's settings (with its own ablations, which must hold in it) under the flags'. Flag ablations
    add to the file's and override its other settings; a flag that contradicts an ablation is refused."""
    path = getattr(args, "config", None) or (TRAIN_PRESETS[args.preset] if getattr(args, "preset", None) else None)
    values = load_config_file(path) if path else {}
    source = f"--config {path}" if getattr(args, "config", None) else f"--preset {args.preset}" if path else "flags"
    flags = {k: v for k, v in vars(args).items() if k in FIELDS}
    base = RunConfig.create({**values, **flags}, source=source)
    names = dict.fromkeys([*base.ablation, *(getattr(args, "ablation", None) or [])])
    return RunConfig.create({**base.flat(), **flags, "ablation": list(names)}, source="flags", explicit=flags)


def cmd_train(args: argparse.Namespace) -> int:
    from .train import train

    result = train(config_from_args(args), overwrite=args.overwrite)
    return 0 if result.status == "completed" else 1


def cmd_pretrain(args: argparse.Namespace) -> int:
    from .config import PretrainConfig
    from .pretrain import pretrain

    config = config_from_args(args)
    settings = PretrainConfig(
        epochs=config.optim.pretrain_epochs,
        lr=args.pretrain_lr,
        batch_size=config.optim.batch_size,
        mask_prob=args.mask_prob,
        seed=config.optim.seed,
        text_files=tuple(args.text or ()),
    )
    name = args.name or f"pretrain-{config.model.embed_dim}x{config.model.num_layers}-{time.strftime('%Y%m%d-%H%M%S')}"
    if "/" in name or name in (".", ".."):
        raise ConfigError(f"--name {name!r} must be one folder name")
    folder = pretrain(config, settings, Path(config.execution.out_dir) / "pretrained" / name)
    print(f"fine-tune it: newslab train --init-from {folder}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .runs import RunFolder, evaluate_run

    result = evaluate_run(args.run_dir, csv_path=args.csv, data_dir=args.data_dir)
    folder = RunFolder(args.run_dir)
    payload = {
        "rows": len(result.predictions),
        "loss": result.loss,
        "accuracy": result.accuracy,
        "macro_f1": result.macro_f1,
    }
    if args.json:
        print(json.dumps(payload))
    else:
        print(
            f"{args.csv or 'test.csv'}: {payload['rows']} rows | Test loss: {result.loss:.4f}, "
            f"Acc: {100 * result.accuracy:.2f}% | macro-F1 {result.macro_f1:.4f}"
        )
        if args.csv is None and folder.final_file.is_file():
            recorded = folder.final().get("test_accuracy")
            if recorded is not None:
                same = "matches" if recorded == result.accuracy else "DIFFERS FROM"
                print(f"{same} the run's recorded test accuracy {100 * recorded:.2f}%")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from .runs import load_run, predict

    run = load_run(args.run_dir)
    probs = predict(run, args.text)
    for text, row in zip(args.text, probs.tolist()):
        best = max(range(len(row)), key=row.__getitem__)
        detail = ", ".join(f"{name} {p:.3f}" for name, p in zip(run.class_names, row))
        print(f"{run.class_names[best]}\t{detail}\t{text}")
    return 0


def _storage(args: argparse.Namespace, heartbeat: int = 30):
    from .study import default_storage, open_storage

    return open_storage(args.storage or default_storage(args.out_dir), heartbeat)


def cmd_study_run(args: argparse.Namespace) -> int:
    from .study import format_results, load_spec, run_study

    spec = load_spec(args.spec, seeds=args.seeds)
    with data_dir_default(args.data_dir):  # trials whose spec names no data folder, worker processes too
        result = run_study(
            spec,
            workers=args.workers,
            storage_url=args.storage,
            out_dir=args.out_dir,
            new_name=args.new_name,
            threads=args.threads,
            heartbeat_interval=args.heartbeat,
        )
    print(format_results(result))
    return 0 if result.counts()["complete"] else 1


def cmd_study_worker(args: argparse.Namespace) -> int:
    from .study import run_worker

    with data_dir_default(args.data_dir):
        run_worker(
            args.name,
            _storage(args, args.heartbeat),
            args.out_dir,
            args.threads,
            log=lambda msg: print(msg, file=sys.stderr, flush=True),
        )
    return 0


def cmd_study_status(args: argparse.Namespace) -> int:
    from .study import status_line, study_results

    print(status_line(study_results(args.name, _storage(args))))
    return 0


def cmd_study_results(args: argparse.Namespace) -> int:
    from .study import format_results, study_results

    print(format_results(study_results(args.name, _storage(args)), args.format, args.show_test))
    return 0


def add_study_commands(sub) -> None:
    study = sub.add_parser("study", help="grid and ablation studies on Optuna storage").add_subparsers(
        dest="study_command", required=True, metavar="COMMAND", parser_class=Parser
    )

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--storage",
            metavar="URL",
            help="Optuna RDB URL, e.g. postgresql+psycopg://user:pw@host/db "
            "(default: $NEWSLAB_STORAGE, else sqlite:///OUT_DIR/studies.db)",
        )
        p.add_argument("--out-dir", default="outputs", metavar="DIR", help="output root (default: outputs)")

    def data(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--data-dir",
            metavar="DIR",
            help="the data folder of trials whose spec fixes none (default: $NEWSLAB_DATA_DIR, else data/ag_news)",
        )

    p = study.add_parser("run", help="create or resume a study and run it to the end")
    data(p)
    p.add_argument(
        "spec",
        metavar="SPEC",
        help="a YAML/JSON spec file or a preset: seed-grid, seed-ablations, quick-grid, quick-ablations",
    )
    common(p)
    p.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="local worker processes; cores are split between them (default: 1)",
    )
    p.add_argument("--seeds", type=positive_int, help="repeats per point (default: the spec's; 3 for presets)")
    p.add_argument("--new-name", metavar="NAME", help="run the spec as a new study of this name")
    p.add_argument("--threads", type=positive_int, help="torch threads per worker (default: cores / workers)")
    p.add_argument(
        "--heartbeat",
        type=positive_int,
        default=30,
        metavar="SECONDS",
        help="trial heartbeat; a trial silent for 4 beats is failed and retried (default: 30)",
    )
    p.set_defaults(func=cmd_study_run, trains=True)

    p = study.add_parser("worker", help="join a study (on this or another machine) and run waiting trials")
    data(p)
    p.add_argument("name", metavar="NAME")
    common(p)
    p.add_argument("--threads", type=positive_int, help="torch threads (default: all cores)")
    p.add_argument(
        "--heartbeat", type=positive_int, default=30, metavar="SECONDS", help="trial heartbeat (default: 30)"
    )
    p.set_defaults(func=cmd_study_worker, trains=True)

    p = study.add_parser("status", help="counts of complete / running / failed / waiting trials, time left")
    p.add_argument("name", metavar="NAME")
    common(p)
    p.set_defaults(func=cmd_study_status)

    p = study.add_parser(
        "results", help="one row per point: selection and confirmation accuracy over seeds, best first"
    )
    p.add_argument("name", metavar="NAME")
    common(p)
    p.add_argument("--format", choices=("table", "csv", "markdown", "json"), default="table")
    p.add_argument(
        "--show-test",
        action="store_true",
        help="unseal the test accuracy of every point (labelled so; by default only the selected point's is shown)",
    )
    p.set_defaults(func=cmd_study_results)


def add_report_commands(sub) -> None:
    """`newslab report` and `newslab manual` (the analysis and the whole handbook)."""

    def cmd_report(args: argparse.Namespace) -> int:
        from .report import build_report
        from .report.attention import SampleChoice

        files = build_report(
            args.studies,
            storage_url=args.storage,
            out_dir=args.out_dir,
            report_dir=args.report_dir,
            lang=args.lang,
            data_dir=args.data_dir,
            sample=SampleChoice(args.attention_sample, args.attention_class),
        )
        notes = [
            c.text for c in files.claims if (c.topic == "caveat" and c.verdict == "untested") or c.topic == "warning"
        ]
        for text in notes:  # the report says it too; a script reading stderr learns it here
            print(f"newslab: note: {text}", file=sys.stderr)
        return 0

    def cmd_manual(args: argparse.Namespace) -> int:
        from .manual import run_manual
        from .report.attention import SampleChoice

        outcome = run_manual(
            args.preset,
            out_dir=args.out_dir,
            storage_url=args.storage,
            data_dir=args.data_dir,
            lang=args.lang,
            workers=args.workers,
            threads=args.threads,
            sample=SampleChoice(args.attention_sample, args.attention_class),
            chapters=args.chapter,
        )
        return 1 if outcome.failed else 0

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--out-dir",
            default="outputs",
            metavar="DIR",
            help="output root: storage, runs, and the report in OUT_DIR/report (default: outputs)",
        )
        p.add_argument(
            "--storage",
            metavar="URL",
            help="Optuna RDB URL (default: $NEWSLAB_STORAGE, else sqlite:///OUT_DIR/studies.db)",
        )
        p.add_argument("--lang", choices=("en", "zh"), default="en", help="report language (default: en)")
        p.add_argument(
            "--data-dir",
            metavar="DIR",
            help="the data folder, when not the one recorded in the runs "
            "(default: $NEWSLAB_DATA_DIR, else data/ag_news)",
        )
        sample = p.add_mutually_exclusive_group()
        sample.add_argument(
            "--attention-sample",
            type=int,
            metavar="INDEX",
            help="the validation row the attention maps show (default: the first correctly classified row of "
            "a readable length with the fewest [UNK])",
        )
        sample.add_argument(
            "--attention-class",
            metavar="NAME",
            help="show the first such row of this true class instead (a name from the data's classes.txt)",
        )

    p = sub.add_parser("report", help="tables, plots, attention maps and conclusions of finished studies")
    p.add_argument("studies", nargs="+", metavar="STUDY", help="study names, e.g. quick-grid quick-ablations")
    common(p)
    p.add_argument(
        "--report-dir", metavar="DIR", help="where report.md, report.html and figures/ go (default: OUT_DIR/report)"
    )
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("manual", help="the whole handbook: baseline, grid, ablations, attention, report (resumable)")
    p.add_argument(
        "--preset",
        choices=("quick", "seed", "full"),
        default="quick",
        help="quick: minutes on a laptop CPU; seed: the original manual's settings; full: 5 seeds, "
        "10 epochs (default: quick)",
    )
    common(p)
    p.add_argument("--workers", type=positive_int, help="parallel study workers (default: 2 for quick, else 1)")
    p.add_argument(
        "--threads", type=positive_int, help="torch threads per worker (default: 1 for quick, else cores / workers)"
    )
    p.add_argument(
        "--chapter",
        action="append",
        metavar="PRESET",
        help="add a chapter study after the ablations (repeatable): quick-pos-enc, quick-scale, quick-pretraining, "
        "quick-search to quick; pos-enc, scale, pretraining, search to seed (full runs all four)",
    )
    p.set_defaults(func=cmd_manual, trains=True)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="newslab", description="Transformer experiments on AG News-style data.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)

    p = sub.add_parser("train", help="train one model")
    add_config_flags(p)
    p.add_argument("--overwrite", action="store_true", help="replace the run folder of --run-name if it exists")
    p.set_defaults(func=cmd_train, trains=True)

    p = sub.add_parser(
        "pretrain",
        help="pretrain the encoder as a masked language model on the training texts (then: train --init-from)",
    )
    add_config_flags(p)
    p.add_argument("--name", help="folder name in OUT_DIR/pretrained (default: size and time stamp); rerun to resume")
    p.add_argument("--pretrain-lr", type=float, default=1e-3, metavar="LR", help="peak lr (default: 1e-3)")
    p.add_argument("--mask-prob", type=float, default=0.15, help="share of tokens to predict (default: 0.15)")
    p.add_argument("--text", action="append", metavar="FILE", help="extra unlabelled text, one per line (repeatable)")
    p.set_defaults(func=cmd_pretrain, trains=True)

    p = sub.add_parser("evaluate", help="re-evaluate a run's best checkpoint on its test set or any CSV")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--csv", metavar="FILE", help="CSV in the AG News format (default: the run's test.csv)")
    p.add_argument("--data-dir", metavar="DIR", help="folder holding test.csv (default: the run's data folder)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="classify headlines with a run's best checkpoint")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("text", nargs="+", metavar="TEXT")
    p.set_defaults(func=cmd_predict)

    add_study_commands(sub)
    add_report_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False) or os.environ.get("NEWSLAB_DEBUG") == "1"
    if argv is None and getattr(args, "trains", False):  # a command-line process that trains models
        reexec_with_tcmalloc(sys.argv[1:])
    try:
        return args.func(args)
    except Terminated:
        print("newslab: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("newslab: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        line = failure_line(exc)
        if line is None or debug:
            raise
        print(f"newslab: error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
