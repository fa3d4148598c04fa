"""The single exception type raised for every bad dataset input."""


class DatasetError(Exception):
    """A dataset file or prepared output is missing, corrupt or not what was expected.

    Messages always name the offending file, what was expected, what was found,
    and how to fix it, because these errors surface inside Snakemake logs where
    the user has no other context.
    """


def describe_problem(file: object, expected: str, found: str, fix: str) -> str:
    """Format the four facts every DatasetError message must carry."""
    return f"{file}: expected {expected}; found {found}. Fix: {fix}"
