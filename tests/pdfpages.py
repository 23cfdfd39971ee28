"""Reading a printed PDF as a reviewer would: its pages rasterised with pypdfium2 (shared by the report tests)."""

from __future__ import annotations

import pypdfium2 as pdfium

A4 = (595, 842)  # points, portrait
MM = 72 / 25.4  # points per millimetre
# the print stylesheet's page margins (top, right, bottom, left) and the gutter kept inside the right margin
MARGINS_MM = (14, 12, 16, 12)
GUTTER_MM = 2  # 7.9 px at DPI: a cut table paints into it, up to the margin; a border may spill 2 px
DPI = 100


def ink_columns(page: pdfium.PdfPage, top_pt: float, bottom_pt: float) -> tuple[int, int, float]:
    """(leftmost, rightmost) non-white pixel columns between ``top_pt`` and ``bottom_pt`` from the top of the
    page rendered at DPI, and pixels per point; (width, -1) for a blank band."""
    scale = DPI / 72
    bitmap = page.render(scale=scale, grayscale=True)
    buf, stride, width = bytes(bitmap.buffer), bitmap.stride, bitmap.width
    assert bitmap.n_channels == 1
    left, right = width, -1
    for y in range(int(top_pt * scale), min(bitmap.height, int(bottom_pt * scale))):
        row = buf[y * stride:y * stride + width]
        inked = len(row.rstrip(b"\xff"))
        if inked:
            right = max(right, inked - 1)
            left = min(left, width - len(row.lstrip(b"\xff")))
    return left, right, scale


def cut_pages(doc: pdfium.PdfDocument) -> list[str]:
    """Pages with ink past the text column's right edge (into the gutter or the margin) or left of the
    left margin, as 'page N: ...' (the running footer's band is left out: it sits in the bottom margin)."""
    problems = []
    for number, page in enumerate(doc, start=1):
        width, height = page.get_size()
        top, right_m, bottom, left_m = (m * MM for m in MARGINS_MM)
        left, right, scale = ink_columns(page, top, height - bottom)
        limit = (width - right_m - GUTTER_MM * MM) * scale
        if right > limit + 2 or (right >= 0 and left < left_m * scale - 2):  # 2 px: anti-aliased borders
            problems.append(f"page {number}: ink from x={left} to x={right} px, text column ends at {limit:.0f} px")
    return problems


def page_texts(doc: pdfium.PdfDocument) -> list[str]:
    """The text of every page."""
    return [page.get_textpage().get_text_range() for page in doc]
