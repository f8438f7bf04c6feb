"""Running `advisor` in-process and checking that a refusal is one plain sentence."""

from __future__ import annotations

from bot.cli.entry import main


def run(capsys, *argv) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `advisor ARGV...` run in this process."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, out, err, *needles) -> None:
    """Exit 2, nothing on stdout, one "advisor: ..." line on stderr holding every needle, no traceback."""
    assert code == 2, (out, err)
    assert out == "", out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("advisor: ") and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]
