"""``classpulse`` command line: parses, builds settings and calls one function per subcommand.

Heavy imports (TensorFlow for train/evaluate, aiortc for the bot) happen inside the handlers so
that ``classpulse --help`` is instant and the media commands never load TensorFlow.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from engine.settings_paths import datasets_dir


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit code 2."""


def _add_train(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train the CNN-LSTM (CNN on stills, then LSTM on sequences of its embeddings)",
        description="Train on one or more datasets (FER2013 CSV [+ FER+ votes beside it], JAFFE, CK+, "
        "class folders). Resumes from --run-dir when interrupted.",
    )
    parser.add_argument(
        "--data",
        action="append",
        default=None,
        help="dataset file or folder (repeatable); default: $CLASSPULSE_DATASETS/fer2013",
    )
    parser.add_argument(
        "--run-dir", type=Path, default=Path("runs/train"), help="checkpoints, history, curves"
    )
    parser.add_argument(
        "--output", type=Path, default=None, help="model file (default RUN_DIR/model.keras)"
    )
    parser.add_argument(
        "--epochs", type=int, default=100, help="maximum epochs per stage (default 100)"
    )
    parser.add_argument("--patience", type=int, default=8, help="early-stopping patience in epochs")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument(
        "--mapping", default=None, help="JSON emotion→state mapping (default: shipped)"
    )
    parser.set_defaults(handler=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from engine.training.pipeline import TrainingOptions, train_model

    data = tuple(args.data or [str(datasets_dir() / "fer2013")])
    train_model(
        TrainingOptions(
            data=data,
            run_dir=args.run_dir,
            output=args.output or args.run_dir / "model.keras",
            epochs=args.epochs,
            patience=args.patience,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            mapping=args.mapping,
            verbose=1 if sys.stdout.isatty() else 2,
        )
    )
    return 0


def _add_evaluate(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="accuracy, precision, recall, F1, confusion matrix and plots on any dataset",
        description="Evaluate a model on datasets; FER2013 is evaluated on its PublicTest split, "
        "datasets without a split on all of their faces.",
    )
    parser.add_argument(
        "--data",
        action="append",
        default=None,
        help="dataset file or folder (repeatable); default: FER2013 and JAFFE under $CLASSPULSE_DATASETS",
    )
    parser.add_argument(
        "--model", type=Path, default=None, help="model file (default: shipped weights)"
    )
    parser.add_argument(
        "--output", type=Path, default=Path("runs/evaluation"), help="report folder"
    )
    parser.add_argument(
        "--run-dir", type=Path, default=None, help="training run whose curves to include"
    )
    parser.add_argument(
        "--mapping", default=None, help="JSON emotion→state mapping (default: shipped)"
    )
    parser.set_defaults(handler=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    from engine.datasets import load_mapping, read_dataset
    from engine.evaluation import evaluate, markdown_table, write_report
    from engine.model import EmotionModel, default_weights_path

    paths = args.data or [str(datasets_dir() / "fer2013"), str(datasets_dir() / "jaffe")]
    model = EmotionModel.load(args.model)
    mapping = load_mapping(args.mapping)
    evaluations = []
    for path in paths:
        dataset = read_dataset(path)
        if "test" in set(dataset.splits):
            dataset = dataset.subset(dataset.splits == "test", f"{dataset.name} test split")
        evaluation = evaluate(model, dataset, mapping)
        print(markdown_table(evaluation), "\n", flush=True)
        evaluations.append(evaluation)
    report = write_report(
        evaluations, args.output, args.model or default_weights_path(), args.run_dir
    )
    print(f"report: {report}")
    return 0


def _subcommands() -> list[Callable[[argparse._SubParsersAction], None]]:
    """Every subcommand's ``add`` function; modules are imported here, none loads TensorFlow."""
    from bot.cli_demo import add_demo
    from bot.cli_join import add_join
    from bot.cli_serve import SERVE_SUBCOMMANDS
    from bot.cli_teacher import TEACHER_SUBCOMMANDS
    from engine.analyze import add_subcommand as add_analyze

    return [
        add_demo,
        add_join,
        *SERVE_SUBCOMMANDS,
        add_analyze,
        _add_train,
        _add_evaluate,
        *TEACHER_SUBCOMMANDS,
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="classpulse",
        description="Engagement assistant for online teaching: interested, bored, confused.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _subcommands():
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except (CommandError, ValueError, LookupError, OSError, RuntimeError) as error:
        # LookupError: unknown meeting/student ids; RuntimeError: the inference process failed.
        print(f"classpulse {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"classpulse {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
