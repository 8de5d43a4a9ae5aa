"""``classpulse`` command line: parses, builds settings and calls one function per subcommand.

Heavy imports (TensorFlow for train/evaluate, aiortc for the bot) happen inside the handlers so
that ``classpulse --help`` is instant and the media commands never load TensorFlow.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from engine.quantized import add_encoder_argument
from engine.quiet_start import import_tensorflow
from engine.settings_paths import datasets_dir


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit code 2."""


def _add_train(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train the CNN-LSTM (CNN on stills, then LSTM on sequences of its embeddings)",
        description="Without --data: the shipped recipe (FER2013 + FER+, JAFFE and Taiwanese "
        "training subjects under $CLASSPULSE_DATASETS; validation carved out of the training rows "
        "and subjects; see engine/training/recipe.py). With --data: any datasets (FER2013 CSV "
        "[+ FER+ votes beside it], JAFFE, Taiwanese, CK+, class folders), validation carved out of "
        "their training rows. Resumes from --run-dir when interrupted.",
    )
    parser.add_argument(
        "--data",
        action="append",
        default=None,
        help="dataset file or folder (repeatable); default: the shipped recipe's datasets",
    )
    parser.add_argument(
        "--run-dir", type=Path, default=Path("runs/train"), help="checkpoints, history, curves"
    )
    parser.add_argument(
        "--output", type=Path, default=None, help="model file (default RUN_DIR/model.keras)"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="maximum epochs per stage (recipe: 40; --data: 100)",
    )
    parser.add_argument(
        "--patience", type=int, default=None, help="early-stopping patience (recipe: 6; --data: 8)"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument(
        "--mapping", default=None, help="JSON emotion→state mapping (default: shipped)"
    )
    parser.set_defaults(handler=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    import_tensorflow()  # before the training modules do: without the start-up chatter
    if not args.data:
        from engine.training.recipe import Recipe, train_recipe

        recipe = Recipe(
            epochs=args.epochs or Recipe.epochs,
            patience=args.patience or Recipe.patience,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
        )
        train_recipe(recipe, args.run_dir, datasets_dir(), args.output)
        return 0

    from engine.training.pipeline import TrainingOptions, train_model

    train_model(
        TrainingOptions(
            data=tuple(args.data),
            run_dir=args.run_dir,
            output=args.output or args.run_dir / "model.keras",
            epochs=args.epochs or 100,
            patience=args.patience or 8,
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
        description="Without --data: the held-out report of the shipped recipe's test sets (FER2013 "
        "PublicTest with FER and FER+ labels, JAFFE and Taiwanese test subjects through the live "
        "crop path, framing stability, operating point); `classpulse evaluate --output "
        "engine/weights/report` regenerates the shipped report. With --data: FER2013 on its test "
        "rows (PublicTest, PrivateTest), datasets without a split on all of their faces.",
    )
    parser.add_argument(
        "--data",
        action="append",
        default=None,
        help="dataset file or folder (repeatable); default: the recipe's held-out test sets",
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
    add_encoder_argument(parser)
    parser.set_defaults(handler=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    import_tensorflow()  # before engine.model does: without the start-up chatter

    from engine.datasets import load_mapping, read_dataset
    from engine.evaluation import evaluate, markdown_table, write_report
    from engine.model import EmotionModel, default_weights_path
    from engine.quantized import encoder_kind_for

    model = EmotionModel.load(args.model, encoder_kind_for(args.encoder))
    mapping = load_mapping(args.mapping)
    if not args.data:
        from engine.training.corpus import load_corpus
        from engine.training.report import heldout_report

        corpus = load_corpus(datasets_dir())
        figures = heldout_report(
            model, args.model or default_weights_path(), corpus, mapping, args.output
        )
        sets = figures["sets"]
        assert isinstance(sets, dict)
        for name, row in sets.items():
            print(
                f"{name}: macro-F1 {row['macro_f1']:.3f}, confused recall {row['recall_confused']:.2f}"
            )
        print(f"framing stability {figures['framing_stability']:.3f}")
        print(f"report: {args.output / 'report.md'}")
        return 0
    evaluations = []
    for path in args.data:
        dataset = read_dataset(path)
        held_out = np.isin(dataset.splits, ["test", "private"])
        if held_out.any():
            dataset = dataset.subset(
                held_out, f"{dataset.name} test rows (PublicTest, PrivateTest)"
            )
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
    from bot.cli.analyze import add_subcommand as add_analyze
    from bot.cli.demo import add_demo
    from bot.cli.join import add_join
    from bot.cli.report import add_report
    from bot.cli.serve import SERVE_SUBCOMMANDS
    from bot.cli.teacher import TEACHER_SUBCOMMANDS

    return [
        add_demo,
        add_join,
        *SERVE_SUBCOMMANDS,
        add_analyze,
        _add_train,
        _add_evaluate,
        *TEACHER_SUBCOMMANDS,
        add_report,
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
        code = int(args.handler(args))
        sys.stdout.flush()  # here, not at exit: a closed pipe is handled below
        return code
    except BrokenPipeError:
        # The reader went away (`classpulse history | head`): as quiet as a command killed by
        # SIGPIPE, with its exit status. stdout goes to /dev/null so that the interpreter's
        # last flush finds nothing to complain about.
        with contextlib.suppress(OSError, ValueError):  # ValueError: stdout is not a file
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except (CommandError, ValueError, LookupError, OSError, RuntimeError) as error:
        # LookupError: unknown meeting/student ids; RuntimeError: the inference process failed.
        print(f"classpulse {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"classpulse {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
