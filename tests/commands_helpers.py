"""Helpers of tests/test_commands.py: run a command as a user would, check its contract, and read
the commands the documentation gives (README.md's "Commands" table, docs/reproduce.md's bash blocks).

:func:`sairbench` calls :func:`sairbench.cli.main` (the console script) in-process with ``sys.argv``
set, inside ``typer.testing.CliRunner``'s isolation (stdout and stderr captured, environment
overrides applied and restored), so the output is what a user sees: a SairbenchError is one
``error:`` line and exit code 2, an unexpected exception escapes ``main`` as the traceback Python
would print.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]

def clear_user_env(mp: pytest.MonkeyPatch) -> None:
    """Unset every ``SAIRBENCH_*`` variable a user's environment may set (data roots, weights, caches
    on or off) but the cache folder, which tests/conftest.py isolates."""
    for key in list(os.environ):
        if key.startswith("SAIRBENCH_") and key != "SAIRBENCH_CACHE_DIR":
            mp.delenv(key)


@dataclass
class CommandResult:
    argv: list[str]
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None = None  # what escaped main() (a SystemExit for every planned ending)
    traceback: str = ""

    def command(self) -> str:
        return f"$ sairbench {' '.join(self.argv)}"

    def describe(self, lines: int = 30) -> str:
        """The command, its exit code, and the last ``lines`` lines of stdout, stderr and any
        traceback, each line cut at 300 characters."""
        def tail(text: str) -> str:
            return "\n".join(line[:300] + (" [...]" if len(line) > 300 else "") for line in text.splitlines()[-lines:])

        return (f"{self.command()}\nexit code {self.exit_code}\n--- stdout\n{tail(self.stdout)}\n--- stderr\n"
                f"{tail(self.stderr)}" + (f"\n--- traceback\n{tail(self.traceback)}" if self.traceback else ""))


def sairbench(*argv, env: dict[str, str | None] | None = None) -> CommandResult:
    """Run ``sairbench ARGV...`` in-process through the console script's ``main``."""
    from sairbench.cli import main

    argv = [str(a) for a in argv]
    code, exception, tb = 0, None, ""
    old_argv = sys.argv
    with CliRunner().isolation(env=env) as streams, warnings.catch_warnings():
        sys.argv = ["sairbench", *argv]
        try:
            main()
        except SystemExit as exc:
            exception = exc
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except Exception as exc:  # noqa: BLE001  (what a user would see as a traceback)
            exception, code = exc, 1
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        finally:
            sys.argv = old_argv
        out = streams[0].getvalue().decode("utf-8", "replace")
        err = streams[1].getvalue().decode("utf-8", "replace") if streams[1] is not None else ""
    return CommandResult(argv, code, out, err, exception, tb)


ERROR_LINE = re.compile(r"(error|Error): ")  # main's one line; click's usage errors print 'Error: ...'


def assert_contract(result: CommandResult) -> None:
    """A command exits 0, or exits non-zero with one error line (``error: ...``; or click's
    ``Error: ...`` after its usage hint) as the last line of its error output, with no traceback
    anywhere; on failure the command and its output are printed."""
    problems = []
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        problems.append(f"raised {type(result.exception).__name__}: {str(result.exception)[:200]}")
    if "Traceback" in result.stdout + result.stderr:
        problems.append("a traceback in the output")
    if result.exit_code != 0:
        lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        errors = [k for k, line in enumerate(lines) if ERROR_LINE.match(line)]
        if len(errors) != 1 or errors[0] != len(lines) - 1:
            problems.append(f"exit code {result.exit_code} without exactly one error line ending the error output")
    if problems:
        print(result.describe())
        pytest.fail(f"{'; '.join(problems)}: {result.command()} (its output is printed above)", pytrace=False)


def assert_ok(result: CommandResult) -> None:
    """The contract, and exit code 0."""
    assert_contract(result)
    if result.exit_code != 0:
        print(result.describe())
        pytest.fail(f"expected exit code 0, got {result.exit_code}: {result.command()} (its output is printed above)",
                    pytrace=False)


def error_line(result: CommandResult) -> str:
    """The ``error:`` line of a command that kept the contract and failed."""
    assert_contract(result)
    assert result.exit_code != 0, result.describe()
    return [line for line in (result.stderr or result.stdout).splitlines() if ERROR_LINE.match(line)][0]


# --- README.md ---------------------------------------------------------------------------------

def readme_commands(text: str) -> list[str]:
    """The command words of each code span in the first column of README.md's "Commands" table:
    ``sairbench masks generate -o DIR ...`` -> ``masks generate``; ``sairbench --version`` ->
    ``--version``; a span without ``sairbench`` (``cache info``) is read as if it had it."""
    section = text.split("\n## Commands", 1)[1].split("\n## ", 1)[0]
    keys: list[str] = []
    for row in section.splitlines():
        if not row.startswith("| `"):
            continue
        first = re.split(r"(?<!\\)\|", row)[1]
        for span in re.findall(r"`([^`]+)`", first):
            words = span.split()
            words = words[1:] if words[0] == "sairbench" else words
            head = []
            for w in words:
                if not re.fullmatch(r"[a-z][a-z-]*", w):
                    break
                head.append(w)
            keys.append(" ".join(head) or words[0])
    return keys


# --- docs/reproduce.md ---------------------------------------------------------------------------

_RECORDER = r"""
sairbench() {
  printf '\001CMD\0' >> "$REC"; printf '%s\0' "$@" >> "$REC"
  for v in $(compgen -e | grep '^SAIRBENCH_'); do printf '\001ENV\0%s=%s\0' "$v" "${!v}" >> "$REC"; done
}
"""


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def doc_commands(text: str, tmp: Path) -> list[tuple[list[str], dict[str, str]]]:
    """Every ``sairbench`` call of the markdown's bash blocks, in order, as (argv, the SAIRBENCH_*
    variables it sees): bash itself runs the blocks (variables, loops, line continuations) with
    ``sairbench`` a function that records its arguments, in an environment without SAIRBENCH_*."""
    rec = tmp / "calls.bin"
    rec.write_bytes(b"")
    script = _RECORDER + "\n".join(bash_blocks(text))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "REC": str(rec), "HOME": str(tmp)}
    subprocess.run(["bash", "-c", script], cwd=tmp, env=env, check=True, capture_output=True, text=True)
    calls: list[tuple[list[str], dict[str, str]]] = []
    tokens = rec.read_bytes().decode().split("\0")[:-1]
    k = 0
    while k < len(tokens):
        if tokens[k] == "\x01CMD":
            calls.append(([], {}))
        elif tokens[k] == "\x01ENV":
            k += 1
            key, _, value = tokens[k].partition("=")
            calls[-1][1][key] = value
        else:
            calls[-1][0].append(tokens[k])
        k += 1
    return calls


def option(argv: list[str], name: str) -> str | None:
    """The last value of ``--name VALUE`` in ``argv`` (None when absent)."""
    values = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == name]
    return values[-1] if values else None


def with_table2_stages(calls: list[tuple[list[str], dict[str, str]]]) -> list[tuple[list[str], dict[str, str]]]:
    """docs/reproduce.md trains for CelebA-HQ and says to replace ``celeba-hq`` by ``ade20k`` for
    Table 2: a training call whose ``runs/celeba/<m>`` a later call reads as ``runs/ade20k/<m>`` gets
    its ADE20K twin right after it."""
    out = []
    for k, (argv, env) in enumerate(calls):
        out.append((argv, env))
        dest = option(argv, "--out") if argv[:1] == ["train"] else None
        if not dest or "runs/celeba/" not in dest:
            continue
        twin = dest.replace("runs/celeba/", "runs/ade20k/")
        if any(twin in a for later, _ in calls[k + 1:] for a in later):
            out.append(([a.replace("celeba-hq", "ade20k").replace("runs/celeba/", "runs/ade20k/") for a in argv], env))
    return out
