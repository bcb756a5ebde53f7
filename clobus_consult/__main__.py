"""The command line of the single-file build (and of ``python -m clobus_consult``).

    python3 clobus-consult.pyz [--instance DIR] serve [--bind HOST:PORT] [--workers N]
    python3 clobus-consult.pyz [--instance DIR] db upgrade | db status | sync status | init-token | ...

``serve`` runs gunicorn with the settings of :mod:`clobus_consult.serve`; every other command is the app's
flask CLI (what ``flask --app clobus_consult ...`` runs in a checkout). ``--instance`` may stand anywhere on
the line and applies to every command; it sets ``$CLOBUS_INSTANCE``, which the app (and gunicorn's workers)
read. From a zipapp an instance folder is required: Flask's default would be inside the extracted archive,
which the next version does not see.
"""
import os
import sys
import zipfile

import click
from flask.cli import FlaskGroup, NoAppException

INSTANCE_HELP = ("Instance folder: config.py and the SQLite database (default $CLOBUS_INSTANCE). May stand "
                 "anywhere on the command line; applies to every command.")


def _pop_instance(args: list[str]) -> tuple[list[str], str | None]:
    """Take ``--instance DIR`` / ``--instance=DIR`` out of ``args`` wherever it stands (up to a bare ``--``)."""
    rest, instance, i = [], None, 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        if arg == "--instance":
            if i + 1 >= len(args):
                raise click.UsageError("Option '--instance' requires an argument.")
            instance, i = args[i + 1], i + 2
            continue
        if arg.startswith("--instance="):
            instance = arg.partition("=")[2]
        else:
            rest.append(arg)
        i += 1
    return rest, instance


def _in_zipapp() -> bool:
    return os.path.isfile(sys.argv[0]) and zipfile.is_zipfile(sys.argv[0])


def _require_instance() -> None:
    if _in_zipapp() and not os.environ.get("CLOBUS_INSTANCE"):
        raise NoAppException("no instance folder: give --instance DIR (or set CLOBUS_INSTANCE)")


def _create_app():
    _require_instance()
    from . import create_app

    return create_app()


def _show_version(ctx, _param, value):
    if not value or ctx.resilient_parsing:
        return
    import platform
    from importlib.metadata import version

    from . import __version__

    click.echo(f"clobus-consult {__version__} (Flask {version('flask')}, Python {platform.python_version()})")
    ctx.exit()


@click.command("serve")
@click.option("--bind", "-b", multiple=True, metavar="HOST:PORT",
              help="Address to listen on, may repeat (default $GUNICORN_BIND or 127.0.0.1:7070).")
@click.option("--workers", "-w", type=click.IntRange(min=1),
              help="Worker processes (default $GUNICORN_WORKERS or 2 per CPU, at most 8).")
def serve_command(bind, workers):
    """Serve the API with gunicorn.

    Applies pending migrations first. Settings: clobus_consult/serve.py, overridden by GUNICORN_* variables
    (GUNICORN_THREADS, GUNICORN_TIMEOUT, ...) and by the options below.
    """
    _require_instance()  # a UsageError
    from .serve import run

    run(bind=bind, workers=workers)


cli = FlaskGroup(
    name="clobus-consult",
    help="clobus-consult: consultation intake for clobus.uz. `serve` runs it; the rest are operator commands.",
    create_app=_create_app,
    load_dotenv=False,
    add_version_option=False,
    params=[
        click.Option(["--instance"], metavar="DIR", expose_value=False, help=INSTANCE_HELP),
        click.Option(["--version"], is_flag=True, expose_value=False, is_eager=True, callback=_show_version,
                     help="Show the version and exit."),
    ],
)
# This command line always runs this app: flask's --app and --env-file would only mislead.
cli.params = [p for p in cli.params if p.name not in ("app", "env_file")]
cli.add_command(serve_command)


def main(argv: list[str] | None = None):
    try:
        args, instance = _pop_instance(list(sys.argv[1:] if argv is None else argv))
    except click.UsageError as e:
        e.show()
        return e.exit_code
    if instance:
        os.environ["CLOBUS_INSTANCE"] = os.path.abspath(instance)
    return cli.main(args=args)


if __name__ == "__main__":
    sys.exit(main())
