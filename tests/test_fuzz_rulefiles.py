"""Rule-file mutation fuzzing: every mutant of a pathway's files loads, or is refused with located codes.

Seeded mutations of the files of a small pathway (``tests/fixtures/rulefiles/mini``: pathway,
rule files in two folders, fields, sources, hazards, invariants, two profiles) and, on a smaller
budget, of the shipped ASUC pathway: byte flips, control bytes, deep nesting, aliases (a billion
laughs included), tags, huge and odd numbers, NaN and infinities, file paths that lead out of the
folder (absolute, '..', symbolic links, a FIFO, a 300-character name), wrong types, deleted and
renamed keys, empty conditions. Each mutant is loaded (and, when it loads, compiled; some are also
run through a short course) under a time limit, and must either

- load, with nothing accepted that is wrong: every number finite, every dose, step and rank
  positive, every threshold written so durable_rules reads it exactly, no empty condition, strict
  JSON results; or
- raise DefinitionError whose every diagnostic has a registered code (never PW129, the loader's
  own failure), a line and column, and a file inside the pathway folder, and never quotes a
  file outside it;

and none may take more than 10 s. ``PATHWAY_FUZZ_BUDGET`` sets the number of mutants of the small
pathway (default 2,000; the ASUC budget is a twenty-fifth of it) and ``PATHWAY_FUZZ_SEED`` the seed.
The regression corpus below keeps one test for every traceback, hang and accepted-but-wrong value
the issue reported.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT

from pathway.core.codes import CODES
from pathway.core.errors import DefinitionError, EngineError, InputError
from pathway.definition import conditions as C
from pathway.definition.effects import Dose, Offer, Recommend, Score, Titrate
from pathway.loading.loader import load_definition
from pathway.runtime.compile import compile_pathway, engine_reads

MINI = ROOT / "tests" / "fixtures" / "rulefiles" / "mini"
ASUC = ROOT / "rules" / "asuc"
BUDGET = int(os.environ.get("PATHWAY_FUZZ_BUDGET", "2000"))
ASUC_BUDGET = max(10, BUDGET // 25)
SEED = int(os.environ.get("PATHWAY_FUZZ_SEED", "14"))
TIME_LIMIT = 10.0
#: loaded mutants also run through a short course, at most this many per run (each engine host
#: keeps a few hundred KB for the life of the process)
ENGINE_RUNS = max(20, BUDGET // 15)
#: what the file outside the pathway folder holds; no diagnostic may ever quote it
SECRET = "SECRETFUZZ"
SECRET_TEXT = (f"root:$6${SECRET}hash$:19000:0:99999:7:::\n"
               f"rules:\n  - id: {SECRET.lower()}_rule\n    {SECRET}_key: {SECRET}_value\n")


# -- mutants -----------------------------------------------------------------------------------

@dataclass
class Mutant:
    file: str  # the file of the pathway folder that changes (relative, '/' separated)
    kind: str
    text: bytes | None  # its new contents (None: unchanged)
    note: str = ""
    setup: Callable[[Path, Path], None] | None = None  # further changes to the folder (pathway folder, outside folder)
    empty_condition: bool = False  # an empty mapping was put where a condition or a test belongs

    def describe(self) -> str:
        return f"{self.kind} in {self.file}: {self.note}"[:300]


ODD_NUMBER_LITERALS = ["0.00005", "1.0e-5", "1.0e+300", ".inf", "-.inf", ".nan", ".NaN", "0", "-1", "-70", "-0.0",
                       "1e-5", "0x_", "0b_", "1_000", "99999999999999999999999", "1.0e-13", "5.0e-324",
                       "123456789012.5", "1:30", "0o17", "7" * 101, "1.0e+400", "2.5e-7", "0.0001", "1.0e+12"]
ODD_VALUES: list[Any] = [0, -1, -70, 0.0, -0.0, 0.00005, 1e-5, 1e300, 1e-300, float("inf"), float("-inf"), float("nan"),
                         10 ** 30, 2 ** 63, 1e12, 1e-12, 1.5e-13, 2.5e-7, 123456789.123, True, False, None, "", "$crp_limit_mg_l",
                         "$nope", "$policy", "$rank_surgery", "any_active", "treatment", "x" * 300, "x" * 25_000, "\u202e",
                         "{}", {}, [], [[]], {"in": 5}, {"gt": [1]}, {"between": [5, 1]}, {"eq": {}}, [1, 2],
                         {"a": {"b": {}}}, {"gte": 3}, "../../outside/secret.yaml", "/etc/passwd", "nan", "inf", "-Infinity",
                         "1e400", "1e-400", "5e-05", [0, "nan"], ["-inf", 5]]
TAGS = ["!!python/object/apply:os.system [\"true\"]", "!!set", "!foo", "!!str", "!!binary", "!!omap", "!!map", "!!seq",
        "!", "!!float", "!!python/name:os.system", "!<tag:yaml.org,2002:str>"]
CONTROL = [chr(c) for c in (*range(0, 9), 11, 12, *range(14, 32), 127)] + ["\ufffe", "\x85\x01"]
CONDITION_KEYS = ("when", "due", "of", "all", "any", "not")
PARAM_TESTS: list[Any] = [{"in": 5}, {"gt": [1]}, {}, {"eq": {}}, {"between": [1, 2]}, {"in": []}, {"gt": "$policy"},
                          {"present": True}, {"lt": {"a": 1}}, {"not_in": [[1]]}, 5, [1], {"gte": float("nan")}]
PATH_ATTACKS = ["/etc/passwd", "/etc/shadow", "{outside}/secret.yaml", "../outside/secret.yaml", "sub/../../outside/secret.yaml",
                "C:\\Windows\\win.ini", "\\\\server\\share\\x.yaml", "a" * 300 + ".yaml", "x\0y.yaml", "", ".", "sub",
                "fifo.yaml", "link.yaml", "linkdir/secret.yaml", "loop.yaml", "devzero.yaml", "~/x.yaml", "sub/./doses.yaml",
                "rules.yaml", "missing.yaml", "sub\\..\\..\\outside\\secret.yaml", "ok/../../outside/secret.yaml"]
FILE_KEYS = ("fields_file", "sources_file", "hazards_file", "invariants_file")


def _setup_paths(root: Path, outside: Path) -> None:
    """Links, a FIFO and a symbolic-link loop inside the folder, for the path attacks to name."""
    for name, target in (("link.yaml", outside / "secret.yaml"), ("linkdir", outside), ("loop.yaml", root / "loop2.yaml"),
                         ("loop2.yaml", root / "loop.yaml"), ("devzero.yaml", Path("/dev/zero"))):
        (root / name).symlink_to(target)
    os.mkfifo(root / "fifo.yaml")


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _paths(v, prefix + (i,))


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def _dump(data: Any) -> bytes:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=200).encode("utf-8")


class Mutator:
    """Seeded mutations of the files of one pathway folder."""

    def __init__(self, originals: dict[str, bytes], rng: random.Random, outside: Path):
        self.originals = originals
        self.rng = rng
        self.outside = outside
        self.trees = {name: yaml.safe_load(text) for name, text in originals.items()}
        self.files = sorted(originals)
        weights = {"pathway.yaml": 4}
        self.weights = [weights.get(f, 3 if not f.startswith("profiles/") else 2) for f in self.files]
        self.kinds: list[tuple[Callable[[str], Mutant], int]] = [
            (self.flip, 8), (self.control, 7), (self.deep, 5), (self.alias, 6), (self.tag, 7), (self.huge, 2),
            (self.lines, 8), (self.number_text, 12), (self.value, 14), (self.delete, 7), (self.rename, 4),
            (self.type_swap, 6), (self.empty_condition, 5), (self.param_test, 5), (self.path, 8),
        ]

    def __call__(self) -> Mutant:
        make = self.rng.choices([k for k, _ in self.kinds], [w for _, w in self.kinds])[0]
        name = self.rng.choices(self.files, self.weights)[0]
        return make(name)

    # text-level -------------------------------------------------------------------------------
    def _text(self, name: str) -> str:
        return self.originals[name].decode("utf-8")

    def flip(self, name: str) -> Mutant:
        data = bytearray(self.originals[name])
        for _ in range(self.rng.randint(1, 4)):
            data[self.rng.randrange(len(data))] = self.rng.randrange(256)
        return Mutant(name, "flip", bytes(data), "random bytes")

    def control(self, name: str) -> Mutant:
        lines = self._text(name).splitlines(keepends=True)
        char = self.rng.choice(CONTROL)
        i = self.rng.randrange(len(lines))
        if self.rng.random() < 0.5:
            lines.insert(i, f"# a comment {char} here\n")
        else:
            at = self.rng.randrange(len(lines[i]) + 1)
            lines[i] = lines[i][:at] + char + lines[i][at:]
        return Mutant(name, "control", "".join(lines).encode("utf-8", "surrogatepass"), f"U+{ord(char[0]):04X}")

    def deep(self, name: str) -> Mutant:
        depth = self.rng.choice([40, 63, 64, 65, 100, 1000, 5000, 60_000])
        style = self.rng.choice(["flow_list", "flow_map", "block"])
        if style == "flow_list":
            value = "[" * depth + "]" * depth
        elif style == "flow_map":
            value = "{a: " * depth + "1" + "}" * depth
        else:
            depth = min(depth, 2000)
            value = "\n" + "".join("  " * (i + 1) + "- \n" for i in range(depth))
        return self._set_line_value(name, value, f"{style} nested {depth} deep", "deep")

    def alias(self, name: str) -> Mutant:
        variant = self.rng.choice(["laughs", "recursive", "valid", "undefined", "many"])
        if variant == "laughs":
            width, levels = self.rng.choice([(9, 9), (10, 7), (4, 12), (2, 30)])
            block = "lol0: &l0 [" + ",".join(["x"] * width) + "]\n"
            block += "".join(f"lol{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * width) + "]\n" for i in range(1, levels))
            return self._append(name, block, f"billion laughs {width}^{levels}", "alias")
        if variant == "recursive":
            return self._set_line_value(name, self.rng.choice(["&a [*a]", "&a {x: *a}", "&a [1, [2, *a]]"]),
                                        "recursive alias", "alias")
        if variant == "many":
            block = "anchor_x: &ax 1\nmany: [" + ",".join(["*ax"] * self.rng.choice([999, 1001, 5000])) + "]\n"
            return self._append(name, block, "many aliases", "alias")
        if variant == "undefined":
            return self._set_line_value(name, "*nowhere", "undefined alias", "alias")
        # a valid anchor/alias pair on two values of the file
        lines = self._text(name).splitlines(keepends=True)
        candidates = [i for i, line in enumerate(lines) if re.match(r"^\s*-?\s*[\w$.-]+:\s+\S", line)]
        if len(candidates) < 2:
            return self.flip(name)
        a, b = sorted(self.rng.sample(candidates, 2))
        lines[a] = re.sub(r"^(\s*-?\s*[\w$.-]+:\s+)", r"\1&anc ", lines[a], count=1)
        lines[b] = re.sub(r"^(\s*-?\s*[\w$.-]+:\s+)(.*)$", r"\1*anc", lines[b].rstrip("\n"), count=1) + "\n"
        return Mutant(name, "alias", "".join(lines).encode("utf-8"), f"alias of line {a + 1} at line {b + 1}")

    def tag(self, name: str) -> Mutant:
        tag = self.rng.choice(TAGS)
        lines = self._text(name).splitlines(keepends=True)
        candidates = [i for i, line in enumerate(lines) if re.match(r"^\s*-?\s*[\w$.-]+:\s", line)]
        i = self.rng.choice(candidates)
        lines[i] = re.sub(r"^(\s*-?\s*[\w$.-]+:)(\s)", lambda m: f"{m.group(1)} {tag}{m.group(2)}", lines[i], count=1)
        return Mutant(name, "tag", "".join(lines).encode("utf-8"), tag)

    def huge(self, name: str) -> Mutant:
        variant = self.rng.choice(["string", "file", "number", "keys"])
        if variant == "string":
            n = self.rng.choice([19_999, 20_001, 200_000])
            return self._set_line_value(name, '"' + "y" * n + '"', f"a {n}-character text", "huge")
        if variant == "number":
            return self._set_line_value(name, "9" * self.rng.choice([99, 101, 5000]), "a long number", "huge")
        if variant == "keys":
            block = "".join(f"k{i}: {i}\n" for i in range(self.rng.choice([1000, 60_000])))
            return self._append(name, block, "many keys", "huge")
        text = self._text(name)
        target = self.rng.choice([900_000, 1_100_000])
        filler = "# " + "z" * 97 + "\n"
        return Mutant(name, "huge", (text + filler * (target // len(filler))).encode("utf-8"), f"a file of ~{target} bytes")

    def lines(self, name: str) -> Mutant:
        lines = self._text(name).splitlines(keepends=True)
        op = self.rng.choice(["delete", "duplicate", "swap", "truncate", "indent"])
        i, j = self.rng.randrange(len(lines)), self.rng.randrange(len(lines))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap":
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "indent":
            lines[i] = "  " + lines[i]
        else:
            text = "".join(lines)
            return Mutant(name, "lines", text[: self.rng.randrange(len(text))].encode("utf-8"), "truncated")
        return Mutant(name, "lines", "".join(lines).encode("utf-8"), f"{op} line {i + 1}")

    def number_text(self, name: str) -> Mutant:
        text = self._text(name)
        spots = [m for m in re.finditer(r"(?<![\w.$\-])-?\d+(?:\.\d+)?(?![\w.:\-])", text)]
        if not spots:
            return self.value(name)
        m = self.rng.choice(spots)
        literal = self.rng.choice(ODD_NUMBER_LITERALS)
        line = text.count("\n", 0, m.start()) + 1
        return Mutant(name, "number", (text[: m.start()] + literal + text[m.end():]).encode("utf-8"),
                      f"{m.group()} -> {literal} at line {line}")

    def _set_line_value(self, name: str, value: str, note: str, kind: str) -> Mutant:
        lines = self._text(name).splitlines(keepends=True)
        candidates = [i for i, line in enumerate(lines) if re.match(r"^\s*-?\s*[\w$.-]+:\s*\S", line)]
        i = self.rng.choice(candidates)
        lines[i] = re.sub(r"^(\s*-?\s*[\w$.-]+:)\s*.*$", lambda m: f"{m.group(1)} {value}", lines[i].rstrip("\n"), count=1)
        return Mutant(name, kind, ("".join(lines[:i]) + lines[i] + "\n" + "".join(lines[i + 1:])).encode("utf-8"),
                      f"{note} at line {i + 1}")

    def _append(self, name: str, block: str, note: str, kind: str) -> Mutant:
        text = self._text(name)
        return Mutant(name, kind, (text.rstrip("\n") + "\n" + block).encode("utf-8"), note)

    # tree-level -------------------------------------------------------------------------------
    def _tree(self, name: str) -> Any:
        return json.loads(json.dumps(self.trees[name], default=str))  # a deep copy (dates as text)

    def _pick(self, tree: Any, want: Callable[[tuple[Any, ...], Any], bool] = lambda p, v: True) -> tuple[Any, ...] | None:
        paths = [p for p in _paths(tree) if p and want(p, _get(tree, p))]
        return self.rng.choice(paths) if paths else None

    def value(self, name: str) -> Mutant:
        tree = self._tree(name)
        path = self._pick(tree)
        if path is None:
            return self.flip(name)
        new = self.rng.choice(ODD_VALUES)
        _get(tree, path[:-1])[path[-1]] = new
        empty = new == {} and any(k in CONDITION_KEYS for k in path if isinstance(k, str))
        return Mutant(name, "value", _dump(tree), f"{'.'.join(map(str, path))} = {str(new)[:40]!r}", empty_condition=empty)

    def delete(self, name: str) -> Mutant:
        tree = self._tree(name)
        path = self._pick(tree)
        if path is None:
            return self.flip(name)
        del _get(tree, path[:-1])[path[-1]]
        return Mutant(name, "delete", _dump(tree), ".".join(map(str, path)))

    def rename(self, name: str) -> Mutant:
        tree = self._tree(name)
        path = self._pick(tree, lambda p, v: isinstance(p[-1], str))
        if path is None:
            return self.flip(name)
        parent, key = _get(tree, path[:-1]), path[-1]
        new_key = self.rng.choice([key[:-1] or "k", key + "s", "$" + key, key.upper(), "x" * 300, "<<", "1", "true", "null"])
        if new_key in parent:
            return self.delete(name)
        parent[new_key] = parent.pop(key)
        return Mutant(name, "rename", _dump(tree), f"{'.'.join(map(str, path))} -> {new_key[:40]}")

    def type_swap(self, name: str) -> Mutant:
        tree = self._tree(name)
        path = self._pick(tree)
        if path is None:
            return self.flip(name)
        old = _get(tree, path)
        new = self.rng.choice([[old], {"value": old}, str(old), 1, True, None, [], {}])
        _get(tree, path[:-1])[path[-1]] = new
        empty = new == {} and any(k in CONDITION_KEYS for k in path if isinstance(k, str))
        return Mutant(name, "type", _dump(tree), f"{'.'.join(map(str, path))} as {type(new).__name__}", empty_condition=empty)

    def empty_condition(self, name: str) -> Mutant:
        tree = self._tree(name)
        path = self._pick(tree, lambda p, v: not isinstance(v, list) and any(k in CONDITION_KEYS for k in p))
        if path is None:
            return self.value(name)
        _get(tree, path[:-1])[path[-1]] = {}
        return Mutant(name, "empty", _dump(tree), ".".join(map(str, path)), empty_condition=True)

    def param_test(self, name: str) -> Mutant:
        tree = self._tree(name)
        path = self._pick(tree, lambda p, v: p[-1] in ("when", "due") and isinstance(v, dict))
        if path is None:
            return self.value(name)
        test = self.rng.choice(PARAM_TESTS)
        param = self.rng.choice(["$crp_limit_mg_l", "$policy", "$min_signs", "$nope", "$oxford_crp_mg_l", "$rescue_policy"])
        _get(tree, path)[param] = test
        return Mutant(name, "param", _dump(tree), f"{param}: {test!r} in {'.'.join(map(str, path))}",
                      empty_condition=test == {})

    def path(self, name: str) -> Mutant:
        attack = self.rng.choice(PATH_ATTACKS).replace("{outside}", str(self.outside))
        if self.rng.random() < 0.15 and any(f.startswith("profiles/") for f in self.files):
            profile = self.rng.choice([f for f in self.files if f.startswith("profiles/")])

            def link_profile(root: Path, outside: Path, profile: str = profile) -> None:
                (root / profile).unlink()
                (root / profile).symlink_to(outside / "secret.yaml")
            return Mutant(profile, "path", None, f"{profile} is a link out of the folder", link_profile)
        tree = self._tree("pathway.yaml")
        key = self.rng.choice(["rule_files", *FILE_KEYS, "default_profile"])
        if key == "rule_files":
            files = tree.get("rule_files") or []
            if files and self.rng.random() < 0.5:
                files[self.rng.randrange(len(files))] = attack
            else:
                files.append(attack)
            tree["rule_files"] = files
        else:
            tree[key] = attack.removesuffix(".yaml") if key == "default_profile" else attack
        return Mutant("pathway.yaml", "path", _dump(tree), f"{key}: {attack[:60]!r}", _setup_paths)


# -- running a mutant --------------------------------------------------------------------------

class _Timeout(BaseException):
    """Raised by the alarm when a mutant runs past the time limit (not an Exception: nothing may catch it)."""


def _alarm(signum: int, frame: Any) -> None:
    raise _Timeout()


def _numbers(data: Any) -> Iterator[Any]:
    if isinstance(data, dict):
        for v in data.values():
            yield from _numbers(v)
    elif isinstance(data, (list, tuple)):
        for v in data:
            yield from _numbers(v)
    elif isinstance(data, (int, float)) and not isinstance(data, bool):
        yield data


def _finite_positive(value: Any, *, zero: bool = False, at_most: float | None = None) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    return (value >= 0 if zero else value > 0) and (at_most is None or value <= at_most)


def accepted_but_wrong(definition: Any, compiled: Any, mutant: Mutant) -> list[str]:
    """What a loaded mutant holds that is wrong (the kinds the issue found accepted)."""
    wrong: list[str] = []
    if mutant.empty_condition:
        wrong.append("an empty mapping was accepted as a condition")
    for name, value in definition.params.items():
        if isinstance(value, float) and not math.isfinite(value):
            wrong.append(f"parameter {name} = {value!r}")
    for name, f in definition.fields.items():
        if f is not None and f.range is not None and not (math.isfinite(f.range[0]) and math.isfinite(f.range[1])
                                                          and f.range[0] <= f.range[1]):
            wrong.append(f"field {name} range {f.range}")
    for rule in definition.rules:
        conds = [rule.due, rule.when]
        for effect in (*rule.then, *rule.otherwise, *rule.if_missing):
            if isinstance(effect, Dose):
                for key in ("mg_per_kg_per_day", "mg_per_kg", "times_per_day", "round_to_mg", "max_mg_per_dose"):
                    v = getattr(effect, key)
                    if v is not None and not _finite_positive(v):
                        wrong.append(f"rule {rule.id}: dose {key} = {v!r}")
                for tname, (low, high) in effect.targets.items():
                    if not (_finite_positive(low, zero=True) and _finite_positive(high, zero=True) and low <= high):
                        wrong.append(f"rule {rule.id}: target {tname} [{low!r}, {high!r}]")
            elif isinstance(effect, Titrate):
                for key in ("target", "times_per_day", "round_to_mg"):
                    if not _finite_positive(getattr(effect, key)):
                        wrong.append(f"rule {rule.id}: titrate {key} = {getattr(effect, key)!r}")
                frac = effect.max_change_fraction
                if frac is not None and not _finite_positive(frac, at_most=1):
                    wrong.append(f"rule {rule.id}: titrate max_change_fraction = {frac!r}")
            elif isinstance(effect, Offer) and not _finite_positive(effect.rank, zero=True):
                wrong.append(f"rule {rule.id}: rank {effect.rank!r}")
            elif isinstance(effect, Recommend) and effect.medication is not None:
                for key in ("dose_mg", "times_per_day"):
                    v = getattr(effect.medication, key)
                    if v is not None and not _finite_positive(v):
                        wrong.append(f"rule {rule.id}: medication {key} = {v!r}")
            elif isinstance(effect, Score):
                if effect.round_to is not None and not _finite_positive(effect.round_to):
                    wrong.append(f"rule {rule.id}: score round_to = {effect.round_to!r}")
                conds += [item.when for item in effect.items]
        for cond in conds:
            for cmp in C.fields_of(cond):
                if any(isinstance(v, float) and not math.isfinite(v) for v in _numbers([cmp.value])):
                    wrong.append(f"rule {rule.id}: {cmp.field} {cmp.op} {cmp.value!r}")
    unreadable = [v for v in _numbers(compiled.rulesets) if not engine_reads(v)]
    if unreadable:
        wrong.append(f"thresholds durable_rules cannot read: {unreadable[:3]}")
    return wrong


def _course(definition: Any) -> dict[str, Any]:
    if definition.id == "asuc":
        return yaml.safe_load((ASUC / "cases" / "demo.yaml").read_text(encoding="utf-8"))
    return {"patient": {"id": "fuzz", "weight_kg": 70},
            "events": [{"day": 0, "crp_mg_l": 150, "stool_freq_24h": 8, "bloody_stools_24h": 3, "visible_blood": True},
                       {"day": 1, "daily_dose_mg": 4, "trough_ng_ml": 5, "crp_mg_l": 40, "visible_blood": True},
                       {"day": 2, "crp_mg_l": 0.00005, "visible_blood": False},
                       {"day": 3, "perforation": True}]}


def run_course(definition: Any) -> list[str]:
    """Run a short course through a loaded mutant: results are strict JSON, doses positive."""
    from pathway.runtime.api import Pathway

    wrong: list[str] = []
    pathway = Pathway(definition)
    case = _course(definition)
    try:
        _, results = pathway.run_course(case)
    except InputError:  # a mutated field may refuse the course's values: not a fault of the loader
        return wrong
    except EngineError as exc:
        if "already derived" in str(exc):  # two rules derive different values: a logic error (pathway check, PW615)
            return wrong
        return [f"engine error: {str(exc)[:200]}"]
    for result in results:
        try:
            json.dumps(result, allow_nan=False)
        except ValueError:
            wrong.append("a result that is not strict JSON")
        for rec in result["recommendations"]:
            med = rec.get("medication") or {}
            for key in ("dose_mg", "daily_mg"):
                if key in med and not _finite_positive(med[key]):
                    wrong.append(f"{rec['rule']}: {key} {med[key]!r}")
    return wrong


@dataclass
class Outcome:
    status: str  # loaded | refused | traceback | slow | wrong | bad-diagnostic
    seconds: float
    detail: str = ""
    codes: tuple[str, ...] = ()
    course: bool = False


@dataclass
class Tally:
    """Counts of one fuzz run (what the closing report of issue 14 lists)."""

    mutants: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    slowest: float = 0.0
    courses: int = 0
    seconds: float = 0.0

    def add(self, mutant: Mutant, outcome: Outcome) -> None:
        self.mutants += 1
        self.statuses[outcome.status] += 1
        self.kinds[mutant.kind] += 1
        self.codes.update(outcome.codes)
        self.slowest = max(self.slowest, outcome.seconds)
        self.seconds += outcome.seconds
        if outcome.status not in ("loaded", "refused"):
            self.failures.append(f"{outcome.status}: {mutant.describe()} -> {outcome.detail}")


def _check_diagnostics(exc: DefinitionError, root: Path) -> list[str]:
    problems = []
    real_root = root.resolve()
    if SECRET in str(exc) or SECRET.lower() in str(exc):
        problems.append("a diagnostic quotes the file outside the pathway folder")
    for d in exc.diagnostics:
        if d.code not in CODES or d.code == "PW129":
            problems.append(f"code {d.code}: {d}")
        if d.line < 1 or d.col < 1:
            problems.append(f"no line and column: {d}")
        try:  # the folder the named file lies in (a link named by the diagnostic is inside the folder itself)
            shown = Path(d.file)
            inside = (shown.parent.resolve() / shown.name).is_relative_to(real_root)
        except (OSError, ValueError, RuntimeError):
            inside = False
        if not inside:
            problems.append(f"outside the folder: {d}")
    return problems


class Folder:
    """A copy of a pathway folder that mutants change one file at a time.

    Unchanged files keep their time stamps, so the loader's parse cache (keyed by path, time stamp
    and size) serves them; a mutated file gets a time stamp no other version of it had.
    """

    def __init__(self, source: Path, workdir: Path):
        self.root, self.outside = (workdir / source.name).resolve(), (workdir / "outside").resolve()
        shutil.copytree(source, self.root, ignore=shutil.ignore_patterns("scenarios", "cases"))
        self.outside.mkdir()
        (self.outside / "secret.yaml").write_text(SECRET_TEXT, encoding="utf-8")
        self.originals = _originals(self.root)
        self.stamps = {name: (self.root / name).stat().st_mtime_ns for name in self.originals}
        self.cache: dict[str, Any] = {}
        self.version = 0

    def apply(self, mutant: Mutant) -> None:
        if mutant.text is not None:
            target = self.root / mutant.file
            target.write_bytes(mutant.text)
            self.version += 1
            stamp = self.stamps[mutant.file] + 1_000_000_007 * self.version
            os.utime(target, ns=(stamp, stamp))
        if mutant.setup is not None:
            mutant.setup(self.root, self.outside)

    def restore(self, mutant: Mutant, before: set[str]) -> None:
        target = self.root / mutant.file
        for name in set(os.listdir(self.root)) - before:
            path = self.root / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        if target.is_symlink():
            target.unlink()
        target.write_bytes(self.originals[mutant.file])
        stamp = self.stamps[mutant.file]
        os.utime(target, ns=(stamp, stamp))
        stale = [key for key in self.cache if str(self.root / mutant.file) in key and f"\0{stamp}\0" not in key]
        for key in stale:
            del self.cache[key]


def run_mutant(folder: Folder, mutant: Mutant, *, course: bool) -> Outcome:
    """Apply ``mutant`` to the pathway folder, load it under the time limit, classify, then restore the folder."""
    root = folder.root
    before = set(os.listdir(root))
    folder.apply(mutant)
    profile = Path(mutant.file).stem if mutant.file.startswith("profiles/") else None
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT)
    start = time.perf_counter()
    outcome_course = False
    try:
        definition = load_definition(root, profile=profile, yaml_cache=folder.cache)
        compiled = compile_pathway(definition)
        wrong = accepted_but_wrong(definition, compiled, mutant)
        if course and not wrong:
            wrong = run_course(definition)
            outcome_course = True
        outcome = Outcome("wrong" if wrong else "loaded", 0.0, "; ".join(wrong)[:400], course=outcome_course)
    except _Timeout:
        outcome = Outcome("slow", 0.0, f"over {TIME_LIMIT:g} s")
    except DefinitionError as exc:
        problems = _check_diagnostics(exc, root)
        outcome = Outcome("bad-diagnostic" if problems else "refused", 0.0, "; ".join(problems)[:400],
                          tuple(sorted(set(exc.codes))))
    except Exception as exc:  # noqa: BLE001 - a raw traceback is what the fuzzer looks for
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        where = f"{tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}" if tb else "?"
        outcome = Outcome("traceback", 0.0, f"{type(exc).__name__} at {where}: {str(exc)[:160]}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        outcome.seconds = time.perf_counter() - start
        folder.restore(mutant, before)
    if outcome.seconds > TIME_LIMIT and outcome.status in ("loaded", "refused"):
        outcome.status, outcome.detail = "slow", f"{outcome.seconds:.1f} s"
    return outcome


def _originals(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.yaml"))
            if "scenarios" not in p.parts and "cases" not in p.parts}


def fuzz(source: Path, workdir: Path, budget: int, seed: int, courses: int) -> Tally:
    """Run ``budget`` seeded mutants of the pathway folder ``source`` in a copy under ``workdir``; the
    first ``courses`` mutants that load also run a short course."""
    folder = Folder(source, workdir)
    mutate = Mutator(folder.originals, random.Random(seed), folder.outside)
    tally = Tally()
    for _ in range(budget):
        mutant = mutate()
        outcome = run_mutant(folder, mutant, course=tally.courses < courses)
        tally.courses += outcome.course
        tally.add(mutant, outcome)
    return tally


# -- the fuzz tests ----------------------------------------------------------------------------

def test_the_fuzzed_pathway_is_valid_as_shipped() -> None:
    definition = load_definition(MINI)
    assert definition.profile == "site" and {r.id for r in definition.rules} >= {"steroid_dose", "level_guided_dose"}
    assert accepted_but_wrong(definition, compile_pathway(definition), Mutant("-", "-", None)) == []
    assert run_course(definition) == []


def test_every_mutant_of_a_small_pathway_loads_or_is_refused_with_located_codes(tmp_path: Path) -> None:
    tally = fuzz(MINI, tmp_path, BUDGET, SEED, ENGINE_RUNS)
    assert tally.mutants == BUDGET
    assert tally.failures == [], f"{len(tally.failures)} of {tally.mutants} mutants failed:\n" + "\n".join(tally.failures[:30])
    assert tally.slowest <= TIME_LIMIT
    # the mutations reach every kind of refusal this fuzzer is about
    assert {"PW100", "PW112", "PW121", "PW122", "PW124", "PW125", "PW240", "PW241"} <= set(tally.codes), tally.codes
    assert tally.statuses["loaded"] > BUDGET // 20 and tally.courses > 0


def test_every_mutant_of_the_asuc_pathway_loads_or_is_refused_with_located_codes(tmp_path: Path) -> None:
    tally = fuzz(ASUC, tmp_path, ASUC_BUDGET, SEED + 1, max(3, ASUC_BUDGET // 10))
    assert tally.failures == [], f"{len(tally.failures)} of {tally.mutants} mutants failed:\n" + "\n".join(tally.failures[:30])
    assert tally.slowest <= TIME_LIMIT


# -- the regression corpus: one test for every reproducer of the issue ------------------------

def _mini(tmp_path: Path) -> Path:
    root = tmp_path / "mini"
    shutil.copytree(MINI, root)
    return root


def _edit(root: Path, file: str, old: str, new: str) -> int:
    """Replace ``old`` (once) by ``new`` in a file of the folder; the 1-based line where it was."""
    path = root / file
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} must occur once in {file}"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def _refused(root: Path, profile: str | None = None, **kwargs: Any) -> list[Any]:
    with pytest.raises(DefinitionError) as info:
        load_definition(root, profile=profile, **kwargs)
    return info.value.diagnostics


def _only(diags: list[Any], code: str, file: str | None = None, line: int | None = None) -> Any:
    assert [d.code for d in diags] == [code], "\n".join(map(str, diags))
    (d,) = diags
    if file is not None:
        assert d.file.endswith(file), str(d)
    if line is not None:
        assert d.line == line, str(d)
    assert d.col >= 1 and SECRET not in str(d)
    return d


def test_a_control_byte_inside_a_comment_is_a_located_error(tmp_path: Path) -> None:
    root = _mini(tmp_path)
    line = _edit(root, "rules.yaml", "  - id: activity_score\n", "  # a comment with a bell \x07 in it\n  - id: activity_score\n")
    d = _only(_refused(root), "PW100", "rules.yaml", line)
    assert d.col == 27 and "U+0007" in d.message


@pytest.mark.parametrize("depth, code", [(64, None), (65, "PW121"), (600, "PW121"), (100_000, "PW121")])
def test_nesting_is_limited_to_64_levels(depth: int, code: str | None) -> None:
    from pathway.core.yamlsafe import RULE_FILE_LIMITS, YamlProblem, load_yaml_text

    text = "x: " + "[" * (depth - 1) + "]" * (depth - 1) + "\n"  # the top mapping is the first level
    if code is None:
        assert load_yaml_text(text, "f.yaml", RULE_FILE_LIMITS).data["x"] is not None
        return
    with pytest.raises(YamlProblem) as info:
        load_yaml_text(text, "f.yaml", RULE_FILE_LIMITS)
    assert (info.value.diagnostic.code, info.value.diagnostic.line, info.value.diagnostic.col) == (code, 1, 4 + 64 - 1)


@pytest.mark.parametrize("value", ["&a [*a]", "&a {x: *a}", "&a [1, [2, {y: *a}]]"])
def test_a_recursive_alias_is_refused(tmp_path: Path, value: str) -> None:
    root = _mini(tmp_path)
    line = _edit(root, "rules.yaml", "title: Rules of the small pathway\n", f"title: Rules\nx: {value}\n")
    d = _only(_refused(root), "PW122", "rules.yaml", line + 1)
    assert "recursive alias" in d.message


@pytest.mark.parametrize("width, levels", [(9, 9), (10, 10), (2, 40)])
def test_a_billion_laughs_is_refused_in_well_under_a_second(tmp_path: Path, width: int, levels: int) -> None:
    root = _mini(tmp_path)
    block = "lol0: &l0 [" + ",".join(["lol"] * width) + "]\n"
    block += "".join(f"lol{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * width) + "]\n" for i in range(1, levels))
    _edit(root, "rules.yaml", "title: Rules of the small pathway\n", block)
    start = time.perf_counter()
    d = _only(_refused(root), "PW122", "rules.yaml")
    assert time.perf_counter() - start < 1.0
    assert "expands through its aliases" in d.message or "deeper than 64" in d.message


def test_too_many_aliases_are_refused(tmp_path: Path) -> None:
    root = _mini(tmp_path)
    _edit(root, "rules.yaml", "title: Rules of the small pathway\n", "a: &a 1\nb: [" + ",".join(["*a"] * 1001) + "]\n")
    assert "more than 1,000 aliases" in _only(_refused(root), "PW122", "rules.yaml", 2).message


def test_a_file_or_a_text_too_large_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    root = _mini(tmp_path)
    (root / "rules.yaml").write_text("# " + "x" * 1_000_000 + "\n", encoding="utf-8")
    start = time.perf_counter()
    assert "larger than 1,000,000 bytes" in _only(_refused(root), "PW120", "rules.yaml", 1).message
    assert time.perf_counter() - start < 1.0
    root = _mini(tmp_path / "b")
    line = _edit(root, "rules.yaml", "title: Rules of the small pathway\n", "title: " + "t" * 20_001 + "\n")
    _only(_refused(root), "PW123", "rules.yaml", line)


def test_the_pathway_s_files_together_are_limited(tmp_path: Path) -> None:
    root = _mini(tmp_path)
    values = "".join(f"  - [{','.join(['1'] * 99)}]\n" for _ in range(700))  # ~70,000 values a file
    for name in ("big1.yaml", "big2.yaml"):
        (root / name).write_text("rules:\n" + values, encoding="utf-8")
    _edit(root, "pathway.yaml", "  - sub/doses.yaml\n", "  - sub/doses.yaml\n  - big1.yaml\n  - big2.yaml\n")
    diags = _refused(root)
    assert any(d.code == "PW120" and d.file.endswith("big2.yaml") and "together" in d.message for d in diags)


@pytest.mark.parametrize("name, code, fragment", [
    ("/etc/passwd", "PW240", "absolute path"),
    ("{outside}/secret.yaml", "PW240", "absolute path"),
    ("../outside/secret.yaml", "PW240", "'..' part"),
    ("sub/../../outside/secret.yaml", "PW240", "'..' part"),
    ("C:\\\\Windows\\\\win.ini", "PW240", "absolute path"),
    ("x\0y.yaml", "PW240", "control character"),
    ("link.yaml", "PW241", "symbolic link"),
    ("linkdir/secret.yaml", "PW241", "symbolic link"),
    ("devzero.yaml", "PW241", "symbolic link"),
    ("loop.yaml", "PW242", "cannot be resolved"),
    ("fifo.yaml", "PW242", "not a regular file"),
    ("a" * 300 + ".yaml", "PW242", "File name too long"),
    ("sub", "PW002", "not found"),
])
def test_every_file_a_pathway_names_lies_inside_its_folder(tmp_path: Path, name: str, code: str, fragment: str) -> None:
    root = _mini(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.yaml").write_text(SECRET_TEXT, encoding="utf-8")
    _setup_paths(root, outside)
    entry = json.dumps(name.replace("{outside}", str(outside)))[1:-1]
    line = _edit(root, "pathway.yaml", "  - sub/doses.yaml\n", f'  - sub/doses.yaml\n  - "{entry}"\n') + 1
    d = _only(_refused(root), code, "pathway.yaml", line)
    assert fragment in d.message


@pytest.mark.parametrize("key", FILE_KEYS)
def test_the_other_file_keys_are_confined_too(tmp_path: Path, key: str) -> None:
    root = _mini(tmp_path)
    text = (root / "pathway.yaml").read_text(encoding="utf-8")
    if f"{key}:" in text:
        _edit(root, "pathway.yaml", f"{key}: ", f"{key}: ../outside/x.yaml\nold_{key}: ")
        _edit(root, "pathway.yaml", f"old_{key}: ", "# ")
    else:
        _edit(root, "pathway.yaml", "rule_files:\n", f"{key}: ../outside/x.yaml\nrule_files:\n")
    assert any(d.code == "PW240" and d.file.endswith("pathway.yaml") for d in _refused(root))


def test_a_profile_that_links_out_of_the_folder_is_not_read(tmp_path: Path) -> None:
    root = _mini(tmp_path)
    (tmp_path / "secret.yaml").write_text(SECRET_TEXT, encoding="utf-8")
    (root / "profiles" / "strict.yaml").unlink()
    (root / "profiles" / "strict.yaml").symlink_to(tmp_path / "secret.yaml")
    d = _only(_refused(root, "strict"), "PW241")
    assert d.file.endswith("strict.yaml") and (d.line, d.col) == (1, 1)


def test_the_field_reference_does_not_read_a_profile_that_links_out(tmp_path: Path) -> None:
    from pathway.authoring.fieldref import field_reference

    root = _mini(tmp_path)
    (tmp_path / "secret.yaml").write_text(SECRET_TEXT, encoding="utf-8")
    (root / "profiles" / "strict.yaml").unlink()
    (root / "profiles" / "strict.yaml").symlink_to(tmp_path / "secret.yaml")
    definition = load_definition(root)  # the default profile, 'site', is a real file
    with pytest.raises(DefinitionError) as info:
        field_reference(definition)
    _only(info.value.diagnostics, "PW241", "strict.yaml")


def test_a_link_inside_the_folder_is_followed(tmp_path: Path) -> None:
    root = _mini(tmp_path)
    (root / "rules.yaml").rename(root / "sub" / "rules.yaml")
    (root / "rules.yaml").symlink_to(root / "sub" / "rules.yaml")
    assert load_definition(root).rules


@pytest.mark.parametrize("test, message", [
    ("{in: 5}", "'in' takes a non-empty list"),
    ("{gt: [1]}", "'gt' takes one value"),
    ("{gt: $policy}", "'gt' compares with a number"),
    ("{lt: {a: 1}}", "'lt' takes one value"),
    ("{not_in: [[1]]}", "'not_in' takes a non-empty list"),
    ("{}", "an empty mapping tests nothing"),
])
def test_a_test_on_a_parameter_of_the_wrong_shape_is_located(tmp_path: Path, test: str, message: str) -> None:
    root = _mini(tmp_path)
    line = _edit(root, "rules.yaml", "    when: {$policy: {in: [usual, strict]}}\n",
                 f"    when: {{$policy: {{in: [usual, strict]}}, $crp_limit_mg_l: {test}}}\n")
    assert message in _only(_refused(root), "PW112", "rules.yaml", line).message


def test_an_empty_mapping_is_not_a_condition_that_always_holds(tmp_path: Path) -> None:
    root = _mini(tmp_path)
    line = _edit(root, "rules.yaml", "    when: {visible_blood: false, crp_mg_l: {lt: 10}}\n",
                 "    when: {visible_blood: false, crp_mg_l: {}}\n")
    assert "or 'true' for a condition that always holds" in _only(_refused(root), "PW112", "rules.yaml", line).message
    root = _mini(tmp_path / "b")
    _edit(root, "rules.yaml", "    when: {visible_blood: false, crp_mg_l: {lt: 10}}\n", "    when: true\n")
    assert load_definition(root).rules  # 'true' is the way to say always


@pytest.mark.parametrize("literal, code", [("1.0e+300", "PW125"), (".inf", "PW124"), ("-.inf", "PW124"), (".nan", "PW124"),
                                           ("1.0e+400", "PW124"), ("99999999999999999999999", "PW125"),
                                           ("1.0e-13", "PW125"), ("7" * 101, "PW125"),
                                           # YAML 1.1 numbers that are texts in YAML 1.2: a number was expected
                                           ("0x_", "PW112"), ("1:30", "PW112"), ("1_000", "PW112")])
def test_numbers_are_finite_and_within_range(tmp_path: Path, literal: str, code: str) -> None:
    root = _mini(tmp_path)
    line = _edit(root, "rules.yaml", "        - stool_freq_24h: {gte: 6}\n", f"        - stool_freq_24h: {{gte: {literal}}}\n")
    d = _only(_refused(root), code, "rules.yaml", line)
    assert d.col == len("        - stool_freq_24h: {gte: ") + 1


@pytest.mark.parametrize("value, code", [(float("nan"), "PW124"), (float("inf"), "PW124"), (1e300, "PW125")])
def test_a_parameter_override_is_a_finite_number_in_range(tmp_path: Path, value: float, code: str) -> None:
    d = _only(_refused(MINI, overrides={"crp_limit_mg_l": value}), code, "pathway.yaml")
    assert "override of 'crp_limit_mg_l'" in d.message


def _threshold_pathway(tmp_path: Path, literal: str, op: str) -> Path:
    root = _mini(tmp_path)
    _edit(root, "rules.yaml", "    when: {visible_blood: false, crp_mg_l: {lt: 10}}\n",
          f"    when: {{crp_mg_l: {{{op}: {literal}}}}}\n")
    return root


@pytest.mark.parametrize("literal", ["0.00005", "1.0e-5", "0.0000123", "2.5e-7", "1.0e-12"])
@pytest.mark.parametrize("op", ["gt", "gte", "lt", "lte"])
def test_a_threshold_durable_cannot_read_as_written_evaluates_exactly(tmp_path: Path, literal: str, op: str) -> None:
    """Thresholds below 1e-4 reach durable_rules rewritten into an exact equivalent it can read."""
    from pathway.runtime.api import Pathway

    pathway = Pathway(load_definition(_threshold_pathway(tmp_path, literal, op)))
    t = float(literal)
    holds = {"gt": lambda x: x > t, "gte": lambda x: x >= t, "lt": lambda x: x < t, "lte": lambda x: x <= t}[op]
    for x in (t, math.nextafter(t, 0), math.nextafter(t, 1), t * 2, t / 2, 0.0):
        session = pathway.start({"id": "p", "weight_kg": 70})
        session.observe({"day": 0, "crp_mg_l": 150, "stool_freq_24h": 8, "visible_blood": True})
        assert session.state == "treatment"
        result = session.observe({"day": 1, "crp_mg_l": x})
        assert (result["state"] == "discharged") == holds(x), (op, literal, x)


def test_the_compiler_rewrites_every_threshold_durable_cannot_read() -> None:
    from pathway.runtime.compile import engine_reads, engine_safe

    assert not engine_reads(5e-05) and engine_reads(0.0001) and engine_reads(1.5e-05) and not engine_reads(float("nan"))
    assert engine_safe({"$gt": {"x": 5e-05}}) == {"$gte": {"x": math.nextafter(5e-05, 1)}}
    assert engine_safe({"x": 5e-05}) == {"$and": [{"$gt": {"x": math.nextafter(5e-05, 0)}},
                                                  {"$lt": {"x": math.nextafter(5e-05, 1)}}]}
    assert engine_safe({"$neq": {"x": 1e-05}}) == {"$or": [{"$lte": {"x": math.nextafter(1e-05, 0)}},
                                                           {"$gte": {"x": math.nextafter(1e-05, 1)}}]}
    assert engine_safe({"$and": [{"_k": "case"}, {"$lt": {"x": 0.5}}]}) == {"$and": [{"_k": "case"}, {"$lt": {"x": 0.5}}]}


def test_durable_reads_the_rewritten_thresholds_exactly() -> None:
    """The equivalence the compiler relies on, checked against durable_rules itself on random floats."""
    import durable_rules_engine as core

    from pathway.runtime.compile import engine_safe
    from pathway.runtime.engine import message_text

    rng = random.Random(SEED)
    ops = {"$gt": lambda x, t: x > t, "$gte": lambda x, t: x >= t, "$lt": lambda x, t: x < t, "$lte": lambda x, t: x <= t,
           "$neq": lambda x, t: x != t, "=": lambda x, t: x == t}
    for i in range(60):
        t = rng.choice([rng.uniform(1e-12, 1e-4), float(rng.randint(1, 9)) * 10.0 ** -rng.randint(5, 12), rng.uniform(0, 100)])
        op = rng.choice(list(ops))
        cond = engine_safe({"x": t} if op == "=" else {op: {"x": t}})
        handle = core.create_ruleset(f"fuzz_threshold_{i}", json.dumps({"r": {"all": [{"m": cond}]}}))
        for x in (t, math.nextafter(t, 0), math.nextafter(t, 1), t * 3, t / 3):
            fact = message_text({"sid": "0", "x": x})
            matched = core.assert_fact(handle, fact)[0] == 0
            if matched:
                core.retract_fact(handle, fact)
            assert matched == ops[op](x, t), (op, t, x, cond)


@pytest.mark.parametrize("file, old, new, key", [
    ("sub/doses.yaml", "round_to_mg: 5", "round_to_mg: 0", "round_to_mg"),
    ("sub/doses.yaml", "mg_per_kg_per_day: $steroid_mg_kg_day", "mg_per_kg_per_day: -1", "mg_per_kg_per_day"),
    ("sub/doses.yaml", "round_to_mg: 5,", "round_to_mg: 5, times_per_day: 0,", "times_per_day"),
    ("sub/doses.yaml", "max_mg_per_dose: 60", "max_mg_per_dose: -60", "max_mg_per_dose"),
    ("sub/doses.yaml", "          target: 12.5\n", "          target: 0\n", "target"),
    ("sub/doses.yaml", "max_change_fraction: 0.5", "max_change_fraction: 1.5", "max_change_fraction"),
    ("sub/doses.yaml", "mg_per_kg: 5", "mg_per_kg: 0.001", "rounds to 0 mg"),
    ("rules.yaml", "rank: 1}", "rank: -1}", "rank"),
    ("rules.yaml", "dose_mg: 800", "dose_mg: -800", "dose_mg"),
    ("rules.yaml", "factor: 0.01", "factor: $policy", "factor"),
    ("rules.yaml", "          terms:\n", "          round_to: 0\n          terms:\n", "round_to"),
])
def test_doses_steps_and_ranks_are_positive(tmp_path: Path, file: str, old: str, new: str, key: str) -> None:
    root = _mini(tmp_path)
    line = _edit(root, file, old, new)
    d = _only(_refused(root), "PW112" if key == "factor" else "PW126", file)
    assert key in d.message and abs(d.line - line) <= 2


def test_a_profile_that_makes_a_dose_negative_is_named(tmp_path: Path) -> None:
    root = _mini(tmp_path)
    _edit(root, "profiles/strict.yaml", "step_mg: 1", "step_mg: -0.5")
    d = _only(_refused(root, "strict"), "PW126", "sub/doses.yaml")
    assert "'round_to_mg' must be above 0, not -0.5 (parameter '$step_mg', from profile 'strict')" in d.message
    assert load_definition(root).rules  # the default profile is fine


@pytest.mark.parametrize("file, old, new", [
    ("fields.yaml", "range: [25, 300]", "range: [300, 25]"),
    ("sub/doses.yaml", "targets: {trough_ng_ml: [3, 7]}", "targets: {trough_ng_ml: [7, 3]}"),
    ("rules.yaml", "between: [1, 60]", "between: [60, 1]"),
])
def test_ranges_are_ordered(tmp_path: Path, file: str, old: str, new: str) -> None:
    root = _mini(tmp_path)
    line = _edit(root, file, old, new)
    _only(_refused(root), "PW127", file, line)


@pytest.mark.parametrize("value", ["!!python/object/apply:os.system [\"true\"]", "!!set {a, b}", "!foo [a]", "!!str text",
                                   "!!omap [{a: 1}]", "!bar {x: 1}", "! plain"])
def test_yaml_tags_of_any_kind_are_refused(tmp_path: Path, value: str) -> None:
    root = _mini(tmp_path)
    line = _edit(root, "rules.yaml", "title: Rules of the small pathway\n", f"title: {value}\n")
    d = _only(_refused(root), "PW100", "rules.yaml", line)
    assert d.col == len("title: ") + 1 and "tag" in d.message


def test_the_loader_s_own_failure_is_a_located_error_not_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pathway.loading import loader

    def broken(self: Any, *args: Any) -> None:
        raise KeyError("what went wrong inside")

    monkeypatch.setattr(loader._Loader, "_check_field", broken)
    d = _only(_refused(MINI), "PW129", "fields.yaml")
    assert "KeyError" in d.message and "inside" not in d.message


def test_validate_checks_every_profile_the_pathway_ships(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pathway.cli.main import main

    assert main(["validate", str(MINI)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("profiles: site, strict")
    root = _mini(tmp_path)
    line = _edit(root, "profiles/strict.yaml", "  step_mg: 1\n", "  step_mg: 0\n")
    assert load_definition(root).profile == "site"  # the default profile loads
    assert main(["validate", str(root)]) == 2
    err = capsys.readouterr().err
    assert "doses.yaml:" in err and "'round_to_mg' must be above 0, not 0 (parameter '$step_mg', from profile 'strict')" in err
    _edit(root, "profiles/strict.yaml", "  step_mg: 0\n", "  step_mg: .nan\n")
    assert main(["validate", str(root)]) == 2
    assert f"strict.yaml:{line}:12: .nan is not a finite number" in capsys.readouterr().err


def test_the_command_line_prints_located_errors_and_no_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pathway.cli.main import main

    root = _mini(tmp_path)
    _edit(root, "rules.yaml", "title: Rules of the small pathway\n", "x: &a [*a]\n")
    assert main(["validate", str(root)]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "rules.yaml:1:8: alias '*a' refers to the value that contains it" in captured.err


@pytest.mark.parametrize("name, problem", [("rules.yaml", None), ("sub/doses.yaml", None), ("/etc/passwd", "absolute"),
                                           ("..", "'..'"), ("a/../b.yaml", "'..'"), ("C:x.yaml", "absolute"),
                                           ("\\\\host\\x.yaml", "absolute"), ("a\nb.yaml", "control"), ("  ", "empty")])
def test_path_problem(name: str, problem: str | None) -> None:
    from pathway.loading.loader import path_problem

    found = path_problem(name)
    assert (found is None) if problem is None else (problem in (found or ""))
