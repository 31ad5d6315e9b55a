"""The columns a dataset's spec reads from a CSV header, or the one-line error that says what is
wrong with the header and, where the header nearly fits, what to pass instead.

A header that differs from the expected SMILES column only in case (``SMILES`` for ``smiles``)
or a file in another delimiter (its header one field holding ``;`` or a tab) is the user's
near miss: the error names the fix, which depends on who asked for the column (the command's
``--smiles-column``, or a dataset's ``smiles_column`` in the config).
"""

from __future__ import annotations

import shlex

from mmsa.data.columns import RESERVED, SMILES
from mmsa.data.download import FetchError
from mmsa.data.registry import DatasetSpec

# delimiters a header of one field may hold instead of commas, as the error names them
_OTHER_DELIMITERS = {";": "';'", "\t": "tab", "|": "'|'"}


def shown(header: list[str], columns: int = 12, chars: int = 40) -> str:
    """A header as an error message shows it: a binary file's "header" can be megabytes long."""
    names = [name if len(name) <= chars else name[:chars] + "..." for name in header[:columns]]
    return repr(names)[:-1] + (f", ... {len(header) - columns} more]" if len(header) > columns else "]")


def select_columns(
    spec: DatasetSpec, header: list[str], what: str, smiles_option: str | None = None
) -> dict[str, str]:
    """Output column name -> input column name (SMILES first, then the tasks).

    ``smiles_option`` is how the caller lets the user name the SMILES column (``--smiles-column``),
    for the error's hint; None for a pipeline dataset, whose config names it. A header naming
    the SMILES column twice is an error naming both positions, not a choice of the first: the
    two columns may hold different things (a name and a SMILES), nothing tells which is meant,
    and a logged line scrolls by while every row is read from the wrong one.
    """
    if not header:
        raise FetchError(f"{what}: empty file (no header line)")
    if spec.smiles_column not in header:
        raise FetchError(_missing_smiles(spec, header, what, smiles_option))
    at = [i + 1 for i, name in enumerate(header) if name == spec.smiles_column]
    if len(at) > 1:
        raise FetchError(
            f"{what}: {len(at)} columns named {spec.smiles_column!r} in the header (columns "
            f"{', '.join(map(str, at[:-1]))} and {at[-1]}); which holds the SMILES cannot be told: "
            "rename the others"
        )
    tasks = dict(spec.tasks)
    if spec.tasks_from_all:
        skip = {spec.smiles_column, *spec.exclude_columns}
        tasks = {col: col for col in header if col not in skip}
    missing = sorted(set(tasks.values()) - set(header))
    if missing:
        raise FetchError(f"{what}: task columns {missing} not in the table's header")
    reserved = sorted(set(RESERVED) & set(tasks))
    if reserved:
        raise FetchError(f"{what}: task names {reserved} are reserved for the fetched table")
    return {SMILES: spec.smiles_column, **tasks}


def _missing_smiles(spec: DatasetSpec, header: list[str], what: str, option: str | None) -> str:
    """The error for a header without the SMILES column, with the fix when it is a near miss."""
    delimiters = [name for d, name in _OTHER_DELIMITERS.items() if len(header) == 1 and d in header[0]]
    if delimiters:
        return (
            f"{what}: the header is one field holding {delimiters[0]} ({shown(header)}): a file "
            f"delimited by {delimiters[0]}? mmsa reads comma-separated CSV; save it as comma-separated "
            "CSV (a spreadsheet's 'CSV (comma delimited)')"
        )
    error = f"{what}: no SMILES column {spec.smiles_column!r} in the header {shown(header)}"
    wanted = spec.smiles_column.strip().casefold()
    near = [name for name in header if name.strip().casefold() == wanted]
    if not near:
        return error
    fix = (
        f"pass {option} {shlex.quote(near[0])}"
        if option
        else f"set data.custom.{spec.name}.smiles_column to {near[0]!r}"
    )
    return f"{error}; {fix}"
