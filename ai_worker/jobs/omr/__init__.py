"""omr_grading: answer sheets read by their corner fiducials, graded against an optional key.

Importing this package is cheap (no cv2): `handle` imports the reader on first use, so the `omr sheet` command
and the worker's registry can import the package without loading OpenCV.
"""

from __future__ import annotations

from typing import Any

from ai_worker.jobs.context import JobContext


def handle(ctx: JobContext) -> dict[str, Any]:
    """The registry's entry point (`ai_worker.jobs.omr:handle`); see ai_worker.jobs.omr.handler."""
    from ai_worker.jobs.omr.handler import handle as read_and_grade

    return read_and_grade(ctx)
