"""The sandbox every process that runs a submission's code lives in: bubblewrap.

`bwrap` (Debian package `bubblewrap`; unprivileged namespaces, no daemon) starts the child in
new user, PID, network, IPC, UTS and cgroup namespaces with a file system made of:

- the interpreter and the virtual environment, read-only, with the oracle packages (torch,
  tiktoken) covered by a package whose import raises ImportError, so they cannot be imported;
- one prepared folder, read-only, at /course: the manifest, the grader and router code, the
  sandbox copies of the test files (grader.sandbox_view), the reference of the modules the
  graded one builds on, and the student's file;
- a private /tmp, and /report, the one folder the child writes that the grader reads.

Nothing else of the machine is there: not the course folder, the gradebook, tests/hidden,
solutions/, other students' files or anyone's home. The child runs as `nobody`, in a new
session, with an address-space cap, a CPU-time cap and a file-size cap; its PID namespace
dies with it, so a detached process it started is killed when the job ends
(`--die-with-parent`, and the kernel ends a PID namespace whose first process exits).

`tito check` on a student's machine uses a lighter sandbox when bwrap is present (the whole
file system read-only, /tmp writable, no network, the process tree killed with the check):
there it protects the student's files from their own code, not a grade.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ORACLE_PACKAGES = ("torch", "functorch", "torchgen", "tiktoken", "tiktoken_ext")
NOBODY = 65534
FILE_SIZE_CAP = 512 * 2**20   # bytes any one file written inside may reach
PASSED_THROUGH = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "LANG", "LC_ALL")  # numpy's BLAS needs these on some CPUs
INSTALL_HINT = "install bubblewrap: `make setup-grading` (or `apt-get install bubblewrap`)"


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


@functools.lru_cache(maxsize=1)
def sandbox_problem() -> str:
    """Why the sandbox cannot run here, or '' when it can (tried once per process)."""
    path = bwrap_path()
    if path is None:
        return f"bwrap is not installed: {INSTALL_HINT}"
    try:
        done = subprocess.run([path, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bwrap cannot start: {error}"
    if done.returncode != 0:
        return f"bwrap cannot create namespaces here: {done.stderr.strip().splitlines()[-1:] or done.returncode}"
    return ""


def interpreter_folders() -> list[Path]:
    """The folders the interpreter and its packages live in (venv and base install)."""
    folders = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), Path(sys.exec_prefix).resolve()}
    return sorted(folders)


def oracle_folders() -> list[Path]:
    """The installed oracle packages, to be covered inside the sandbox."""
    site = {Path(sysconfig.get_paths()[key]).resolve() for key in ("purelib", "platlib")}
    return sorted(folder / name for folder in site for name in ORACLE_PACKAGES if (folder / name).is_dir())


PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask the kernel to kill this process when its parent dies (`kill -9` of tito included)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: the whole-run deadline still applies


@dataclass
class Limits:
    memory_mb: int
    cpu_seconds: int
    file_size: int = FILE_SIZE_CAP

    def apply(self) -> None:
        """Run in the child between fork and exec (inherited by bwrap and everything inside)."""
        die_with_parent()
        memory = self.memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_seconds, self.cpu_seconds + 5))
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.file_size, self.file_size))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


@dataclass
class GradingSandbox:
    """A sealed sandbox for `tito grade`: only /course (read-only), /report and a private /tmp."""

    course: Path                     # the prepared folder, bound at /course
    report_dir: Path                 # bound writable at /report
    env: dict[str, str] = field(default_factory=dict)

    COURSE = "/course"
    REPORT = "/report"

    def _absent_package(self) -> Path:
        """What each oracle package's folder shows inside: a package whose import fails, saying why."""
        folder = self.course.parent / "oracle-absent"
        folder.mkdir(exist_ok=True)
        (folder / "__init__.py").write_text(
            'raise ImportError(f"{__name__} is not part of the grading sandbox: the checks are judged outside it")\n')
        return folder

    def command(self, argv: list[str]) -> list[str]:
        command = [bwrap_path() or "bwrap", "--unshare-all", "--die-with-parent", "--new-session",
                   "--uid", str(NOBODY), "--gid", str(NOBODY), "--clearenv",
                   "--tmpfs", "/tmp"]  # first: an interpreter or venv under /tmp is bound on top of it
        for name in ("/usr", "/etc/alternatives", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d"):
            if Path(name).exists():
                command += ["--ro-bind", name, name]
        for link in ("bin", "lib", "lib64", "sbin"):
            target = Path("/") / link
            if target.is_symlink():
                command += ["--symlink", str(target.readlink()), f"/{link}"]
            elif target.is_dir():
                command += ["--ro-bind", str(target), f"/{link}"]
        for folder in interpreter_folders():
            command += ["--ro-bind", str(folder), str(folder)]
        absent = self._absent_package()
        for folder in oracle_folders():
            command += ["--ro-bind", str(absent), str(folder)]
        command += ["--proc", "/proc", "--dev", "/dev",
                    "--ro-bind", str(self.course), self.COURSE, "--bind", str(self.report_dir), self.REPORT,
                    "--chdir", self.COURSE]
        environment = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "PYTHONPATH": self.COURSE,
                       "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1", "MPLBACKEND": "Agg",
                       "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                       **{name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}, **self.env}
        for name, value in sorted(environment.items()):
            command += ["--setenv", name, value]
        return [*command, "--", *argv]


def local_check_command(argv: list[str], writable: list[Path]) -> list[str]:
    """`tito check` with bwrap: the machine read-only but for /tmp and `writable`; no network."""
    command = [bwrap_path() or "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
               "--bind", "/tmp", "/tmp", "--unshare-all", "--die-with-parent", "--new-session"]
    for folder in writable:  # bwrap needs absolute paths (TITO_STATE_DIR may be relative)
        command += ["--bind", str(Path(folder).resolve()), str(Path(folder).resolve())]
    return [*command, "--", *argv]


def limits_preexec(limits: Limits) -> Callable[[], None]:
    return limits.apply
