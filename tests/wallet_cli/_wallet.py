"""Drive the ``datasafe`` CLI in-process with CliRunner, one wallet home per helper."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from wallet_cli.main import app

PASSPHRASE = "correct horse battery staple"
FAST_SCRYPT = "1024"  # the tests' work factor; real wallets use 262144 (the V3 default)


@dataclass
class Wallet:
    home: Path
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.env = {
            "DATASAFE_HOME": str(self.home),
            "DATASAFE_PASSPHRASE": PASSPHRASE,
            "DATASAFE_SCRYPT_N": FAST_SCRYPT,
            "DATASAFE_PROFILE": "",
            "DATASAFE_API": "",
            "DATASAFE_RPC": "",
            "DATASAFE_RPC_URL": "",
            "DATASAFE_PIN": "",
        } | self.env

    def run(self, *args: str, input: str | None = None, **env: str | None) -> Result:
        runner = CliRunner()
        return runner.invoke(
            app, list(args), input=input, env=self.env | env, catch_exceptions=False
        )

    def ok(self, *args: str, **kw: Any) -> Result:
        r = self.run(*args, **kw)
        assert r.exit_code == 0, f"exit {r.exit_code}\nstdout: {r.stdout}\nstderr: {r.stderr}"
        return r

    def json(self, *args: str, **kw: Any) -> Any:
        return json.loads(self.ok("--json", *args, **kw).stdout)

    def fails(self, code: int, *args: str, **kw: Any) -> str:
        """The command fails with this exit code and exactly one line on stderr."""
        r = self.run(*args, **kw)
        assert r.exit_code == code, f"exit {r.exit_code}\nstdout: {r.stdout}\nstderr: {r.stderr}"
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
        return lines[0]
