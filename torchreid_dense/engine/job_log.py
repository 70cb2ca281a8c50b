"""A job's log: the console and ``<save_dir>/log.txt`` together (our messages and torchreid's prints)."""
import contextlib
import logging
import os.path as osp
import sys

__all__ = ["LOG_FILE", "log_to"]

LOG_FILE = "log.txt"


class _Tee:
    """A text stream writing to the console stream and the log file."""

    def __init__(self, console, logfile):
        self.console = console
        self.logfile = logfile

    def write(self, text):
        self.console.write(text)
        self.logfile.write(text)
        return len(text)

    def flush(self):
        self.console.flush()
        self.logfile.flush()

    def isatty(self):
        return False


class _JobLogHandler(logging.StreamHandler):
    """The log handler of one :func:`log_to` block."""


@contextlib.contextmanager
def log_to(save_dir):
    """Log the job (our messages and torchreid's prints) to the console and ``<save_dir>/log.txt``.

    ``sys.stdout`` is only redirected inside this block and restored on exit, even on error. A job run
    inside another one (SAN's SAN-PG step) writes to its own log and, through the console, to the outer one.
    """
    console = sys.stdout
    with open(osp.join(save_dir, LOG_FILE), "a", encoding="utf-8") as logfile:
        tee = _Tee(console, logfile)
        handler = _JobLogHandler(tee)
        handler.setFormatter(logging.Formatter("%(message)s"))
        root = logging.getLogger("torchreid_dense")
        previous_level = root.level
        outer = [h for h in root.handlers if isinstance(h, _JobLogHandler)]  # already reached through the console
        for h in outer:
            root.removeHandler(h)
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            with contextlib.redirect_stdout(tee):
                yield
        finally:
            root.removeHandler(handler)
            for h in outer:
                root.addHandler(h)
            root.setLevel(previous_level)
            tee.flush()


