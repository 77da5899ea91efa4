"""A pseudo-terminal pair behind a stable path, which can be dropped and re-created.

The device side holds the master end (and the slave end too, so the pty outlives clients that
close and reopen it). Clients open :attr:`PtyLink.path`, a symlink to the current slave;
:meth:`drop` removes the symlink first and then closes both ends, so a client's next read
fails with EIO and its reconnect attempts fail until :meth:`open` has pointed the symlink at a
fresh pty.
"""

from __future__ import annotations

import os
import tty
from pathlib import Path

from ..errors import ConfigError


class PtyLink:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.master: int | None = None
        self._slave: int | None = None
        self.device_path: str | None = None

    def open(self) -> None:
        if self.path.exists() and not self.path.is_symlink():
            raise ConfigError(f"{self.path} exists and is not a symlink; not replacing it")
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self.master, self._slave = master, slave
        self.device_path = os.ttyname(slave)
        tmp = self.path.with_name(self.path.name + ".new")
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        os.symlink(self.device_path, tmp)
        os.replace(tmp, self.path)

    def drop(self) -> None:
        """Remove the path, then close both ends (clients see the port vanish)."""
        try:
            if self.path.is_symlink():
                self.path.unlink()
        except FileNotFoundError:
            pass
        for fd in (self.master, self._slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.master = self._slave = None
        self.device_path = None

    @property
    def is_open(self) -> bool:
        return self.master is not None
