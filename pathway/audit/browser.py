"""Headless Chromium: finding it, and printing an HTML page to PDF with it.

One place for the browser, used by ``pathway report --pdf`` and by the tests that render the report.
The browser is looked for as ``$PATHWAY_CHROMIUM`` (a path or a command name), then as ``chromium``,
``chromium-browser``, ``google-chrome`` and ``google-chrome-stable`` on ``PATH``. On Debian and Ubuntu
the package is ``chromium`` (``./dev test`` installs it).

Each run gets a fresh temporary profile folder (nothing is read from or left in the user's own
profile), no network, and a time limit: a browser still running after it is ended with all the
processes it started (they share one process group).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from pathway.core.errors import PathwayError

__all__ = ["BROWSERS", "CHROMIUM_ENV", "CHROMIUM_PACKAGE", "HEADLESS_FLAGS", "PDF_TIMEOUT", "ChromiumNotFound",
           "find_chromium", "chromium", "run_chromium", "print_pdf"]

#: Command names tried, in order, after ``$PATHWAY_CHROMIUM``.
BROWSERS: tuple[str, ...] = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Environment variable naming the browser (a path or a command name).
CHROMIUM_ENV = "PATHWAY_CHROMIUM"
#: The Debian/Ubuntu package to install.
CHROMIUM_PACKAGE = "chromium"
#: Seconds a PDF may take before the browser is stopped (the ASUC report takes a few).
PDF_TIMEOUT = 120.0
#: Flags of every run: headless, no sandbox (containers, root), no GPU, no first-run pages, nothing
#: fetched in the background (updates, sync, QUIC probes), log to stderr so console errors can be read.
HEADLESS_FLAGS: tuple[str, ...] = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-extensions", "--enable-logging=stderr", "--v=0")


class ChromiumNotFound(PathwayError):
    """No headless Chromium to print with (Debian package ``chromium``)."""


def find_chromium() -> str | None:
    """The browser's executable, or None when there is none."""
    named = os.environ.get(CHROMIUM_ENV, "").strip()
    if named:
        return shutil.which(named)
    for name in BROWSERS:
        exe = shutil.which(name)
        if exe:
            return exe
    return None


def chromium() -> str:
    """The browser's executable; :class:`ChromiumNotFound` with what to install when there is none."""
    exe = find_chromium()
    if exe is not None:
        return exe
    named = os.environ.get(CHROMIUM_ENV, "").strip()
    looked = (f"${CHROMIUM_ENV} ({named!r}) is not an executable" if named
              else f"none of {', '.join(BROWSERS)} is on PATH")
    raise ChromiumNotFound(f"headless Chromium is needed to write a PDF and was not found: {looked}; install "
                           f"Debian's '{CHROMIUM_PACKAGE}' package (apt-get install {CHROMIUM_PACKAGE}), or set "
                           f"${CHROMIUM_ENV} to the browser, or write the HTML with -o and print it from a browser")


def run_chromium(page: Path, *args: str, timeout: float = PDF_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Open ``page`` (a local file) in headless Chromium with ``args`` (e.g. ``--dump-dom``), in a fresh
    temporary profile, stopped with every process it started after ``timeout`` seconds
    (:class:`PathwayError`)."""
    exe = chromium()
    with tempfile.TemporaryDirectory(prefix="pathway-chromium-") as profile:
        cmd = [exe, *HEADLESS_FLAGS, f"--user-data-dir={profile}", f"--crash-dumps-dir={profile}", *args,
               page.resolve().as_uri()]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                text=True, errors="replace", start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop_group(proc)
            raise PathwayError(f"Chromium did not finish within {timeout:g} s and was stopped") from None
        finally:
            _stop_group(proc)  # helpers the browser left behind (same process group)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _stop_group(proc: subprocess.Popen[str]) -> None:
    """End the process group of ``proc`` (the browser and its helpers) if any of it still runs."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.returncode is None:
        proc.communicate()


def print_pdf(html_text: str, out: Path, *, timeout: float = PDF_TIMEOUT) -> Path:
    """Print an HTML page to the PDF file ``out`` with headless Chromium (page size, margins, running
    footer and page breaks come from the page's own print stylesheet; no browser header or footer)."""
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="pathway-pdf-") as work:
        page, pdf = Path(work) / "report.html", Path(work) / "report.pdf"
        page.write_text(html_text, encoding="utf-8")
        run = run_chromium(page, "--no-pdf-header-footer", "--generate-pdf-document-outline", f"--print-to-pdf={pdf}",
                           timeout=timeout)
        if run.returncode != 0 or not pdf.is_file() or pdf.read_bytes()[:5] != b"%PDF-":
            last = [line for line in run.stderr.splitlines() if line.strip()][-3:]
            raise PathwayError(f"Chromium did not write a PDF (exit {run.returncode}): " + " | ".join(last))
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pdf, out)
    return out
