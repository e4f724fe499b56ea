"""The ``refusal-atlas`` command line: every command, registered here in one place.

Every stage command runs the stages it needs in one run folder and skips what is already
done, so ``refusal-atlas directions`` after ``refusal-atlas label`` only does the rest.
"""

from __future__ import annotations

import click
import typer
from rich.text import Text

from ..allocator import keep_freed_memory
from ..errors import UserError
from ..progress import console, print_error
from . import compare, export, run, sae, sweeps
from .run import Interrupted

app = typer.Typer(
    name="refusal-atlas",
    help=(
        "Map how a chat model refuses: per-category refusal directions, their geometry, "
        "steering/ablation trade-offs, SAE latents and one report.\n\n"
        "Start with `refusal-atlas run` (the default model and built-in demo data), or "
        "`refusal-atlas directions --model M --data D --out RUN_DIR`."
    ),
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
sae_app = typer.Typer(
    name="sae", no_args_is_help=True,
    help="SAE analysis over a run folder: train (or load) an SAE, find the latents that carry "
         "refusal in each split (shared core, long tail), and steer with them.")

app.command("run")(run.run_command)
for _name, (_targets, _help) in run.STAGE_COMMANDS.items():
    app.command(_name)(run.stage_command(_targets, _help))
app.command("models")(run.models_command)
app.command("suites")(run.suites_command)
app.command("fetch-model")(run.fetch_model_command)
app.command("steer")(sweeps.steer_command)
app.command("ablate")(sweeps.ablate_command)
app.command("rejudge")(sweeps.rejudge_command)
app.command("compare")(compare.compare_command)
app.command("export")(export.export_command)
sae_app.command("train")(sae.sae_train_command)
sae_app.command("analyze")(sae.sae_analyze_command)
sae_app.command("steer")(sae.sae_steer_command)
app.add_typer(sae_app, name="sae")


def _interrupted(exc: Interrupted | None) -> int:
    """Ctrl-C: say where the run stopped and how to go on; exit 130 like a shell does."""
    if isinstance(exc, Interrupted):
        message = (f"during the {exc.stage} stage; finished work in {exc.run_dir} is kept: "
                   "re-run the same command to resume")
    else:
        message = "re-run the same command to resume"
    console.print(Text.assemble(("interrupted:", "yellow"), " ", message), soft_wrap=True)
    return 130


def main(argv: list[str] | None = None) -> int:
    """Run the command line; a user error is one line and exit code 2, Ctrl-C exit code 130."""
    keep_freed_memory()
    try:
        code = app(args=argv, standalone_mode=False)
    except Interrupted as exc:
        return _interrupted(exc)
    except UserError as exc:
        print_error(str(exc))
        return exc.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort):
        return _interrupted(None)
    except click.ClickException as exc:  # usage errors carry their own exit code
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    if code == 130:  # typer's answer to a Ctrl-C outside a stage (e.g. loading the model)
        return _interrupted(None)
    return code if isinstance(code, int) else 0
