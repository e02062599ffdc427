"""The settings a checkpoint child process runs with: one dataclass, written and read as env.

The parent (`tito check`, `tito grade`) fills a `RunSettings` and passes `to_env()` to the
child; the pytest plugin and the messages in the child read `RunSettings.from_env()`. No other
file reads these variables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

PREFIX = "TITO_RUN_"


@dataclass(frozen=True)
class RunSettings:
    mode: str = "direct"           # "direct" (tito check), "record" (sandbox), "reference" (trusted run)
    checking: str = ""             # the module id under test, "05"
    test_timeout: float = 30.0     # seconds per test, and for importing a test file
    memory_mb: int = 4096
    root_for_messages: str = ""    # paths in messages are shown relative to this folder
    reference_available: bool = False  # an instructor checkout: `--reference-deps` can be suggested

    def to_env(self) -> dict[str, str]:
        return {PREFIX + f.name.upper(): str(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> RunSettings:
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = environ.get(PREFIX + f.name.upper())
            if raw is not None:
                kind = {"float": float, "int": int, "bool": lambda text: text == "True"}.get(str(f.type), str)
                try:
                    values[f.name] = kind(raw)
                except ValueError:
                    pass  # a malformed value keeps the default
        return cls(**values)
