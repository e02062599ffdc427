"""The one exception type the CLI turns into a one-line message (no traceback)."""


class TitoError(Exception):
    """A problem the user can fix, explained in one line."""
