"""A throwaway PostgreSQL server on 127.0.0.1 for tests and CI: initdb in a temporary folder, a free port, then stop.

    python tests/pg_server.py start FOLDER   # prints the URL (superuser, password auth) once it accepts connections
    python tests/pg_server.py stop FOLDER    # stops it and deletes FOLDER

Debian's server binaries live in /usr/lib/postgresql/<version>/bin; initdb refuses to run as root, so as root the
server runs as the `postgres` user (which then owns FOLDER).
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

USER = "advisor_test"


def binaries() -> Path | None:
    """The folder of initdb and pg_ctl (the newest Debian version installed, or PATH's), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _run(command: list[str], timeout: float = 60) -> None:
    done = subprocess.run(_as_server_user(command), capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:2])} failed: {(done.stderr or done.stdout).strip()[-2000:]}")


def start(folder: Path | None = None, durable: bool = False) -> tuple[str, Path]:
    """Start a server; returns its URL and its folder (pass that to `stop`).

    Tests need no durability: unless `durable`, commits are not flushed to disk (fsync and synchronous_commit off).
    """
    bin_dir = binaries()
    if bin_dir is None:
        raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl) found")
    folder = Path(folder or tempfile.mkdtemp(prefix="advisor-pg-"))
    folder.mkdir(parents=True, exist_ok=True)
    data, password = folder / "data", secrets.token_hex(16)
    pwfile = folder / "pw"
    pwfile.write_text(password + "\n")
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        shutil.chown(pwfile, "postgres", "postgres")
    pwfile.chmod(0o600)
    _run([str(bin_dir / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={pwfile}", "--auth=scram-sha-256",
          "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"], timeout=120)
    pwfile.unlink()
    for attempt in range(5):  # a free port may be taken between looking and listening
        port = _free_port()
        options = (f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={folder} "
                   "-c max_connections=200")
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        try:
            _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-w", "-t", "60",
                  "-o", options, "start"], timeout=90)
            break
        except RuntimeError:
            if attempt == 4:
                raise
    return f"postgresql://{USER}:{password}@127.0.0.1:{port}/postgres", folder


def stop(folder: Path) -> None:
    """Stop the server in `folder` (if it runs) and delete the folder."""
    bin_dir, data = binaries(), Path(folder) / "data"
    if bin_dir is not None and (data / "postmaster.pid").exists():
        subprocess.run(_as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "30",
                                        "stop"]), capture_output=True, timeout=60)
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        sys.exit(__doc__)
    if sys.argv[1] == "start":
        print(start(Path(sys.argv[2]))[0])
    else:
        stop(Path(sys.argv[2]))
