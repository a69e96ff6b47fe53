"""The errors newslab expects: each is reported in one line naming the file, flag or URL, no traceback."""


class NewslabError(Exception):
    """An expected failure (bad input, missing data, a damaged file): one line, non-zero exit."""


class ConfigError(NewslabError, ValueError):
    """A setting that cannot be used; the message names the flag (or the file and field)."""
