"""deploy/.env.example, written from the declared variables: `python -m bot.env_example > deploy/.env.example`."""

from __future__ import annotations

import textwrap

from bot.variables import VARIABLES

HEADER = """\
# Every variable advisor reads, one line of explanation each. Copy to deploy/.env for Docker Compose or to
# /etc/advisor/advisor.env for systemd (chmod 600; never commit it) and fill in what you use.
# Plain KEY=value lines (no quotes, no `export`): both Compose and systemd read this format.
# Command-line options (--corpus, --data-dir, --model) win over these. Unset lines keep the default shown.
# Written by `python -m bot.env_example` from bot/variables.py: change them there, then run it again.
"""
WIDTH = 118  # the comment lines' width, "# " included


def render() -> str:
    """The whole file: the header, then per section its heading and, per variable, its doc and its line."""
    lines, section = [HEADER.rstrip("\n")], None
    for variable in VARIABLES:
        if variable.section != section:
            section = variable.section
            lines += ["", f"# --- {section} ---"]
        lines += textwrap.wrap(variable.doc, WIDTH, initial_indent="# ", subsequent_indent="# ",
                               break_on_hyphens=False, break_long_words=False)
        lines.append(f"{'' if variable.fill_in else '# '}{variable.name}={variable.example}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
