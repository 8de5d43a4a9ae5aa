"""``classpulse join`` refuses bad input in one line, before starting anything heavy."""

from __future__ import annotations

import pytest

from bot.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["join", "http://example.test/room", "--teacher", "Ms Sato"], "Expected a meeting URL"),
        (["join", "janus+ws://127.0.0.1:8188/?room=abc", "--teacher", "Ms Sato"], "room"),
        (["join", "janus+ws://127.0.0.1:8188/?room=1234", "--teacher", "  "], "teacher"),
        (["join", "builtin:demo", "--teacher", "T", "--alert-after", "-5"], "alert_after_s"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("classpulse join: error: ") and message in err[0]
