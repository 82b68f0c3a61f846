"""`ai-worker omr ...`: tools for the answer sheets the omr_grading job reads.

Importing this module is cheap: PIL and the sheet renderer are imported when a command runs, so building the
`ai-worker` parser never loads them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ai_worker.config import Settings

DEFAULT_DPI = 300  # print resolution of the PNG and PDF


def add_subcommands(subparsers: Any) -> None:
    """Add `sheet` to the `omr` command's subparsers; commands are `func(args, settings) -> exit code`."""
    sheet = subparsers.add_parser(
        "sheet", help="write a printable answer sheet (PNG and PDF) and its template JSON for omr_grading"
    )
    sheet.add_argument("--questions", type=int, required=True, help="number of questions, 1-100")
    sheet.add_argument("--choices", type=int, default=5, choices=(4, 5), help="choices per question (default: 5)")
    sheet.add_argument("--out", type=Path, default=Path("."), help="output folder (default: current folder)")
    sheet.add_argument("--title", default="", help="title printed at the top of the sheet")
    sheet.add_argument("--dpi", type=int, default=DEFAULT_DPI, help=f"resolution, 72-600 (default: {DEFAULT_DPI})")
    sheet.set_defaults(func=cmd_sheet)


def cmd_sheet(args: argparse.Namespace, settings: Settings) -> int:
    from ai_worker.errors import PermanentError
    from ai_worker.jobs.omr.sheet import MAX_DPI, MIN_DPI, write_sheet

    if not MIN_DPI <= args.dpi <= MAX_DPI:
        print(f"ai-worker: --dpi must be between {MIN_DPI} and {MAX_DPI}", file=sys.stderr)
        return 2
    try:
        paths = write_sheet(args.out, args.questions, args.choices, title=args.title, dpi=args.dpi)
    except PermanentError as exc:
        print(f"ai-worker: {exc.message}", file=sys.stderr)
        return 2
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0
