"""`tollgate serve` on a free loopback port with data and config dirs of its own, as the scripts
in this folder start it (imported by them; not a script itself)."""
import os
import subprocess
import sys
import threading
import urllib.parse


def isolated_env(root, **extra):
    """An environment whose tollgate keeps everything under `root`, with `extra` added."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": root,
        "TOLLGATE_CONFIG_DIR": os.path.join(root, "config"),
        "TOLLGATE_DATA_DIR": os.path.join(root, "data"),
        "TOLLGATE_NO_KEYRING": "1",
        "NO_COLOR": "1",
    }
    env.update(extra)
    return env


class LocalServer:
    """Starts `command` (`tollgate serve --addr 127.0.0.1:0`, maybe under a wrapper such as
    valgrind) and waits until it listens. Its stderr is then drained on a thread, since a full
    pipe would block the server; the last 20 lines stay in `stderr_tail`."""

    def __init__(self, command, env):
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        self.admin_key = self.process.stdout.readline().strip()
        self.url = self._read_url()
        address = urllib.parse.urlsplit(self.url)
        self.host, self.port = address.hostname, address.port
        self.stderr_tail = []
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def _read_url(self):
        while True:
            line = self.process.stderr.readline()
            if not line:
                sys.exit("the server exited before listening")
            if "listening on " in line:
                return line.split("listening on ")[1].split()[0]

    def _drain_stderr(self):
        for line in self.process.stderr:
            self.stderr_tail = (self.stderr_tail + [line])[-20:]
