"""The project's own answer sheet: an A4 portrait page with four corner fiducials, an 8-digit student
identifier and up to 100 questions in columns of 25, with 4 or 5 choices.

Guarantees: question k sits at the same place on every standard sheet with the same number of choices, whatever
the sheet's question count (column (k-1) // 25, row (k-1) % 25), and a 4-choice sheet is a 5-choice sheet without
its E column. So a sheet printed for 100 questions can be read with `question_count=20`, and the template is a
pure function of (questions, choices). All lengths below are millimetres on the printed page.
"""

from __future__ import annotations

from ai_worker.errors import INVALID_INPUT, PermanentError
from ai_worker.jobs.omr.template import ID_DIGIT_BUBBLES, Label, Question, Template

PAGE_W_MM, PAGE_H_MM = 210.0, 297.0  # A4
FRAME_LEFT_MM = FRAME_TOP_MM = 12.0  # fiducial centres sit 12 mm in from the edges: inside printer margins
FRAME_W_MM = PAGE_W_MM - 2 * FRAME_LEFT_MM
FRAME_H_MM = PAGE_H_MM - 2 * FRAME_TOP_MM
FIDUCIAL_MM = 8.0  # side of a fiducial square; the top-left one has a hollow centre (orientation mark)
BUBBLE_R_MM = 2.3  # bubble radius: a 4.6 mm circle, the usual size on exam sheets

MAX_QUESTIONS = 100
ROWS_PER_COLUMN = 25
CHOICE_SETS = {4: ("A", "B", "C", "D"), 5: ("A", "B", "C", "D", "E")}
COLUMN_PITCH_MM = 46.0
CHOICE_PITCH_MM = 6.5
ROW_PITCH_MM = 6.9
GRID_LEFT_MM = 14.0  # first bubble centre of column 0; question numbers sit to its left
GRID_TOP_MM = 95.0  # first row; the choice letters are printed one row above

ID_POSITIONS = 8
ID_LEFT_MM = 12.0
ID_PITCH_MM = 6.5
ID_TOP_MM = 26.0  # digit 0 row; digits 0-9 go down
ID_ROW_PITCH_MM = 6.0  # wide enough that a bubble's paper ring misses its neighbours

TEXT_MM = 3.2  # label height


def standard_template(questions: int, choices: int, title: str = "") -> Template:
    """The template of the project's sheet; PermanentError(invalid_input) for sizes the sheet cannot hold."""
    if not 1 <= questions <= MAX_QUESTIONS:
        raise PermanentError(INVALID_INPUT, f"question_count must be between 1 and {MAX_QUESTIONS}, got {questions}")
    if choices not in CHOICE_SETS:
        raise PermanentError(INVALID_INPUT, f"n_choices must be 4 or 5 on the standard sheet, got {choices}")
    letters = CHOICE_SETS[choices]
    labels: list[Label] = []
    if title:
        labels.append(_label(title, FRAME_W_MM / 2, 0.0, 5.0))
    labels.append(_label("STUDENT ID", ID_LEFT_MM - 6.0, ID_TOP_MM - 13.0, TEXT_MM, "lm"))
    labels.append(_label("Student ID: fill one bubble in each of the 8 columns.", 70.0, 14.0, 2.8, "lm"))
    labels.append(_label("NAME ______________________________", 70.0, 24.0, 4.0, "lm"))
    labels.append(_label("Fill each bubble completely with a dark pen or pencil.", 70.0, 40.0, 2.8, "lm"))
    labels.append(_label("Erase cleanly to change an answer. One answer per question.", 70.0, 45.0, 2.8, "lm"))
    for digit in range(ID_DIGIT_BUBBLES):
        labels.append(_label(str(digit), ID_LEFT_MM - 5.0, ID_TOP_MM + digit * ID_ROW_PITCH_MM, 2.6))
    identifier = tuple(
        tuple(
            _norm(ID_LEFT_MM + pos * ID_PITCH_MM, ID_TOP_MM + digit * ID_ROW_PITCH_MM)
            for digit in range(ID_DIGIT_BUBBLES)
        )
        for pos in range(ID_POSITIONS)
    )
    rows: list[Question] = []
    for k in range(1, questions + 1):
        column, row = divmod(k - 1, ROWS_PER_COLUMN)
        left = GRID_LEFT_MM + column * COLUMN_PITCH_MM
        y = GRID_TOP_MM + row * ROW_PITCH_MM
        if row == 0:
            labels.extend(
                _label(letter, left + i * CHOICE_PITCH_MM, y - ROW_PITCH_MM, TEXT_MM)
                for i, letter in enumerate(letters)
            )
        labels.append(_label(str(k), left - 4.5, y, TEXT_MM, "rm"))
        rows.append(Question(k, tuple(_norm(left + i * CHOICE_PITCH_MM, y) for i in range(choices))))
    return Template(
        frame_width=FRAME_W_MM,
        frame_height=FRAME_H_MM,
        fiducial_size=FIDUCIAL_MM / FRAME_W_MM,
        bubble_radius=BUBBLE_R_MM / FRAME_W_MM,
        choices=letters,
        questions=tuple(rows),
        identifier=identifier,
        title=title,
        labels=tuple(labels),
        page={"width": PAGE_W_MM, "height": PAGE_H_MM, "frame_left": FRAME_LEFT_MM, "frame_top": FRAME_TOP_MM},
    )


def _norm(x_mm: float, y_mm: float) -> tuple[float, float]:
    # Rounded so the template JSON stays small; 1e-5 of the frame is 2 micrometres on paper.
    return round(x_mm / FRAME_W_MM, 5), round(y_mm / FRAME_H_MM, 5)


def _label(text: str, x_mm: float, y_mm: float, size_mm: float, anchor: str = "mm") -> Label:
    x, y = _norm(x_mm, y_mm)
    return Label(text=text, x=x, y=y, size=round(size_mm / FRAME_W_MM, 5), anchor=anchor)
