"""The error type the ``mmsa`` command reports as one readable line instead of a traceback.

Anything else that escapes a subcommand is a bug and keeps its traceback.
"""

from __future__ import annotations


class InputError(ValueError):
    """An input the user gave (a file, a column, a dataset's table) cannot be used as it is.

    The message names the file, column or row and says what is wrong, on one line.
    """
