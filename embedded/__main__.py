"""`python -m embedded run [options] -- COMMAND...` and `python -m embedded clean`."""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

from embedded.runner import services_run
from embedded.services import postgres_stop, redis_stop, server_clean, var_dir_default


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m embedded", description=__doc__)
    parser.add_argument(
        "--var-dir", type=Path, default=None, help="default: SNAPAGG_VAR_DIR, else var/"
    )
    commands = parser.add_subparsers(dest="action", required=True)
    run = commands.add_parser(
        "run", help="run a command with embedded PostgreSQL/Redis for the URLs not set"
    )
    run.add_argument("--database", default="snapagg", help="database to create and use")
    run.add_argument("--redis-db", type=int, default=0, help="Redis database number")
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    commands.add_parser("clean", help="stop the embedded servers and delete their data")
    return parser


def _clean(var_dir: Path) -> int:
    servers = {
        "postgres": (partial(postgres_stop, data_dir=var_dir / "postgres"), var_dir / "postgres"),
        "redis": (partial(redis_stop, run_dir=var_dir / "redis"), var_dir / "redis"),
    }
    for name, (stop, path) in servers.items():
        try:
            server_clean(lease_dir=var_dir / "leases" / name, stop=stop, paths=[path])
        except RuntimeError as exc:
            print(f"embedded {name}: {exc}", file=sys.stderr)
            return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    var_dir = (args.var_dir or var_dir_default()).resolve()
    if args.action == "clean":
        return _clean(var_dir)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        _parser().error("run needs a command after --")
    return services_run(
        command=command, var_dir=var_dir, database=args.database, redis_db=args.redis_db
    )


if __name__ == "__main__":
    sys.exit(main())
