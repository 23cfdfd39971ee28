"""Rich labels for diagrams: small tables of text runs, drawn as Graphviz HTML-like labels in DOT
and as plain lines in Mermaid; evidence badges; rules and conditions in words.

A :class:`Table` holds rows of :class:`Cell` s, each a list of lines of :class:`Run` s (plain,
unescaped text with a style: small, bold, a colour). :func:`table_html` writes it as an HTML-like
label, every text passed through :func:`pathway.core.text.one_line` (no control character, no line
break) and :func:`html.escape` (no ``<``, ``>``, ``&`` or quote of a text reaches Graphviz's
parser), so a title cannot open an element, close the label or add an attribute; the colours,
sizes and borders come from this module only. :func:`table_lines` gives the same content as lines
of plain text (Mermaid escapes them itself).

The words of a condition come from one place, :func:`_condition_words`: the clinical prose of
:mod:`pathway.definition.prose`, with the parameters resolved under the loaded profile.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pathway.core.text import one_line
from pathway.definition import conditions as C
from pathway.definition import prose
from pathway.definition.effects import (
    TEMPLATE_RE,
    Alert,
    Derive,
    Dose,
    Effect,
    Offer,
    Propose,
    Recommend,
    Require,
    Score,
    Titrate,
    Transition,
)
from pathway.definition.model import Evidence
from pathway.definition.pathway import Branch, PathwayDef, Rule

__all__ = ["Run", "Cell", "Table", "table_html", "table_lines", "wrap_lines", "MAX_LINES", "STRENGTH_WORDS", "BADGE_COLOURS",
           "badge_text", "badge_cell", "evidence_words", "condition_words", "criterion_words", "rule_summary",
           "effect_groups", "effect_text", "effect_words", "moves_of", "BRANCH_WORDS", "FONT_SIZE"]


@dataclass(frozen=True)
class Run:
    """A piece of text in one style (the text is plain: escaped where it is written)."""

    text: str
    small: bool = False
    bold: bool = False
    colour: str = ""
    #: a point size of its own (default: the table's normal or small size)
    size: str = ""


@dataclass(frozen=True)
class Cell:
    """A table cell: lines of runs; a background, a border (dashed or solid) and an alignment."""

    lines: tuple[tuple[Run, ...], ...]
    bg: str = ""
    border: str = ""
    dashed: bool = False
    align: str = "left"
    colspan: int = 1
    #: drawn as a small box at the top of the cell (a badge), not filling it
    boxed: bool = False

    @classmethod
    def text(cls, text: str, width: int = 0, *, small: bool = False, bold: bool = False, colour: str = "",
             **kw: object) -> Cell:
        """A cell of one text, wrapped at about ``width`` characters (0: not wrapped)."""
        lines = wrap_lines(text, width) if width else [one_line(text)]
        return cls(tuple((Run(line, small=small, bold=bold, colour=colour),) for line in lines), **kw)  # type: ignore[arg-type]


@dataclass
class Table:
    """Rows of cells; ``cellborder``: draw each cell's border (a grid)."""

    rows: list[list[Cell]] = field(default_factory=list)
    cellborder: bool = False
    bg: str = ""
    border_colour: str = ""


#: Point sizes of normal and small text in HTML-like labels (the graph's ``fontsize`` applies to
#: ordinary labels; a table sets its own).
FONT_SIZE = {False: "10", True: "7"}


def _run_html(run: Run, size: str) -> str:
    text = html.escape(one_line(run.text), quote=True)
    if not text:  # Graphviz refuses an empty <font> element
        return ""
    if run.bold:
        text = f"<b>{text}</b>"
    attrs = f' point-size="{run.size or (FONT_SIZE[True] if run.small else size)}"'
    if run.colour:
        attrs += f' color="{run.colour}"'
    return f"<font{attrs}>{text}</font>"


def _cell_html(cell: Cell, size: str) -> str:
    if cell.boxed:  # a box of its own size (a cell's background fills the whole row height)
        inner = Cell(cell.lines, bg=cell.bg, border=cell.border, dashed=cell.dashed, align=cell.align)
        span = f' colspan="{cell.colspan}"' if cell.colspan > 1 else ""
        chars = max((sum(len(r.text) for r in line) for line in cell.lines), default=1)
        box = _cell_html(inner, size).replace("<td ", f'<td fixedsize="true" width="{10 + 6 * chars}" height="13" ', 1)
        return (f'<td valign="top" align="center"{span}><table border="0" cellspacing="0" cellpadding="1"><tr>{box}'
                "</tr></table></td>")

    attrs = f' align="{cell.align}" balign="{cell.align}"' if cell.align in ("left", "right") else ' align="center"'
    if cell.bg:
        attrs += f' bgcolor="{cell.bg}"'
    if cell.border:
        attrs += f' border="1" color="{cell.border}"' + (' style="dashed"' if cell.dashed else "")
    if cell.colspan > 1:
        attrs += f' colspan="{cell.colspan}"'
    body = "<br/>".join("".join(_run_html(r, size) for r in line) for line in cell.lines)
    return f"<td{attrs}>{body}</td>"


def table_html(table: Table, size: str = "") -> str:
    """The table as a Graphviz HTML-like label (``<<table>...</table>>``); ``size``: the point size of
    normal text (default :data:`FONT_SIZE`)."""
    size = size or FONT_SIZE[False]
    attrs = f'border="{1 if table.border_colour else 0}" cellborder="{1 if table.cellborder else 0}" cellspacing="0" ' \
            f'cellpadding="2"'
    if table.bg:
        attrs += f' bgcolor="{table.bg}"'
    if table.border_colour:
        attrs += f' color="{table.border_colour}"'
    rows = "".join("<tr>" + "".join(_cell_html(c, size) for c in row) + "</tr>" for row in table.rows if row)
    return f"<<table {attrs}>{rows}</table>>"


def table_lines(table: Table) -> list[str]:
    """The table as lines of plain text: a row's cells side by side (a cell of several lines joins
    them with spaces), empty cells left out."""
    out = []
    for row in table.rows:
        parts = [" ".join("".join(r.text for r in line) for line in cell.lines).strip() for cell in row]
        text = " ".join(p for p in parts if p)
        if text:
            out.append(one_line(text))
    return out


#: at most this many lines of one text in a diagram label: a longer one ends with "…" (its tooltip has it whole).
#: A label is laid out at its full height, and Graphviz refuses an edge over 65,535 points long (a 7,500-character
#: title wrapped at 34 characters is 220 lines, and the whole diagram fails to render).
MAX_LINES = 16


def wrap_lines(text: str, width: int = 30, max_lines: int = MAX_LINES) -> list[str]:
    """``text`` (one line) broken into lines of about ``width`` characters at spaces, at most ``max_lines``
    of them (the last then ends with "…")."""
    lines: list[str] = []
    line = ""
    for word in one_line(text).split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    if line:
        lines.append(line)
    if len(lines) > max_lines:
        lines = [*lines[:max_lines - 1], lines[max_lines - 1] + " …"]
    return lines or [""]


# -- evidence badges -----------------------------------------------------------------------------

#: What each strength of evidence means (``strength`` of a rule's evidence).
STRENGTH_WORDS: dict[str, str] = {
    "G": "guideline or consensus", "T": "randomised trial", "M": "meta-analysis", "O": "observational study",
    "S": "secondary summary", "Label": "drug label", "expert": "expert opinion",
}
#: Badge colour per strength.
BADGE_COLOURS: dict[str, str] = {
    "G": "#166534", "T": "#1d4ed8", "M": "#0e7490", "O": "#a16207", "S": "#57534e", "Label": "#9d174d",
    "expert": "#475569",
}


def badge_text(evidence: Evidence) -> str:
    """``G``, ``T``, ... with ``?`` when the evidence is unverified."""
    return evidence.strength + ("?" if evidence.status != "verified" else "")


def badge_cell(evidence: Evidence) -> Cell:
    """The badge as a cell: verified filled in the strength's colour, unverified white with a dashed border."""
    colour = BADGE_COLOURS.get(evidence.strength, "#475569")
    if evidence.status == "verified":
        return Cell(((Run(badge_text(evidence), small=True, bold=True, colour="#ffffff"),),), bg=colour, align="center",
                    boxed=True)
    return Cell(((Run(badge_text(evidence), small=True, bold=True, colour=colour),),), bg="#ffffff", border=colour,
                dashed=True, align="center", boxed=True)


def evidence_words(evidence: Evidence) -> str:
    """``G (guideline or consensus), verified; sources: A, B``."""
    words = STRENGTH_WORDS.get(evidence.strength, evidence.strength)
    return f"{evidence.strength} ({words}), {evidence.status}; sources: {', '.join(evidence.sources)}"


# -- rules in words ------------------------------------------------------------------------------

def _condition_words(cond: C.Cond, d: PathwayDef) -> str:
    """A condition in words: the one place the diagrams turn a condition into text."""
    return prose.condition_text(cond, d)


def condition_words(cond: C.Cond, d: PathwayDef) -> str:
    """A condition in words (see :func:`_condition_words`)."""
    return one_line(_condition_words(cond, d))


def _always(cond: C.Cond) -> bool:
    return isinstance(cond, C.Always) or (isinstance(cond, C.And) and not cond.items)


def criterion_words(rule: Rule, d: PathwayDef, branch: Branch = "then") -> list[str]:
    """When a branch of a rule fires, as lines of words (:func:`prose.rule_text`): the time it is
    due, its condition (or, for ``otherwise``, its negation), and what it does while data are missing."""
    words = prose.rule_text(rule, d)
    lines = [f"due: {words.due}"] if words.due else []
    if branch == "then":
        lines.append("always (when due)" if _always(rule.when) else f"if: {words.when}")
    elif branch == "else":
        lines.append(f"if not: {words.when}")
        if rule.requires:
            lines.append("and recorded: " + ", ".join(prose.field_name(f, d) for f in rule.requires))
    else:
        lines += list(words.missing) or ["while a value it computes with is not recorded"]
    return lines


def effect_text(text: str, d: PathwayDef) -> str:
    """A text of the rule files (an effect's or a watchdog's) as the diagrams show it: one line,
    parameters filled in with their values; a recorded value, known only when the rule fires, reads '…'."""
    def one(match: re.Match[str]) -> str:
        value = d.params.get(match.group(1))
        if value is None:
            return "…"
        if isinstance(value, bool):
            return "yes" if value else "no"
        return f"{value:g}" if isinstance(value, float) else str(value)
    return TEMPLATE_RE.sub(one, one_line(text))


def _state_title(d: PathwayDef, sid: str) -> str:
    spec = d.spec.states.get(sid)
    return spec.title if spec is not None else sid


def effect_words(effect: Effect, d: PathwayDef) -> tuple[str, str]:
    """(kind, words) of one effect, as the outcome of a rule: ``("moves", "to Rescue therapy selection")``."""
    if isinstance(effect, Transition):
        return "moves", f"to {_state_title(d, effect.to)}"
    if isinstance(effect, Propose):
        field_name, value = effect.decision
        return "proposes", f"{_state_title(d, effect.to)} (moves once {field_name} = {value} is recorded)"
    if isinstance(effect, Offer):
        return "option", f"{effect.option}: {effect.status}"
    if isinstance(effect, Recommend):
        return effect.kind, effect.text
    if isinstance(effect, (Dose, Titrate)):
        return "dose", effect.text or f"{effect.name} ({effect.route})"
    if isinstance(effect, Alert):
        return f"alert ({effect.level})", effect.text
    if isinstance(effect, Require):
        return "asks for", ", ".join(effect.fields) + (f": {effect.text}" if effect.text else "")
    if isinstance(effect, Derive):
        return "derives", ", ".join(f"{k} = {str(v).lower() if isinstance(v, bool) else v}" for k, v in effect.values.items())
    if isinstance(effect, Score):
        return "computes", effect.name
    return "effect", type(effect).__name__.lower()  # pragma: no cover - every effect kind is listed above


#: Branch names as the rule files write them.
BRANCH_WORDS: dict[str, str] = {"then": "then", "else": "otherwise", "missing": "if missing"}


def effect_groups(rule: Rule) -> list[tuple[Branch, tuple[Effect, ...]]]:
    """The branches of a rule that have effects, in order."""
    return [(b, rule.effects(b)) for b in ("then", "else", "missing") if rule.effects(b)]


def moves_of(rule: Rule, target: str) -> list[tuple[Branch, str]]:
    """The branches of ``rule`` that take the patient to ``target``: (branch, "moves" or "proposes")."""
    out: list[tuple[Branch, str]] = []
    for branch in ("then", "else", "missing"):
        if target in rule.targets(branch):
            out.append((branch, "moves"))
        if target in rule.proposed(branch):
            out.append((branch, "proposes"))
    return out


def rule_summary(rule: Rule, d: PathwayDef, branches: Iterable[Branch] | None = None,
                 outcome: Sequence[str] = ()) -> str:
    """A rule in words for a tooltip: title and id, when it fires, its outcome, its evidence."""
    lines = [f"{one_line(rule.title)} [{rule.id}]"]
    for branch in branches if branches is not None else [b for b, _ in effect_groups(rule)] or ["then"]:
        lines += criterion_words(rule, d, branch)
    lines += [one_line(o) for o in outcome]
    lines.append(f"evidence: {one_line(evidence_words(rule.evidence))}")
    return "\n".join(lines)
