"""Helpers of the client's tests: the `voltpark` command run in this process, its exit code and output."""

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from voltpark_client.cli import main


@dataclass(frozen=True)
class Result:
    """What a run of the command left: its exit code, stdout and stderr."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Cli:
    """The `voltpark` command against the transport, with VOLTPARK_TOKEN set by `as_(token)`."""

    def __init__(self, transport: httpx.BaseTransport, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
        self.transport, self.monkeypatch, self.capsys = transport, monkeypatch, capsys

    def as_(self, token: str) -> "Cli":
        self.monkeypatch.setenv("VOLTPARK_TOKEN", token)
        return self

    def __call__(self, *argv: str) -> Result:
        self.capsys.readouterr()
        code = main(list(argv), transport=self.transport)
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)
