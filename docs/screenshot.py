"""Screenshots for the documentation, rendered from real output (never drawn by hand).

    python docs/screenshot.py report.pdf --page 1 -o docs/report-title-page.png
    python docs/screenshot.py report.pdf --page-with "Clinical sign-off as of" -o docs/report-rules-page.png
    python docs/screenshot.py report.pdf --page-with "Decision table" --crop -o docs/decision-table.png
    python docs/screenshot.py diagrams/asuc.svg --crop -o docs/diagram.png

The input is a PDF (``pathway report asuc --pdf report.pdf``), or an SVG or HTML file, which is first
printed to PDF with headless Chromium (``pathway.audit.browser``; an SVG on one A4 landscape page). One
page (``--page N``, or the first whose text contains ``--page-with TEXT``) is rendered with pypdfium2
(in the ``test`` extra) at ``--dpi`` (default 100) and written as a small PNG: 8-bit grey unless
``--colour``, every row with the PNG filter that compresses it best, zlib level 9; ``--crop`` trims the
white border (keeping a small margin). Exit 2 when the input or the page is not found.
"""

from __future__ import annotations

import argparse
import html
import struct
import sys
import tempfile
import zlib
from pathlib import Path


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def _filtered(row: bytes, prev: bytes, bpp: int) -> bytes:
    """The row with the PNG filter (none, sub, up, average, paeth) whose bytes sum smallest as signed values."""
    n = len(row)
    left = bytes(bpp) + row[:n - bpp]
    upleft = bytes(bpp) + prev[:n - bpp]
    candidates = [
        bytes([0]) + row,
        bytes([1]) + bytes((row[i] - left[i]) & 0xFF for i in range(n)),
        bytes([2]) + bytes((row[i] - prev[i]) & 0xFF for i in range(n)),
        bytes([3]) + bytes((row[i] - (left[i] + prev[i]) // 2) & 0xFF for i in range(n)),
        bytes([4]) + bytes((row[i] - _paeth(left[i], prev[i], upleft[i])) & 0xFF for i in range(n)),
    ]
    return min(candidates, key=lambda f: sum(v if v < 128 else 256 - v for v in f[1:]))


def write_png(path: Path, width: int, height: int, pixels: bytes, channels: int) -> None:
    """Write 8-bit grey (1 channel) or RGB (3 channels) rows, packed without padding, as a PNG."""
    stride = width * channels
    rows, prev = [], bytes(stride)
    for y in range(height):
        row = pixels[y * stride:(y + 1) * stride]
        rows.append(_filtered(row, prev, channels))
        prev = row

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0 if channels == 1 else 2, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
                     + chunk(b"IEND", b""))


def _crop(pixels: bytes, width: int, height: int, channels: int, pad: int) -> tuple[bytes, int, int]:
    """The pixels inside the bounding box of everything not white, with ``pad`` pixels around it."""
    stride = width * channels
    top, bottom, left, right = height, -1, stride, -1
    for y in range(height):
        row = pixels[y * stride:(y + 1) * stride]
        inked = len(row.rstrip(b"\xff"))
        if inked:
            top, bottom = min(top, y), y
            right = max(right, inked - 1)
            left = min(left, stride - len(row.lstrip(b"\xff")))
    if bottom < 0:
        return pixels, width, height
    x0, x1 = max(0, left // channels - pad), min(width, right // channels + 1 + pad)
    y0, y1 = max(0, top - pad), min(height, bottom + 1 + pad)
    out = b"".join(pixels[y * stride + x0 * channels:y * stride + x1 * channels] for y in range(y0, y1))
    return out, x1 - x0, y1 - y0


def _as_pdf(source: Path, work: Path) -> Path:
    """An SVG or HTML file printed to PDF with headless Chromium (the project's own browser code)."""
    from pathway.audit.browser import print_pdf

    text = source.read_text(encoding="utf-8")
    if source.suffix.lower() == ".svg":
        start = text.find("<svg")
        text = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>" + html.escape(source.name) + "</title><style>"
                "@page { size: A4 landscape; margin: 8mm; } body { margin: 0; } "
                "svg { display: block; width: 100%; height: auto; max-height: 190mm; }</style></head><body>"
                + text[max(start, 0):] + "</body></html>")
    return print_pdf(text, work / "page.pdf")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="a PDF, SVG or HTML file")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--page", type=int, default=1, help="page number, from 1 (default 1)")
    which.add_argument("--page-with", default=None, metavar="TEXT", help="the first page whose text contains TEXT")
    parser.add_argument("--dpi", type=float, default=100, help="resolution (default 100)")
    parser.add_argument("--colour", action="store_true", help="keep colour (default: grey, about a third of the size)")
    parser.add_argument("--crop", action="store_true", help="trim the white border")
    parser.add_argument("-o", "--output", required=True, help="PNG file to write")
    args = parser.parse_args(argv)

    import pypdfium2 as pdfium

    source = Path(args.source)
    if not source.is_file():
        print(f"error: {source} is not a file", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="screenshot-") as work:
        pdf_path = source if source.suffix.lower() == ".pdf" else _as_pdf(source, Path(work))
        doc = pdfium.PdfDocument(str(pdf_path))
        if args.page_with is not None:
            wanted = " ".join(args.page_with.split())
            found = [i for i, page in enumerate(doc) if wanted in " ".join(page.get_textpage().get_text_range().split())]
            if not found:
                print(f"error: no page contains {args.page_with!r}", file=sys.stderr)
                return 2
            index = found[0]
        else:
            index = args.page - 1
            if not 0 <= index < len(doc):
                print(f"error: {source} has {len(doc)} page(s), not a page {args.page}", file=sys.stderr)
                return 2
        bitmap = doc[index].render(scale=args.dpi / 72, grayscale=not args.colour, rev_byteorder=True)
        channels = bitmap.n_channels
        if channels not in (1, 3):
            print(f"error: unexpected {channels}-channel bitmap", file=sys.stderr)
            return 2
        buf, stride, width, height = bytes(bitmap.buffer), bitmap.stride, bitmap.width, bitmap.height
        pixels = b"".join(buf[y * stride:y * stride + width * channels] for y in range(height))
        if args.crop:
            pixels, width, height = _crop(pixels, width, height, channels, pad=round(args.dpi / 10))
        pages = len(doc)
        doc.close()
        out = Path(args.output)
        write_png(out, width, height, pixels, channels)
        print(f"wrote {out} ({width}x{height}, page {index + 1} of {pages}, {out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
