"""Load a pathway folder into a checked, resolved definition.

All problems of a load are collected and raised together as one :class:`DefinitionError`,
each a ``file:line:col: message [CODE]`` line.
"""

from __future__ import annotations

import dataclasses
import heapq
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, cast

from pydantic import ValidationError

from pathway.core.errors import DefinitionError, Diagnostic, PathwayError, display_path, suggest
from pathway.core.yamlsafe import (
    RULE_FILE_LIMITS,
    Located,
    YamlProblem,
    load_yaml_file,
    number_problem,
    validation_diagnostics,
)
from pathway.definition import conditions as C
from pathway.definition.clock import MAX_DAY, days_since, is_proposed, proposed
from pathway.definition.coding import ObservationMap, OrderMap, Terminology
from pathway.definition.effects import (
    TEMPLATE_RE,
    Derive,
    Dose,
    Effect,
    Offer,
    Propose,
    Recommend,
    Require,
    Score,
    ScoreItem,
    ScoreTerm,
    Titrate,
    Transition,
    derived_by,
    parse_effects,
)
from pathway.definition.graph import expand_sources, transition_pairs
from pathway.definition.invariants import BUILTINS, Expect, Invariant, parse_expect
from pathway.definition.model import (
    ANY_ACTIVE,
    ID_PATTERN,
    SOURCE_ID_PATTERN,
    Aggregate,
    CodesFile,
    Evidence,
    FieldDef,
    FieldsFile,
    HazardsFile,
    InvariantDef,
    InvariantsFile,
    PathwayFile,
    ProfileFile,
    RuleFile,
    SourcesFile,
    risk_rating,
)
from pathway.definition.mutation import Mutation, Site, nudge
from pathway.definition.pathway import (
    BRANCH_KEYS,
    BUILTIN_NAMES,
    ComputedInput,
    Consistency,
    DecisionPoint,
    Hazard,
    PathwayDef,
    Ref,
    Rule,
    builtin_fields,
)
from pathway.definition.units import CONVERSIONS, convert, units_for
from pathway.loading import stored

__all__ = ["DEFAULT_PATHWAY", "resolve_pathway_dir", "load_definition", "load_every_profile", "path_problem", "shipped_rules_dir",
           "underived_tests", "MAX_LOAD_BYTES", "MAX_LOAD_FILES", "MAX_LOAD_NODES"]

#: The pathway a case, command or call means when it names none: the first shipped pathway.
DEFAULT_PATHWAY = "asuc"

#: One load reads at most this many bytes, files and values, all files together (PW120); each
#: file is also within :data:`pathway.core.yamlsafe.RULE_FILE_LIMITS`. The shipped ASUC pathway
#: reads ~270 KB and ~14,000 values in 18 files (in ~0.5 s); the limits keep a load within seconds.
MAX_LOAD_BYTES = 8_000_000
MAX_LOAD_FILES = 500
MAX_LOAD_NODES = 100_000


def _still_a_link(path: Path) -> bool:
    """Whether a resolved path is still a symbolic link: from CPython 3.13, ``Path.resolve()`` returns the link where
    a loop of links closes instead of raising RuntimeError."""
    try:
        return path.is_symlink()
    except (OSError, ValueError):  # a name too long, say: reading the file reports it
        return False


def _short(text: str, limit: int = 80) -> str:
    """A name from a rule file as a message quotes it: at most ``limit`` characters, control characters escaped."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:limit])
    return shown + ("..." if len(text) > limit else "")


def path_problem(name: str) -> str | None:
    """Why a file name from pathway.yaml does not name a file inside the pathway folder (None: it may).

    Names are relative to the folder, with '/' between folders; absolute paths (POSIX or Windows),
    '..' parts and control characters are refused (PW240).
    """
    if not name.strip():
        return "an empty file name"
    if any(not c.isprintable() for c in name):
        return f"file name '{_short(name)}' holds a control character"
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute() or PureWindowsPath(name).drive \
            or name.startswith(("/", "\\")):
        return f"'{_short(name)}' is an absolute path; name the file relative to the pathway folder"
    if ".." in re.split(r"[/\\]", name):
        return f"'{_short(name)}' has a '..' part; every file of a pathway lies inside its folder"
    return None


def shipped_rules_dir() -> Path:
    """Folder of the rules installed with the package (or of the source checkout)."""
    package = Path(__file__).resolve().parents[1]  # pathway/
    for candidate in (package / "rules", package.parent / "rules"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("the shipped rules folder was not found next to the package")


def strongly_connected(successors: dict[str, list[str]]) -> list[set[str]]:
    """The strongly connected components of a directed graph (Tarjan's algorithm, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []
    for root in successors:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            nexts = successors[node]
            if i < len(nexts):
                work.append((node, i + 1))
                child = nexts[i]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            if work:  # back in the parent: its low link takes this node's
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                out.append(component)
    return out


def topological_order(successors: dict[str, list[str]], key: Callable[[str], int]) -> list[str]:
    """The nodes of an acyclic graph, each after every node it comes from; among the nodes ready at a
    time, the one with the smallest key first (networkx's ``lexicographical_topological_sort``)."""
    indegree = {node: 0 for node in successors}
    for nexts in successors.values():
        for node in nexts:
            indegree[node] += 1
    ready = [(key(node), node) for node, degree in indegree.items() if degree == 0]
    heapq.heapify(ready)
    out: list[str] = []
    while ready:
        _, node = heapq.heappop(ready)
        out.append(node)
        for child in successors[node]:
            indegree[child] -= 1
            if indegree[child] == 0:
                heapq.heappush(ready, (key(child), child))
    return out


def resolve_pathway_dir(name_or_path: str | os.PathLike[str]) -> Path:
    """A pathway by name (``asuc``) among the shipped rules, or a path to its folder."""
    text = os.fspath(name_or_path)
    path = Path(text)
    try:
        if path.is_dir() and (path / "pathway.yaml").is_file():
            return path
        if path.is_file() and path.name == "pathway.yaml":
            return path.parent
    except (OSError, ValueError):  # a name the file system refuses (too long, a NUL byte)
        raise DefinitionError([Diagnostic(_short(text), 0, 0, "PW001", "not a pathway folder (a name the file system "
                                                                        "refuses)")]) from None
    if os.sep not in text and "/" not in text:
        try:
            shipped = shipped_rules_dir() / text
        except FileNotFoundError:
            shipped = None
        if shipped is not None and (shipped / "pathway.yaml").is_file():
            return shipped
        names = [p.name for p in shipped.parent.iterdir() if (p / "pathway.yaml").is_file()] if shipped else []
        raise DefinitionError([Diagnostic(text, 0, 0, "PW001", f"no pathway named '{text}'", suggest(text, names))])
    raise DefinitionError([Diagnostic(display_path(text), 0, 0, "PW001", "not a pathway folder (no pathway.yaml)")])


class _Loader:
    def __init__(self, root: Path, overrides: dict[str, Any] | None, profile: str | None = None,
                 mutation: Mutation | None = None, yaml_cache: dict[str, Located] | None = None):
        self.root = root
        self.overrides = overrides or {}
        self.profile = profile
        self.mutation = mutation
        self.yaml_cache = yaml_cache
        #: every numeric comparison the conditions make (for threshold mutations)
        self.sites: list[Site] = []
        self._edge_pairs: dict[tuple[str, str], None] | None = None
        self.diags: list[Diagnostic] = []
        self.files: list[str] = []
        #: where parameter values came from when not from pathway.yaml ("profile 'nice'", "an override")
        self.origin: dict[str, str] = {}
        #: the file being read or resolved (where an unexpected failure is reported, PW129)
        self.current = display_path(root / "pathway.yaml")
        self._real_root: Path | None = None
        self._bytes = 0
        self._count = 0
        self._nodes = 0
        #: kinds of file that could not be read or validated (their cross-references are not checked)
        self.unread: set[str] = set()
        #: each file read: its inode, modification time and size when it was read (the cache of loaded
        #: pathways keeps a load only when its files are still those it read)
        self.read_as: dict[str, tuple[int, int, int]] = {}

    def _load(self, relname: str, ref: tuple[Located, tuple[Any, ...]] | None = None) -> Located | None:
        """Load one YAML file of the folder; ``ref`` is where pathway.yaml names it (for a missing file).

        The file must lie inside the pathway folder (no absolute path, no '..', no symbolic link
        that leads out: PW240, PW241) and be readable (PW242); it is read within the limits of a
        rule file, and the load within MAX_LOAD_BYTES and MAX_LOAD_FILES (PW120).
        """
        problem = path_problem(relname)

        def report(code: str, message: str) -> None:
            if ref is not None:
                self.diags.append(ref[0].diag(ref[1], code, message))
            else:  # a file the loader finds by itself (a profile): the diagnostic names it
                where = self.root / (relname if problem is None else "pathway.yaml")
                self.diags.append(Diagnostic(display_path(where), 1, 1, code, message))

        if problem is not None:
            report("PW240", problem)
            return None
        path = self.root / relname
        shown = display_path(path)
        looped = f"file '{_short(relname)}' cannot be resolved (a loop of symbolic links?)"
        try:
            if self._real_root is None:
                self._real_root = self.root.resolve()
            real = path.resolve()
        except (OSError, RuntimeError, ValueError):  # a loop of symbolic links (CPython 3.11 and 3.12)
            report("PW242", looped)
            return None
        if _still_a_link(real):  # the same loop from CPython 3.13 on, whose resolve() returns the link that closes it
            report("PW242", looped)
            return None
        if not real.is_relative_to(self._real_root):
            report("PW241", f"file '{_short(relname)}' is a symbolic link, or lies in a linked folder, that leads outside "
                            "the pathway folder; it is not read")
            return None
        try:
            info = real.stat()
        except (FileNotFoundError, NotADirectoryError):
            info = None
        except OSError as exc:
            report("PW242", f"file '{_short(relname)}' cannot be read: {exc.strerror or type(exc).__name__}")
            return None
        if info is None or stat.S_ISDIR(info.st_mode):
            report("PW002", f"file '{_short(relname)}' not found in {display_path(self.root)}")
            return None
        if not stat.S_ISREG(info.st_mode):
            report("PW242", f"file '{_short(relname)}' is not a regular file")
            return None
        self._count += 1
        self._bytes += info.st_size
        if self._count > MAX_LOAD_FILES or self._bytes > MAX_LOAD_BYTES:
            report("PW120", f"the pathway reads more than {MAX_LOAD_FILES} files or {MAX_LOAD_BYTES:,} bytes in all; "
                            f"'{_short(relname)}' is not read")
            return None
        self.files.append(str(path))
        self.read_as[str(path)] = (info.st_ino, info.st_mtime_ns, info.st_size)
        self.current = shown
        left = MAX_LOAD_NODES - self._nodes
        limits = RULE_FILE_LIMITS
        if left < limits.max_nodes:
            # the budget left counts values: a file is still composed at once up to the size of one file's budget
            limits = dataclasses.replace(limits, max_nodes=max(left, 0), scope="in the pathway's files together",
                                         compose_chars=limits.max_nodes)
        try:
            if self.yaml_cache is None:
                doc = load_yaml_file(str(real), shown, limits)
            else:
                key = f"{real}\0{info.st_mtime_ns}\0{info.st_size}"
                if key not in self.yaml_cache:
                    self.yaml_cache[key] = load_yaml_file(str(real), shown, limits)
                doc = self.yaml_cache[key]
        except YamlProblem as exc:
            self.diags.append(exc.diagnostic)
            self._nodes += exc.nodes  # reading a broken file costs too
            return None
        self._nodes += len(doc.positions)
        if self._nodes > MAX_LOAD_NODES:
            self.diags.append(Diagnostic(shown, 1, 1, "PW120", f"the pathway's files hold more than {MAX_LOAD_NODES:,} "
                                                               "values together"))
            return None
        return doc

    def _validate(self, doc: Located, model: Any) -> Any:
        if not isinstance(doc.data, dict):
            self.diags.append(doc.diag((), "PW112", f"the file must hold a mapping, not {type(doc.data).__name__}"))
            return None
        try:
            return model.model_validate(doc.data)
        except ValidationError as exc:
            self.diags.extend(validation_diagnostics(doc, (), exc, model))
            return None

    def run(self) -> PathwayDef:
        pdoc = self._load("pathway.yaml")
        spec: PathwayFile | None = self._validate(pdoc, PathwayFile) if pdoc else None
        if spec is None:
            raise DefinitionError(self.diags)
        assert pdoc is not None  # spec was validated from it
        self._check_source_ids(pdoc, spec.sources)
        if spec.sources_file:
            sdoc = self._load(spec.sources_file, (pdoc, ("sources_file",)))
            sfile: SourcesFile | None = self._validate(sdoc, SourcesFile) if sdoc else None
            if sfile is None:
                self.unread.add("sources")
            if sfile is not None:
                assert sdoc is not None  # sfile was validated from it
                self._check_source_ids(sdoc, sfile.sources)
                clash = sorted(set(sfile.sources) & set(spec.sources))
                for sid in clash:
                    self.diags.append(sdoc.diag(("sources", sid), "PW205", f"source '{sid}' is also listed in pathway.yaml",
                                                key=True))
                spec = spec.model_copy(update={"sources": {**spec.sources, **sfile.sources}})
        self._check_pathway(pdoc, spec)
        params = {name: p.value for name, p in spec.parameters.items()}
        profile_id = self.profile or spec.default_profile
        if profile_id:
            from_profile = self._profile(pdoc, spec, profile_id)
            params.update(from_profile)
            self.origin.update({name: f"profile '{profile_id}'" for name in from_profile})
        params.update(self.overrides)
        self.origin.update({name: "an override" for name in self.overrides})
        self.current = pdoc.file
        if self.mutation is not None and self.mutation.kind == "parameter":
            self._mutate_parameter(pdoc, params, self.mutation)

        fdoc = self._load(spec.fields_file, (pdoc, ("fields_file",)))
        fields_file: FieldsFile | None = self._validate(fdoc, FieldsFile) if fdoc else None
        if fields_file is None:
            self.unread.add("fields")
        fields: dict[str, FieldDef | None] = dict(fields_file.fields) if fields_file else {}
        if fields_file is not None and fdoc is not None:
            for name, authored in fields_file.fields.items():
                if not re.fullmatch(ID_PATTERN, name):
                    self._bad_id(fdoc, ("fields", name))
                self._check_field(fdoc, name, authored, spec)
        for name in BUILTIN_NAMES:
            if name in fields and fdoc:
                self.diags.append(fdoc.diag(("fields", name), "PW112", f"'{name}' is a built-in field and cannot be redefined",
                                            key=True))
        for name in fields:
            if name in spec.derived and fdoc:
                self.diags.append(fdoc.diag(("fields", name), "PW112", f"'{name}' is also a derived fact in pathway.yaml",
                                            key=True))
        per_state = {days_since(sid) for sid in spec.states} | {proposed(sid) for sid in spec.states}
        for name in fields:
            if name in per_state and fdoc:
                self.diags.append(fdoc.diag(("fields", name), "PW112", f"'{name}' is a built-in field and cannot be redefined",
                                            key=True))
        fields.update(builtin_fields())
        for sid, sdef in spec.states.items():
            fields[days_since(sid)] = FieldDef(type="number", title=f"Days since '{sdef.title}' was first entered",
                                                   unit="day", range=(0, MAX_DAY))
            # true while a rule of the same evaluation proposes the move (see clock.proposed)
            title = sdef.title[:1].lower() + sdef.title[1:]
            fields[proposed(sid)] = FieldDef(type="boolean", title=f"A move to '{sdef.title}' proposed now",
                                             short=f"{title} proposed", short_false=f"{title} not proposed")
        for name, fdef in list(fields.items()):
            if fdef is not None and fdef.aggregate is not None and fdef.aggregate.of not in fields and fdoc:
                self.diags.append(fdoc.diag(("fields", name, "aggregate", "of"), "PW202",
                                            f"unknown field '{fdef.aggregate.of}'", suggest(fdef.aggregate.of, list(fields))))
        decisions: dict[str, frozenset[str]] = {}
        for name, fdef in list(fields.items()):
            if fdef is not None and fdef.decision is not None and fdoc:
                where = ("fields", name, "decision", "in")
                states_in = [fdef.decision.in_] if isinstance(fdef.decision.in_, str) else list(fdef.decision.in_)
                for k, sid in enumerate(states_in):
                    if sid != ANY_ACTIVE and sid not in spec.states:
                        self.diags.append(fdoc.diag(where + ((k,) if not isinstance(fdef.decision.in_, str) else ()),
                                                    "PW201", f"unknown state '{sid}'", suggest(sid, list(spec.states))))
                if fdef.type not in ("enum", "boolean") or fdef.scope != "event":
                    self.diags.append(fdoc.diag(("fields", name, "decision"), "PW112",
                                                "a decision is an event field of type enum or boolean"))
                decisions[name] = frozenset(expand_sources(spec, fdef.decision.in_))
        computed: dict[str, ComputedInput] = {}
        consistency: list[Consistency] = []
        if fields_file is not None and fdoc is not None:
            computed = self._computed(fdoc, fields_file, spec, params)
            consistency = self._consistency(fdoc, fields_file, params)
        if fdoc is not None and fields_file is not None:
            self._check_timeline(fdoc, spec, fields_file.fields, fields, params)
        points = self._decisions(pdoc, spec, params)
        fields["state"] = None  # resolved below

        watchdogs = self._watchdogs(pdoc, spec, fields, params)
        rules: list[Rule] = []
        seen: dict[str, str] = {}
        authored_rules: set[str] = set()  # every rule id written, also of rules with errors (for the hazard log)
        for k, relname in enumerate(spec.rule_files):
            doc = self._load(relname, (pdoc, ("rule_files", k)))
            if doc is None:
                self.unread.add("rules")
                continue
            self.current = doc.file
            rfile: RuleFile | None = self._validate(doc, RuleFile)
            if rfile is None:
                self.unread.add("rules")
                continue
            for index, rdef in enumerate(rfile.rules):
                authored_rules.add(rdef.id)
                rule = self._rule(doc, ("rules", index), rdef, spec, fields, params, points)
                if rule is None:
                    continue
                if rule.id in seen:
                    self.diags.append(doc.diag(("rules", index, "id"), "PW205",
                                               f"duplicate rule id '{rule.id}' (first defined at {seen[rule.id]})"))
                    continue
                seen[rule.id] = rule.location
                rules.append(rule)
        fields.pop("state")
        if not self.diags:  # with broken rules the set of derivations is incomplete
            self.diags.extend(underived_tests(rules))
            self.diags.extend(proposal_readers(rules))
            self.diags.extend(untimely_decision_tests(rules, decisions))
        kept = self._kept(rules) if not self.diags else {}
        invariants: tuple[Invariant, ...] = ()
        if spec.invariants_file:
            invariants = self._invariants(pdoc, spec, fields, params)
        hazards: tuple[Hazard, ...] = ()
        if spec.hazards_file:
            hazards = self._hazards(pdoc, spec, authored_rules, fields_file, {i.id for i in invariants})
        codes: Terminology | None = None
        if spec.codes_file:
            # with a rule refused, its medicines are unknown: the agent and avoid checks would only echo it
            whole = not self.diags
            codes = self._codes(pdoc, spec, fields_file, _agents(rules) if whole else None,
                                _avoid_rules(rules) if whole else None)
        if invariants and spec.hazards_file:
            known = {h.id for h in hazards}
            for inv in invariants:
                for name in inv.hazards:
                    if name not in known:
                        self.diags.append(Diagnostic(inv.file, inv.line, inv.col, "PW239",
                                                     f"invariant '{inv.id}' names unknown hazard '{name}'",
                                                     suggest(name, known)))
        rule_edges = tuple((r.id, s, t) for r in rules for s in r.states for b in BRANCH_KEYS for t in r.targets(b))
        proposal_edges = tuple((r.id, s, t) for r in rules for s in r.states for b in BRANCH_KEYS for t in r.proposed(b))
        if self.diags:
            # A file that could not be read leaves names undefined that other files cite: those
            # citations are not reported (they would be right once the file is fixed).
            cascade = {"sources": "PW204", "rules": "PW230", "fields": "PW232", "invariants": "PW234", "hazards": "PW239"}
            dropped = {cascade[kind] for kind in self.unread}
            raise DefinitionError([d for d in self.diags if d.code not in dropped])
        # 'state' was popped: every remaining value is a FieldDef.
        return PathwayDef(self.root, spec, cast(dict[str, FieldDef], fields), rules, rule_edges, params, profile=profile_id,
                          files=self.files, decisions=decisions, watchdogs=watchdogs, computed=computed,
                          consistency=tuple(consistency), decision_points=points, kept=kept,
                          hazards=hazards, invariants=invariants, sites=tuple(dict.fromkeys(self.sites)), codes=codes,
                          proposal_edges=proposal_edges)

    def _mutate_parameter(self, pdoc: Located, params: dict[str, Any], mutation: Mutation) -> None:
        """Nudge one numeric parameter one step (a threshold mutant); a parameter the caller pins stays."""
        name = mutation.parameter
        if name is None or name not in params:
            self.diags.append(pdoc.diag(("parameters",), "PW203", f"mutation of unknown parameter '{name}'"))
            return
        value = params[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.diags.append(pdoc.diag(("parameters", name), "PW112", f"mutation of '{name}', which is not a number"))
            return
        if name not in self.overrides:
            params[name] = nudge(value, mutation.direction)

    def _evidence_authority(self, doc: Located, where: tuple[Any, ...], evidence: Evidence, spec: PathwayFile) -> None:
        """PW237: evidence marked verified whose sources (all known) are all non-authoritative."""
        if evidence.status != "verified" or not evidence.sources:
            return
        known = [spec.sources[s] for s in evidence.sources if s in spec.sources]
        if len(known) == len(evidence.sources) and not any(src.authoritative for src in known):
            self.diags.append(doc.diag(where + ("status",), "PW237",
                                       f"evidence cites only non-authoritative sources ({', '.join(evidence.sources)}) "
                                       "and cannot be verified; mark it 'status: unverified' or cite an authoritative "
                                       "source"))

    def _invariants(self, pdoc: Located, spec: PathwayFile, fields: dict[str, FieldDef | None],
                    params: dict[str, Any]) -> tuple[Invariant, ...]:
        """The safety invariants: conditions parsed like rule conditions, expectations and built-ins checked."""
        assert spec.invariants_file is not None
        doc = self._load(spec.invariants_file, (pdoc, ("invariants_file",)))
        ifile: InvariantsFile | None = self._validate(doc, InvariantsFile) if doc else None
        if ifile is None or doc is None:
            self.unread.add("invariants")
            return ()
        parser = self._parser(doc, spec, fields, params)
        states = list(spec.states)
        out: list[Invariant] = []
        seen: dict[str, int] = {}
        for i, idef in enumerate(ifile.invariants):
            at = ("invariants", i)
            if idef.id in seen:
                self.diags.append(doc.diag(at + ("id",), "PW205",
                                           f"duplicate invariant id '{idef.id}' (first at line {seen[idef.id]})"))
            seen.setdefault(idef.id, doc.pos(at)[0])
            when = expect = None
            if idef.builtin is not None:
                if idef.builtin not in BUILTINS:
                    self.diags.append(doc.diag(at + ("builtin",), "PW112", f"unknown built-in invariant '{idef.builtin}'",
                                               suggest(idef.builtin, list(BUILTINS))))
                if idef.when is not None or idef.expect is not None:
                    self.diags.append(doc.diag(at + ("builtin",), "PW112",
                                               "a built-in invariant takes no 'when' or 'expect'", key=True))
                if idef.builtin == "doses_within_label" and not idef.dose_ranges:
                    self.diags.append(doc.diag(at + ("builtin",), "PW112", "'doses_within_label' needs 'dose_ranges'"))
                if idef.builtin == "no_recommendation_of_an_avoided_drug" and not idef.drug_classes:
                    self.diags.append(doc.diag(at + ("builtin",), "PW112",
                                               "'no_recommendation_of_an_avoided_drug' needs 'drug_classes'"))
                if idef.builtin == "monotone_risk_indices" and not idef.monotone:
                    self.diags.append(doc.diag(at + ("builtin",), "PW112", "'monotone_risk_indices' needs 'monotone'"))
                for name in idef.monotone:
                    if name not in spec.derived:
                        self.diags.append(doc.diag(at + ("monotone", name), "PW202", f"unknown derived fact '{name}'",
                                                   suggest(name, list(spec.derived)), key=True))
            elif idef.expect is None:
                self.diags.append(doc.diag(at, "PW112", "an invariant needs 'expect' (with 'when'), or 'builtin'"))
            else:
                parser.owner = idef.id
                when = parser.parse(idef.when, at + ("when",)) if idef.when is not None else C.Always()
                expect = parse_expect(doc, idef.expect, at + ("expect",), states, self.diags)
            after, within = self._course_operator(doc, at, idef, params, parser, states)
            ranges: dict[str, dict[str, tuple[float, float]]] = {}
            for name, rng in idef.dose_ranges.items():
                kinds = {k: v for k, v in (("mg_per_kg", rng.mg_per_kg), ("mg_per_kg_per_day", rng.mg_per_kg_per_day))
                         if v is not None}
                if len(kinds) != 1 or any(lo > hi for lo, hi in kinds.values()):
                    self.diags.append(doc.diag(at + ("dose_ranges", name), "PW112",
                                               "a dose range gives one of 'mg_per_kg' or 'mg_per_kg_per_day' as [low, high]"))
                ranges[name] = kinds
            line, col = doc.pos(at)
            out.append(Invariant(id=idef.id, title=idef.title, file=doc.file, line=line, col=col,
                                 hazards=tuple(idef.hazards), description=idef.description, builtin=idef.builtin,
                                 when=when, expect=expect, at_end=idef.at == "end", after=after, within_days=within,
                                 dose_ranges=ranges,
                                 monotone={k: tuple(v) for k, v in idef.monotone.items()},
                                 drug_classes={k.lower(): tuple(x.lower() for x in v)
                                               for k, v in idef.drug_classes.items()}))
        return tuple(out)

    def _course_operator(self, doc: Located, at: tuple[Any, ...], idef: InvariantDef, params: dict[str, Any],
                         parser: C.ConditionParser, states: list[str]) -> tuple[Expect | None, int | None]:
        """``after`` + ``within_days`` (both or neither), or ``at: end``; none of them on a built-in."""
        operators = [k for k in ("after", "within_days") if getattr(idef, k) is not None]
        if idef.at != "every_event":
            operators.append("at")
        if not operators:
            return None, None
        if idef.builtin is not None:
            self.diags.append(doc.diag(at + (operators[0],), "PW112",
                                       f"a built-in invariant takes no course operator ('{operators[0]}')", key=True))
            return None, None
        if idef.at == "end" and (idef.after is not None or idef.within_days is not None):
            self.diags.append(doc.diag(at + ("at",), "PW112",
                                       "'at: end' checks the last result; it cannot be combined with 'after'/'within_days'",
                                       key=True))
            return None, None
        if idef.at == "end":
            return None, None
        if idef.after is None or idef.within_days is None:
            missing = "within_days" if idef.after is not None else "after"
            self.diags.append(doc.diag(at + (operators[0],), "PW112",
                                       f"'after' and 'within_days' go together: add '{missing}'", key=True))
            return None, None
        after = parse_expect(doc, idef.after, at + ("after",), states, self.diags)
        days = self._param(doc, at + ("within_days",), idef.within_days, params, parser)
        if isinstance(days, bool) or not isinstance(days, (int, float)) or days < 0 or not float(days).is_integer():
            if days is not None:
                self.diags.append(doc.diag(at + ("within_days",), "PW112",
                                           f"'within_days' is a whole number of days from 0, not {days!r}"))
            return after, None
        return after, int(days)

    def _hazards(self, pdoc: Located, spec: PathwayFile, rule_ids: set[str],
                 fields_file: FieldsFile | None, invariants: set[str]) -> tuple[Hazard, ...]:
        """The hazard log: risks checked against the DCB0129 matrix, every named control resolved.

        Scenario ids are not resolved here (the loader does not read scenarios): ``pathway check``
        and ``pathway hazards`` run them and report an unknown one (PW625).
        """
        assert spec.hazards_file is not None
        doc = self._load(spec.hazards_file, (pdoc, ("hazards_file",)))
        hfile: HazardsFile | None = self._validate(doc, HazardsFile) if doc else None
        if hfile is None or doc is None:
            self.unread.add("hazards")
            return ()
        fields = set(fields_file.fields) if fields_file is not None else set()
        watchdogs = {sid for sid, sdef in spec.states.items() if sdef.overdue is not None}
        out: list[Hazard] = []
        seen: dict[str, int] = {}
        for i, h in enumerate(hfile.hazards):
            at = ("hazards", i)
            if h.id in seen:
                self.diags.append(doc.diag(at + ("id",), "PW205", f"duplicate hazard id '{h.id}' (first at line {seen[h.id]})"))
            seen.setdefault(h.id, doc.pos(at)[0])
            m, v = h.mitigations, h.verification
            for key, names, known, code, what in (
                    ("rules", m.rules, rule_ids, "PW230", "rule"),
                    ("parameters", m.parameters, set(spec.parameters), "PW231", "parameter"),
                    ("fields", m.fields, fields, "PW232", "input field")):
                for k, name in enumerate(names):
                    if name not in known:
                        self.diags.append(doc.diag(at + ("mitigations", key, k), code, f"unknown {what} '{name}'",
                                                   suggest(name, known)))
            for k, name in enumerate(m.watchdogs):
                if name not in watchdogs:
                    why = "has no 'overdue' watchdog" if name in spec.states else "is not a state of the pathway"
                    self.diags.append(doc.diag(at + ("mitigations", "watchdogs", k), "PW233", f"'{name}' {why}",
                                               suggest(name, watchdogs)))
            for k, name in enumerate(v.invariants):
                if name not in invariants:
                    what = "" if invariants else " (this pathway defines no invariants)"
                    self.diags.append(doc.diag(at + ("verification", "invariants", k), "PW234",
                                               f"unknown invariant '{name}'{what}", suggest(name, invariants)))
            for k, src in enumerate(h.sources):
                if src not in spec.sources:
                    self.diags.append(doc.diag(at + ("sources", k), "PW204", f"unknown source '{src}'",
                                               suggest(src, spec.sources)))
            initial = risk_rating(h.severity, h.likelihood)
            if h.initial_risk is not None and h.initial_risk != initial:
                self.diags.append(doc.diag(at + ("initial_risk",), "PW235",
                                           f"initial risk {h.initial_risk} does not match the risk matrix: {h.severity} "
                                           f"and {h.likelihood} likelihood give {initial}"))
            res = h.residual_risk
            residual = risk_rating(res.severity, res.likelihood)
            if res.risk is not None and res.risk != residual:
                self.diags.append(doc.diag(at + ("residual_risk", "risk"), "PW235",
                                           f"residual risk {res.risk} does not match the risk matrix: {res.severity} "
                                           f"and {res.likelihood} likelihood give {residual}"))
            mitigated = bool(m.rules or m.parameters or m.fields or m.watchdogs)
            if residual > initial:
                self.diags.append(doc.diag(at + ("residual_risk",), "PW236",
                                           f"residual risk {residual} is above the initial risk {initial}: mitigation "
                                           "cannot raise a risk"))
            elif residual < initial and not mitigated:
                self.diags.append(doc.diag(at + ("residual_risk",), "PW236",
                                           f"residual risk {residual} is below the initial risk {initial} but no "
                                           "mitigation is named: without a control the risk stays as it is"))
            line, col = doc.pos(at)
            scenarios = tuple(Ref(name, *doc.pos(at + ("verification", "scenarios", k)))
                              for k, name in enumerate(v.scenarios))
            out.append(Hazard(
                id=h.id, title=h.title, cause=h.cause, effect=h.effect, severity=h.severity, likelihood=h.likelihood,
                initial_risk=initial, residual_severity=res.severity, residual_likelihood=res.likelihood,
                residual_risk=residual, status=h.status, file=doc.file, line=line, col=col, rules=tuple(m.rules),
                parameters=tuple(m.parameters), fields=tuple(m.fields), watchdogs=tuple(m.watchdogs),
                scenarios=scenarios, invariants=tuple(v.invariants), open_questions=tuple(h.open_questions),
                sources=tuple(h.sources), note=h.note, mitigations_at=doc.pos(at + ("mitigations",), key=True),
                verification_at=doc.pos(at + ("verification",), key=True)))
        return tuple(out)

    def _computed(self, doc: Located, ffile: FieldsFile, spec: PathwayFile,
                  params: dict[str, Any]) -> dict[str, ComputedInput]:
        """Computed inputs (``compute:``), resolved and ordered so that an input comes before the fields computed from it.

        A computation tests input fields only (not built-ins, the clock or derived facts, which
        the engine makes after the snapshot is built), gives a true/false field, and may not
        depend on itself through other computed inputs.
        """
        authored = ffile.fields
        state_names = set(spec.states)
        since_fields = {days_since(s) for s in state_names}
        proposal_fields = {proposed(s) for s in state_names}
        not_inputs = set(BUILTIN_NAMES) | {"state"} | since_fields | proposal_fields

        def field_type(name: str) -> tuple[str, list[str]] | None:
            if name == "state":
                return ("enum", sorted(state_names))
            f = authored.get(name) or builtin_fields().get(name)
            if f is None and name in since_fields:
                return ("number", [])
            if f is None and name in proposal_fields:
                return ("boolean", [])
            return (f.type, list(f.values)) if f is not None else None

        def derived_type(name: str) -> tuple[str, list[str]] | None:
            d = spec.derived.get(name)
            return (d.type, list(d.values)) if d is not None else None

        out: dict[str, ComputedInput] = {}
        order = {name: i for i, name in enumerate(authored)}
        for name, fdef in authored.items():
            if fdef.compute is None:
                continue
            where = ("fields", name, "compute")
            before = len(self.diags)
            if fdef.type != "boolean":
                self.diags.append(doc.diag(where, "PW219", f"'{name}' is {fdef.type}; only a true/false field can be "
                                                           "computed from a condition", key=True))
            if fdef.aggregate is not None:
                self.diags.append(doc.diag(where, "PW112", f"'{name}' has both 'aggregate' and 'compute'; give one",
                                           key=True))
            parser = C.ConditionParser(doc, field_type, derived_type, params, sorted(authored), self.diags,
                                       self.mutation, self.sites)
            parser.owner = f"field {name}"
            cond = parser.parse(fdef.compute.when, where + ("when",))
            inputs: list[str] = []
            for cmp in C.fields_of(cond):
                if cmp.derived or cmp.field in not_inputs:
                    kind = "derived fact" if cmp.derived else "built-in"
                    self.diags.append(Diagnostic(doc.file, cmp.line, cmp.col, "PW220",
                                                 f"computed input '{name}' tests {kind} '{cmp.field}'; it may test input "
                                                 "fields only (the engine makes derived facts and the clock later)"))
                elif (counted := _states_counted_from(authored.get(cmp.field))):
                    self.diags.append(Diagnostic(doc.file, cmp.line, cmp.col, "PW220",
                                                 f"computed input '{name}' tests '{cmp.field}', which is counted from "
                                                 f"when the patient entered {counted}: that is worked out in each state "
                                                 "the patient passes through, after the computed inputs, so it would "
                                                 "never have a value here; test it in a rule instead"))
                elif cmp.field not in inputs:
                    inputs.append(cmp.field)
            for k, src in enumerate(fdef.compute.evidence.sources):
                if src not in spec.sources:
                    self.diags.append(doc.diag(where + ("evidence", "sources", k), "PW204", f"unknown source '{src}'",
                                               suggest(src, spec.sources)))
            self._evidence_authority(doc, where + ("evidence",), fdef.compute.evidence, spec)
            if len(self.diags) > before:
                continue
            line, col = doc.pos(where, key=True)
            out[name] = ComputedInput(name, cond, tuple(inputs), fdef.compute.evidence, doc.file, line, col,
                                      tuple(sorted(parser.used_params)), fdef.compute.recorded_true_stands)
        # used input -> the computed inputs computed from it
        feeds: dict[str, list[str]] = {name: [] for name in out}
        for name, comp in out.items():
            for used in comp.inputs:
                if used in out:
                    feeds[used].append(name)
        cyclic = False
        for component in sorted(strongly_connected(feeds), key=lambda c: min(order[n] for n in c)):
            first = min(component, key=lambda n: order[n])
            if len(component) == 1 and first not in feeds[first]:
                continue
            cyclic = True
            cycle = [first]
            while True:  # follow inputs inside the component back to the first field
                nxt = next(u for u in sorted(out[cycle[-1]].inputs, key=lambda n: order.get(n, 0)) if u in component)
                cycle.append(nxt)
                if nxt == first or len(cycle) > len(component) + 1:
                    break
            self.diags.append(doc.diag(("fields", first, "compute"), "PW218",
                                       "computed inputs depend on each other in a cycle: " + " <- ".join(cycle)
                                       + " (a field cannot be computed from itself)", key=True))
        if cyclic:
            return out
        ordered = topological_order(feeds, key=lambda n: order[n])
        return {name: out[name] for name in ordered}

    def _codes(self, pdoc: Located, spec: PathwayFile, fields_file: FieldsFile | None,
               agents: set[str] | None = None, avoid_rules: set[str] | None = None) -> Terminology | None:
        """The FHIR terminology map, every code checked against the fields file: the field exists and
        takes the kind of value the code gives, each UCUM unit reads as a unit the field converts, and
        each recorded decision is a value of its field."""
        assert spec.codes_file is not None
        doc = self._load(spec.codes_file, (pdoc, ("codes_file",)))
        cfile: CodesFile | None = self._validate(doc, CodesFile) if doc else None
        if cfile is None or doc is None or fields_file is None:
            return None
        fields = fields_file.fields
        known_units = {u for q in CONVERSIONS for u in units_for(q)} | {f.unit for f in fields.values() if f.unit}
        for ucum, unit in cfile.units.items():
            if unit not in known_units:
                self.diags.append(doc.diag(("units", ucum), "PW112",
                                           f"UCUM '{_short(ucum)}' reads as '{_short(unit)}', which is no field's unit and "
                                           "no unit a conversion knows", suggest(unit, known_units)))

        def system(at: tuple[Any, ...], name: str) -> str:
            if name in cfile.systems:
                return cfile.systems[name]
            if ":" not in name:
                self.diags.append(doc.diag(at, "PW112", f"unknown code system '{_short(name)}': an alias under 'systems' "
                                                        "or a URI", suggest(name, list(cfile.systems))))
            return name

        def field_of(at: tuple[Any, ...], name: str) -> FieldDef | None:
            fdef = fields.get(name)
            if fdef is None:
                self.diags.append(doc.diag(at, "PW202", f"unknown field '{_short(name)}'", suggest(name, list(fields))))
            elif fdef.aggregate is not None:
                self.diags.append(doc.diag(at, "PW112", f"'{name}' is computed from the record; no code can record it"))
                return None
            return fdef

        seen: set[tuple[str, str]] = set()
        observations: dict[tuple[str, str], ObservationMap] = {}
        for i, obs in enumerate(cfile.observations):
            at = ("observations", i)
            key = (system(at + ("system",), obs.system), obs.code)
            if key in seen:
                self.diags.append(doc.diag(at + ("code",), "PW112", f"code '{_short(obs.code)}' of {_short(key[0])} is "
                                                                    "listed twice"))
            seen.add(key)
            fdef = field_of(at + ("field",), obs.field)
            if fdef is None:
                continue
            accepted = set(units_for(fdef.quantity) or ([fdef.unit] if fdef.unit else []))
            if fdef.type not in ("number", "integer"):
                accepted = set()
            listed = obs.units if obs.units is not None else [u for u, p in cfile.units.items() if p in accepted]
            units: dict[str, str] = {}
            for k, ucum in enumerate(listed):
                where = at + ("units", k) if obs.units is not None else at + ("field",)
                if ucum not in cfile.units:
                    self.diags.append(doc.diag(where, "PW112", f"UCUM '{_short(ucum)}' is not under 'units'",
                                               suggest(ucum, list(cfile.units))))
                elif cfile.units[ucum] not in accepted:
                    self.diags.append(doc.diag(where, "PW112",
                                               f"UCUM '{_short(ucum)}' reads as '{cfile.units[ucum]}', not a unit of "
                                               f"'{obs.field}' (" + (", ".join(sorted(accepted)) or "it takes no unit") + ")"))
                else:
                    units[ucum] = cfile.units[ucum]
            if fdef.type in ("number", "integer") and fdef.unit and not units and obs.units is None:
                self.diags.append(doc.diag(at + ("field",), "PW112",
                                           f"no UCUM unit under 'units' reads as a unit of '{obs.field}' "
                                           f"({', '.join(sorted(accepted))})"))
            observations[key] = ObservationMap(key[0], obs.code, obs.display, obs.field, units, obs.verified, obs.note)
        answers: dict[tuple[str, str], Any] = {}
        for i, ans in enumerate(cfile.answers):
            key = (system(("answers", i, "system"), ans.system), ans.code)
            if key in answers:
                self.diags.append(doc.diag(("answers", i, "code"), "PW112", f"answer '{_short(ans.code)}' is listed twice"))
            answers[key] = ans.value
        orders: dict[tuple[str, str], OrderMap] = {}
        for i, order in enumerate(cfile.orders):
            at = ("orders", i)
            key = (system(at + ("system",), order.system), order.code)
            if key in orders:
                self.diags.append(doc.diag(at + ("code",), "PW112", f"code '{_short(order.code)}' is listed twice"))
            records: list[tuple[str, Any]] = []
            for k, record in enumerate(order.records):
                if len(record) != 1:
                    self.diags.append(doc.diag(at + ("records", k), "PW112", "a record is one field and its value"))
                    continue
                (name, value), = record.items()
                fdef = field_of(at + ("records", k, name), name)
                if fdef is None:
                    continue
                if fdef.scope == "patient":
                    self.diags.append(doc.diag(at + ("records", k, name), "PW112",
                                               f"'{name}' belongs to the patient record; an order is an event"))
                ok = (isinstance(value, bool) if fdef.type == "boolean"
                      else isinstance(value, str) and value in fdef.values if fdef.type == "enum" else False)
                if not ok:
                    self.diags.append(doc.diag(at + ("records", k, name), "PW112",
                                               f"{value!r} is not a value of '{name}' ({fdef.type}"
                                               + (f": {', '.join(fdef.values)}" if fdef.type == "enum" else "") + ")"))
                    continue
                records.append((name, value))
            if order.daily_dose is not None:
                fdef = field_of(at + ("daily_dose",), order.daily_dose)
                if fdef is not None and (fdef.type != "number" or fdef.unit != "mg/day"):
                    self.diags.append(doc.diag(at + ("daily_dose",), "PW112",
                                               f"'{order.daily_dose}' is not a number field in mg/day"))
            agent = order.agent
            if agent is None:  # a medicine that records a decision is the option it records
                agent = next((v for _n, v in records if isinstance(v, str)), None)
                agent = agent if agent is not None and "MedicationRequest" in order.resources else None
            elif agents is not None and agent not in agents:
                self.diags.append(doc.diag(at + ("agent",), "PW112",
                                           f"agent '{_short(agent)}' is no option or computed medicine of the rules",
                                           suggest(agent, agents)))
            if order.avoid is not None and avoid_rules is not None and order.avoid not in avoid_rules:
                self.diags.append(doc.diag(at + ("avoid",), "PW112",
                                           f"'{_short(order.avoid)}' is no rule with an 'avoid' recommendation",
                                           suggest(order.avoid, avoid_rules)))
            orders[key] = OrderMap(key[0], order.code, order.display, tuple(order.resources), tuple(records),
                                   order.daily_dose, order.verified, order.note, agent, tuple(order.names),
                                   order.avoid)
        return Terminology(observations=observations, orders=orders, answers=answers, units=dict(cfile.units),
                           local_system=cfile.local_system, systems=dict(cfile.systems))

    def _consistency(self, doc: Located, ffile: FieldsFile, params: dict[str, Any]) -> list[Consistency]:
        """Checks between values of one event (``consistency:``): two number fields compared, or a
        combination of input values forbidden (``forbid:``)."""
        authored = ffile.fields
        out: list[Consistency] = []
        seen: dict[str, int] = {}
        inputs = [n for n, d in authored.items() if d.aggregate is None]

        def field_type(name: str) -> tuple[str, list[str]] | None:
            f = authored.get(name)
            return (f.type, list(f.values)) if f is not None and f.aggregate is None else None

        for i, check in enumerate(ffile.consistency):
            where = ("consistency", i)
            before = len(self.diags)
            if check.id in seen:
                self.diags.append(doc.diag(where + ("id",), "PW205",
                                           f"duplicate check id '{check.id}' (first at line {seen[check.id]})"))
            seen.setdefault(check.id, doc.pos(where)[0])
            ops = [op for op in ("gt", "gte", "lt", "lte") if getattr(check, op) is not None]
            if check.forbid is not None:
                if ops or check.field is not None:
                    self.diags.append(doc.diag(where, "PW112", "a consistency check is either 'forbid' (a condition) or "
                                                               "'field' with one of 'gt', 'gte', 'lt', 'lte', not both"))
                    continue
                parser = C.ConditionParser(doc, field_type, lambda name: None, params, sorted(inputs), self.diags)
                cond = parser.parse(check.forbid, where + ("forbid",))
                named = list(dict.fromkeys(c.field for c in C.fields_of(cond)))
                if len(self.diags) > before:
                    continue
                if not named:
                    self.diags.append(doc.diag(where + ("forbid",), "PW112", "'forbid' must test at least one input field"))
                    continue
                line, col = doc.pos(where)
                out.append(Consistency(check.id, check.title, named[0], None, "", doc.file, line, col, forbid=cond))
                continue
            if check.field is None or len(ops) != 1:
                self.diags.append(doc.diag(where, "PW112", "a consistency check names the other field with exactly one of "
                                                           "'gt', 'gte', 'lt', 'lte'"))
                continue
            op = ops[0]
            other = cast(str, getattr(check, op))
            for key, name in (("field", check.field), (op, other)):
                f = authored.get(name)
                if f is None or f.aggregate is not None:
                    self.diags.append(doc.diag(where + (key,), "PW202", f"unknown input field '{name}'",
                                               suggest(name, [n for n, d in authored.items() if d.aggregate is None])))
                elif f.type not in ("number", "integer"):
                    self.diags.append(doc.diag(where + (key,), "PW209", f"'{op}' needs a number, but '{name}' is {f.type}"))
            if len(self.diags) > before:
                continue
            a, b = authored[check.field], authored[other]
            if a.unit != b.unit:
                self.diags.append(doc.diag(where, "PW112", f"'{check.field}' is in {a.unit or 'no unit'} and '{other}' in "
                                                           f"{b.unit or 'no unit'}; compare fields of the same unit"))
                continue
            line, col = doc.pos(where)
            out.append(Consistency(check.id, check.title, check.field, cast(Any, op), other, doc.file, line, col))
        return out

    def _check_timeline(self, fdoc: Located, spec: PathwayFile, authored: dict[str, FieldDef],
                        fields: dict[str, FieldDef | None], params: dict[str, Any]) -> None:
        """Validity windows and history (computed) fields of fields.yaml: one form of validity each,
        windows with a length, aggregates whose window and type make sense. An aggregate's days given as
        ``$parameters`` are resolved in ``fields`` (the definition's)."""
        for name, authored_def in authored.items():
            where = ("fields", name)
            fdef = authored_def
            if fdef.aggregate is not None:
                resolved = self._resolve_days(fdoc, where + ("aggregate",), fdef.aggregate, params)
                if resolved is not fdef.aggregate:
                    fdef = fdef.model_copy(update={"aggregate": resolved})
                    fields[name] = fdef
            v = fdef.valid_for
            if v is not None and fdef.valid_for_days is not None:
                self.diags.append(fdoc.diag(where + ("valid_for_days",), "PW112",
                                            "give either 'valid_for' or the older 'valid_for_days', not both", key=True))
            if v is not None:
                set_ = v.model_fields_set
                kinds = [k for k in ("hours", "days", "until") if getattr(v, k) is not None]
                if len(kinds) != 1:
                    self.diags.append(fdoc.diag(where + ("valid_for",), "PW112",
                                                "'valid_for' takes exactly one of 'hours', 'days' or 'until' "
                                                f"(got {', '.join(kinds) or 'none'})"))
                elif kinds == ["until"] and "end" in set_:
                    self.diags.append(fdoc.diag(where + ("valid_for", "end"), "PW112",
                                                "'end' belongs to a window ('hours' or 'days'), not to 'until'", key=True))
            if fdef.aggregate is not None and (v is not None or fdef.valid_for_days is not None):
                key = "valid_for" if v is not None else "valid_for_days"
                self.diags.append(fdoc.diag(where + (key,), "PW112",
                                            "a computed field is computed now from the record; it has no validity of its own",
                                            key=True))
            agg = fdef.aggregate
            if agg is None:
                continue
            apath = where + ("aggregate",)
            self._check_window(fdoc, apath, agg, spec)
            parts = [(agg, apath)] + ([(agg.baseline, apath + ("fall_from" if agg.fall_from is not None else "rise_from",))]
                                      if agg.baseline is not None else [])
            for part, part_path in parts:
                for key in ("since_change_of", "confirmed_by"):
                    other = getattr(part, key)
                    if other is not None and other not in fields:
                        self.diags.append(fdoc.diag(part_path + (key,), "PW202", f"unknown field '{other}'",
                                                    suggest(other, list(fields))))
                if part.settled is not None and part.since_change_of is None:
                    self.diags.append(fdoc.diag(part_path + ("settled",), "PW112",
                                                "'settled' counts from the last change of the field named by "
                                                "'since_change_of'; give it"))
                if part.confirmed_by is None:
                    continue
                mark = fields.get(part.confirmed_by)
                if mark is not None and mark.type != "boolean":
                    self.diags.append(fdoc.diag(part_path + ("confirmed_by",), "PW112",
                                                f"'confirmed_by' names a yes/no field; '{part.confirmed_by}' is {mark.type}"))
                windowed = [k for k in ("from_day", "to_day", "within", "since", "until", "after_entry", "since_change_of",
                                        "settled", "counted_from", "values", "min_days", "or_else")
                            if k in part.model_fields_set]
                if part.fn != "last" or windowed:
                    self.diags.append(fdoc.diag(part_path + ("confirmed_by",), "PW112",
                                                "'confirmed_by' gives the value last confirmed: it takes fn: last and no "
                                                "window" + (f" (remove {', '.join(windowed)})" if windowed else "")))
            if agg.per is not None:
                divisor = fields.get(agg.per)
                if agg.per not in fields:
                    self.diags.append(fdoc.diag(apath + ("per",), "PW202", f"unknown field '{agg.per}'",
                                                suggest(agg.per, list(fields))))
                elif divisor is None or divisor.type not in ("number", "integer") or divisor.aggregate is not None:
                    what = ("a built-in" if divisor is None else
                            "a computed field" if divisor.aggregate is not None else divisor.type)
                    self.diags.append(fdoc.diag(apath + ("per",), "PW112",
                                                f"'per' divides by a recorded number field; '{agg.per}' is {what}"))
                if agg.baseline is not None or agg.percent or fdef.type != "number" or agg.fn in ("count", "ever"):
                    self.diags.append(fdoc.diag(apath + ("per",), "PW112",
                                                "'per' gives a number per unit of another field: a number field, "
                                                "without fall_from, rise_from or percent, of a number (not count or ever)"))
            if agg.fall_from is not None and agg.rise_from is not None:
                self.diags.append(fdoc.diag(apath + ("rise_from",), "PW112",
                                            "give 'fall_from' or 'rise_from', not both", key=True))
            if agg.percent and agg.baseline is None:
                self.diags.append(fdoc.diag(apath + ("percent",), "PW112",
                                            "'percent' applies to a fall or rise ('fall_from' or 'rise_from')", key=True))
            base = agg.baseline
            if base is not None:
                key = "fall_from" if agg.fall_from is not None else "rise_from"
                self._check_window(fdoc, apath + (key,), base, spec)
                if base.baseline is not None or base.percent:
                    self.diags.append(fdoc.diag(apath + (key,), "PW112",
                                                "a baseline is one aggregate, without a fall, rise or percent of its own"))
                for part, part_path in ((agg, apath), (base, apath + (key,))):
                    kind = fields.get(part.of)
                    if part.fn in ("count", "ever") or (kind is not None and kind.type not in ("number", "integer")):
                        self.diags.append(fdoc.diag(part_path + ("fn",), "PW112",
                                                    f"'{key}' compares numbers; '{part.fn}' of '{part.of}' is not one"))
                if base.of not in fields:
                    self.diags.append(fdoc.diag(apath + (key, "of"), "PW202", f"unknown field '{base.of}'",
                                                suggest(base.of, list(fields))))
                if fdef.type != "number":
                    self.diags.append(fdoc.diag(where + ("type",), "PW112",
                                                f"a change from a baseline is a number, not {fdef.type}"))
                continue
            source = fields.get(agg.of)
            if source is None:
                continue
            for i, value in enumerate(agg.values or ()):
                if source.type == "enum" and value not in (source.values or ()):
                    known = ", ".join(map(str, source.values or ()))
                    self.diags.append(fdoc.diag(apath + ("values", i), "PW112",
                                                f"{value!r} is not a value of '{agg.of}' ({known})"))
            wanted = {"ever": ("boolean",), "count": ("integer",), "mean": ("number",)}.get(
                agg.fn, ("number", "integer") if source.type in ("number", "integer") else (source.type,))
            if agg.fn in ("mean", "min", "max") and source.type not in ("number", "integer"):
                self.diags.append(fdoc.diag(apath + ("fn",), "PW112",
                                            f"'{agg.fn}' needs a number field; '{agg.of}' is {source.type}"))
            elif fdef.type not in wanted:
                self.diags.append(fdoc.diag(where + ("type",), "PW112",
                                            f"'{agg.fn}' of '{agg.of}' gives {' or '.join(wanted)}, not {fdef.type}"))

    def _resolve_days(self, fdoc: Located, apath: tuple[Any, ...], agg: Aggregate, params: dict[str, Any]) -> Aggregate:
        """``agg`` with its ``from_day`` and ``to_day`` (and those of its baseline and ``or_else``) as numbers: a
        ``$parameter`` replaced by its value (a day from 0 to MAX_DAY); a problem is reported and the day put at
        the window's widest, so the checks that follow still run."""
        update: dict[str, Any] = {}
        for key, widest in (("from_day", 0.0), ("to_day", float(MAX_DAY))):
            raw = getattr(agg, key)
            if isinstance(raw, str):
                day = self._window_day(fdoc, apath + (key,), key, raw, params)
                update[key] = widest if day is None else day[0]
        for key in ("fall_from", "rise_from", "or_else"):
            part = getattr(agg, key)
            if part is not None:
                done = self._resolve_days(fdoc, apath + (key,), part, params)
                if done is not part:
                    update[key] = done
        return agg.model_copy(update=update) if update else agg

    def _window_day(self, doc: Located, where: tuple[Any, ...], key: str, raw: Any,
                    params: dict[str, Any]) -> tuple[float, str | None] | None:
        """A window's day (a decision point's, an aggregate's): a number, or a ``$parameter`` whose value is one,
        from 0 to MAX_DAY; with the parameter's name. None when it is not one (the problem is reported at ``where``)."""
        param = None
        value = raw
        if isinstance(raw, str):
            param = raw[1:] if raw.startswith("$") else None
            if param is None or param not in params:
                self.diags.append(_parameter_problem(doc, where, raw, params))
                return None
            value = params[param]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_DAY:
            problem = (f"'{key}' is a day from 0 to {MAX_DAY}; parameter '{param}' is {value!r}" if param is not None
                       else f"'{key}' must be a day from 0 to {MAX_DAY}, not {value!r}")
            self.diags.append(doc.diag(where, "PW112", problem))
            return None
        return float(value), param

    def _check_window(self, fdoc: Located, apath: tuple[Any, ...], agg: Aggregate, spec: PathwayFile) -> None:
        """The window of one aggregate: known states, a window with one length, days in order."""
        for key in ("since", "until"):
            ref = getattr(agg, key)
            names = [ref] if isinstance(ref, str) else list(ref or [])
            for i, name in enumerate(names):
                if name not in spec.states:
                    at = apath + ((key,) if isinstance(ref, str) else (key, i))
                    self.diags.append(fdoc.diag(at, "PW201", f"unknown state '{name}'", suggest(name, list(spec.states))))
        if agg.within is not None and agg.within.span_hours is None:
            self.diags.append(fdoc.diag(apath + ("within",), "PW112", "'within' needs 'hours' or 'days'"))
        if agg.within is not None and agg.within.hours is not None and agg.within.days is not None:
            self.diags.append(fdoc.diag(apath + ("within",), "PW112", "'within' takes 'hours' or 'days', not both"))
        if not isinstance(agg.from_day, str) and not isinstance(agg.to_day, str) and agg.from_day > agg.to_day:
            self.diags.append(fdoc.diag(apath + ("to_day",), "PW112",
                                        f"'to_day' {agg.to_day:g} comes before 'from_day' {agg.from_day:g}"))
        if agg.counted_from is not None and agg.counted_from not in spec.states:
            self.diags.append(fdoc.diag(apath + ("counted_from",), "PW201", f"unknown state '{agg.counted_from}'",
                                        suggest(agg.counted_from, list(spec.states))))
        if agg.after_entry and agg.since is None:
            self.diags.append(fdoc.diag(apath + ("after_entry",), "PW112", "'after_entry' needs 'since'", key=True))
        if agg.or_else is not None:
            self._check_window(fdoc, apath + ("or_else",), agg.or_else, spec)
            if agg.or_else.of != agg.of:
                self.diags.append(fdoc.diag(apath + ("or_else", "of"), "PW112",
                                            f"'or_else' stands in for '{agg.of}'; it reads '{agg.or_else.of}'"))

    def _decisions(self, pdoc: Located, spec: PathwayFile, params: dict[str, Any]) -> dict[str, DecisionPoint]:
        """Decision points with their windows resolved (numbers or ``$parameters``)."""
        out: dict[str, DecisionPoint] = {}
        for name, ddef in spec.decision_points.items():
            bounds: list[tuple[float, str | None]] = []
            for key in ("from_day", "before_day"):
                day = self._window_day(pdoc, ("decision_points", name, key), key, getattr(ddef, key), params)
                if day is None:
                    break
                bounds.append(day)
            if len(bounds) != 2:
                continue
            (start, start_param), (end, end_param) = bounds
            if end <= start:
                self.diags.append(pdoc.diag(("decision_points", name, "before_day"), "PW112",
                                            f"the window of '{name}' is empty: before_day {end:g} is not after "
                                            f"from_day {start:g}"))
                continue
            origin = ddef.counted_from
            if origin is not None:
                where = ("decision_points", name, "counted_from")
                if origin not in spec.states:
                    self.diags.append(pdoc.diag(where, "PW201", f"unknown state '{origin}'",
                                                suggest(origin, list(spec.states))))
                    continue
                if self._reentered(spec, origin):
                    self.diags.append(pdoc.diag(where, "PW112", f"the days of '{name}' cannot count from '{origin}': "
                                                                f"a patient can enter '{origin}' again (it is on a cycle "
                                                                "of transitions), so its first day would not be its "
                                                                "days_in_state"))
                    continue
            out[name] = DecisionPoint(name, ddef.title, start, end, start_param, end_param, ddef.note, origin)
        return out

    def _reentered(self, spec: PathwayFile, state: str) -> bool:
        """True when a patient can enter ``state`` again after leaving it (a cycle of transitions through it)."""
        edges = list(self._edges(spec))
        todo, seen = [b for a, b in edges if a == state], set()
        while todo:
            here = todo.pop()
            if here == state:
                return True
            if here not in seen:
                seen.add(here)
                todo += [b for a, b in edges if a == here]
        return False

    def _kept(self, rules: list[Rule]) -> dict[str, str]:
        """Derived fact -> the decision point that keeps it. A kept fact is derived only by rules of
        its own decision point (PW222): another rule deriving it would fire beside the kept value."""
        kept: dict[str, str] = {}
        by: dict[str, Rule] = {}
        for rule in rules:
            if rule.decision_point is None:
                continue
            for name in derived_by(rule.then + rule.otherwise + rule.if_missing):
                if name in kept and kept[name] != rule.decision_point:
                    self.diags.append(Diagnostic(rule.file, rule.line, rule.col, "PW222",
                                                 f"derived fact '{name}' is kept by decision point '{kept[name]}' "
                                                 f"(rule '{by[name].id}'); rule '{rule.id}' derives it at decision point "
                                                 f"'{rule.decision_point}'"))
                    continue
                kept.setdefault(name, rule.decision_point)
                by.setdefault(name, rule)
        for rule in rules:
            if rule.decision_point is not None:
                continue
            for name in derived_by(rule.then + rule.otherwise + rule.if_missing):
                if name in kept:
                    self.diags.append(Diagnostic(rule.file, rule.line, rule.col, "PW222",
                                                 f"derived fact '{name}' is kept by decision point '{kept[name]}' "
                                                 f"(rule '{by[name].id}'), so rule '{rule.id}' may not derive it: add "
                                                 f"'decision_point: {kept[name]}' to it, or derive another fact"))
        return kept

    def _profile(self, pdoc: Located, spec: PathwayFile, profile_id: str) -> dict[str, Any]:
        """Parameter values of a site profile, checked against the pathway's parameters."""
        available = sorted(p.stem for p in (self.root / "profiles").glob("*.yaml"))
        if profile_id not in available:
            where: tuple[Any, ...] = ("default_profile",) if profile_id == spec.default_profile and not self.profile else ()
            self.diags.append(pdoc.diag(where, "PW211", f"unknown profile '{profile_id}'",
                                        suggest(profile_id, available)))
            return {}
        doc = self._load(f"profiles/{profile_id}.yaml")
        profile: ProfileFile | None = self._validate(doc, ProfileFile) if doc else None
        if profile is None:
            return {}
        assert doc is not None  # profile was validated from it
        if profile.id != profile_id:
            self.diags.append(doc.diag(("id",), "PW112",
                                       f"profile id '{profile.id}' does not match its file name '{profile_id}'"))
        for k, src in enumerate(profile.sources):
            if src not in spec.sources:
                self.diags.append(doc.diag(("sources", k), "PW204", f"unknown source '{src}'", suggest(src, spec.sources)))
        values: dict[str, Any] = {}
        for name, value in profile.parameters.items():
            where = ("parameters", name)
            p = spec.parameters.get(name)
            if p is None:
                self.diags.append(doc.diag(where, "PW203", f"unknown parameter '{name}'", suggest(name, spec.parameters),
                                           key=True))
                continue
            if not _same_kind(p.value, value):
                self.diags.append(doc.diag(where, "PW112",
                                           f"parameter '{name}' is {type(p.value).__name__}; {value!r} does not fit"))
                continue
            if p.choices and value not in p.choices:
                self.diags.append(doc.diag(where, "PW112", f"{value!r} is not one of the choices for '{name}': {p.choices}"))
                continue
            values[name] = value
        return values

    def _check_field(self, doc: Located, name: str, f: FieldDef, spec: PathwayFile) -> None:
        """Unit handling of one field: ambiguity bands, ``unit_required`` and ``display``."""
        where = ("fields", name)
        number = f.type in ("number", "integer")
        if f.range is not None:
            self._ordered(doc, where + ("range",), f"the plausible range of '{name}'", *f.range)
        if f.valid_for_days is not None and f.valid_for_days <= 0:
            self.diags.append(doc.diag(where + ("valid_for_days",), "PW112",
                                       f"'valid_for_days' is a number of days above 0, not {f.valid_for_days:g}"))
        for key in ("ambiguous", "unit_required", "display"):
            if getattr(f, key) and not number:
                self.diags.append(doc.diag(where + (key,), "PW112", f"'{key}' applies to number fields; '{name}' is {f.type}",
                                           key=True))
            elif getattr(f, key) and f.aggregate is not None:
                self.diags.append(doc.diag(where + (key,), "PW112",
                                           f"'{key}' applies to input fields; '{name}' is computed (aggregate)", key=True))
        if f.provisional and (f.type != "enum" or f.aggregate is not None):
            self.diags.append(doc.diag(where + ("provisional",), "PW112",
                                       f"'provisional' applies to enum input fields; '{name}' is {f.type}", key=True))
        elif f.provisional:
            for i, value in enumerate(f.provisional):
                if value not in f.values:
                    self.diags.append(doc.diag(where + ("provisional", i), "PW112",
                                               f"'{value}' is not one of the values of '{name}': {', '.join(f.values)}",
                                               suggest(value, f.values)))
            if set(f.values) <= set(f.provisional):
                self.diags.append(doc.diag(where + ("provisional",), "PW112",
                                           f"every value of '{name}' is provisional: none could replace them"))
        if f.display is not None and (f.display.decimals is None) == (f.display.step is None):
            self.diags.append(doc.diag(where + ("display",), "PW112", "'display' needs exactly one of 'decimals' or 'step'"))
        if not number or f.aggregate is not None:
            return
        others = [u for u in units_for(f.quantity) if u != f.unit]
        for i, band in enumerate(f.ambiguous):
            bpath = where + ("ambiguous", i)
            for k, src in enumerate(band.evidence.sources):
                if src not in spec.sources:
                    self.diags.append(doc.diag(bpath + ("evidence", "sources", k), "PW204", f"unknown source '{src}'",
                                               suggest(src, spec.sources)))
            self._evidence_authority(doc, bpath + ("evidence",), band.evidence, spec)
            low, high = band.range
            if low > high:
                self.diags.append(doc.diag(bpath + ("range",), "PW112",
                                           f"band [{low:g}, {high:g}]: the low end is above the high end"))
                continue
            if band.unit not in others:
                accepted = f"it converts {', '.join(others)}" if others else "it has no other unit (no 'quantity' to convert)"
                self.diags.append(doc.diag(bpath + ("unit",), "PW217",
                                           f"'{name}' does not convert unit '{band.unit}' ({accepted})",
                                           suggest(band.unit, others)))
                continue
            read_low, read_high = convert(f.quantity, low, band.unit), convert(f.quantity, high, band.unit)
            assert read_low is not None and read_high is not None  # the unit converts (checked above)
            if read_low == low and read_high == high:
                self.diags.append(doc.diag(bpath + ("unit",), "PW217",
                                           f"unit '{band.unit}' reads a number as the same {f.unit} value; "
                                           "a band needs a unit that reads it differently"))
                continue
            if f.range is None:
                continue
            r_low, r_high = f.range
            unit = f" {f.unit}" if f.unit else ""
            if low < r_low or high > r_high:
                self.diags.append(doc.diag(bpath + ("range",), "PW216",
                                           f"band {low:g}–{high:g} is outside the plausible range {r_low:g}–{r_high:g}{unit} "
                                           f"of '{name}'"))
            elif min(read_low, read_high) < r_low or max(read_low, read_high) > r_high:
                self.diags.append(doc.diag(bpath + ("range",), "PW216",
                                           f"band {low:g}–{high:g} read in {band.unit} is {read_low:g}–{read_high:g}{unit}, "
                                           f"outside the plausible range {r_low:g}–{r_high:g}{unit} of '{name}': a band "
                                           "holds only numbers plausible in both units"))

    def _edges(self, spec: PathwayFile) -> dict[tuple[str, str], None]:
        """The edges of the declared transitions, found once per load (rules are checked against them)."""
        if self._edge_pairs is None:
            self._edge_pairs = transition_pairs(spec)
        return self._edge_pairs

    def _bad_id(self, doc: Located, path: tuple[str, str]) -> None:
        """PW112 at a key that is not an id (lower case letters, digits and '_', starting with a letter)."""
        key = path[-1]
        fixed = re.sub(r"[^a-z0-9_]", "_", key.lower())
        self.diags.append(doc.diag(path, "PW112", f"{key!r} is not a valid id (lower case letters, digits and '_', "
                                                  "starting with a letter)", fixed if fixed != key else None, key=True))

    def _check_source_ids(self, doc: Located, sources: dict[str, Any]) -> None:
        """PW112 at a source id with anything but letters, digits, '_', '.' and '-' (ids are printed in every output)."""
        for sid in sources:
            if not re.fullmatch(SOURCE_ID_PATTERN, sid):
                self.diags.append(doc.diag(("sources", sid), "PW112", f"{sid!r} is not a valid source id (letters, digits, "
                                                                      "'_', '.' and '-', starting with a letter)", key=True))

    def _check_pathway(self, doc: Located, spec: PathwayFile) -> None:
        for section in ("states", "parameters", "derived", "decision_points", "phases"):
            for key in getattr(spec, section):
                if not re.fullmatch(ID_PATTERN, key):  # fullmatch: '$' alone would let a final newline through
                    self._bad_id(doc, (section, key))
        for sid, sdef in spec.states.items():
            if sdef.phase is not None and sdef.phase not in spec.phases:
                known = ", ".join(spec.phases) or "none declared under 'phases:'"
                self.diags.append(doc.diag(("states", sid, "phase"), "PW112",
                                           f"unknown phase '{_short(sdef.phase)}' (phases: {_short(known)})",
                                           suggest(sdef.phase, list(spec.phases))))
        states = list(spec.states)
        starts = [s for s, d in spec.states.items() if d.kind == "start"]
        if len(starts) != 1:
            if not starts:
                self.diags.append(doc.diag(("states",), "PW208", "a pathway needs exactly one start state, found none"))
            for extra in starts[1:]:
                self.diags.append(doc.diag(("states", extra, "kind"), "PW208",
                                           f"second start state '{extra}' (the start is '{starts[0]}'); "
                                           "a pathway has exactly one start state"))
        for i, t in enumerate(spec.transitions):
            sources = [t.from_] if isinstance(t.from_, str) else t.from_
            for j, src in enumerate(sources):
                where = ("transitions", i, "from") + ((j,) if not isinstance(t.from_, str) else ())
                if src != ANY_ACTIVE and src not in spec.states:
                    self.diags.append(doc.diag(where, "PW201", f"unknown state '{src}'", suggest(src, states + [ANY_ACTIVE])))
                elif src in spec.states and spec.states[src].kind == "terminal":
                    self.diags.append(doc.diag(where, "PW207", f"terminal state '{src}' cannot have a way out"))
            if t.to not in spec.states:
                self.diags.append(doc.diag(("transitions", i, "to"), "PW201", f"unknown state '{t.to}'", suggest(t.to, states)))
        for name, p in spec.parameters.items():
            for k, src in enumerate(p.sources):
                if src not in spec.sources:
                    self.diags.append(doc.diag(("parameters", name, "sources", k), "PW204", f"unknown source '{src}'",
                                               suggest(src, spec.sources)))
            if p.choices and p.value not in p.choices:
                self.diags.append(doc.diag(("parameters", name, "value"), "PW112",
                                           f"value {p.value!r} is not one of the choices {p.choices}"))
        for name, value in self.overrides.items():
            if name not in spec.parameters:
                self.diags.append(doc.diag(("parameters",), "PW203", f"override of unknown parameter '{name}'",
                                           suggest(name, spec.parameters)))
            elif not _same_kind(spec.parameters[name].value, value):
                self.diags.append(doc.diag(("parameters", name), "PW112",
                                           f"override of '{name}' with {_short(repr(value))} does not fit its type"))
            elif (problem := number_problem(value)) is not None:
                self.diags.append(doc.diag(("parameters", name), problem[0], f"override of '{name}': {problem[1]}"))

    def _parser(self, doc: Located, spec: PathwayFile, fields: dict[str, FieldDef | None],
                params: dict[str, Any], known: list[str] | None = None) -> C.ConditionParser:
        """A parser of conditions on the fields, derived facts and states of this pathway."""
        state_names = list(spec.states)

        def field_type(name: str) -> tuple[str, list[str]] | None:
            if name == "state":
                return ("enum", state_names)
            f = fields.get(name)
            return (f.type, list(f.values)) if f is not None else None

        def derived_type(name: str) -> tuple[str, list[str]] | None:
            d = spec.derived.get(name)
            return (d.type, list(d.values)) if d is not None else None

        if known is None:
            known = sorted([n for n in fields] + list(spec.derived))
        return C.ConditionParser(doc, field_type, derived_type, params, known, self.diags, self.mutation, self.sites)

    def _watchdogs(self, pdoc: Located, spec: PathwayFile, fields: dict[str, FieldDef | None],
                   params: dict[str, Any]) -> dict[str, C.Cond]:
        """Each state's overdue condition, parsed like a rule's 'when'; its text may name values."""
        known = sorted([n for n in fields if n != "state"] + list(spec.derived))
        out: dict[str, C.Cond] = {}
        for sid, sdef in spec.states.items():
            if sdef.overdue is None:
                continue
            where = ("states", sid, "overdue")
            if sdef.kind == "terminal":
                self.diags.append(pdoc.diag(where, "PW112", "a terminal state has no decision to be overdue"))
            parser = self._parser(pdoc, spec, fields, params)
            parser.owner = f"state {sid}"
            out[sid] = parser.parse(sdef.overdue.when, where + ("when",))
            for k, src in enumerate(sdef.overdue.evidence.sources):
                if src not in spec.sources:
                    self.diags.append(pdoc.diag(where + ("evidence", "sources", k), "PW204", f"unknown source '{src}'",
                                                suggest(src, spec.sources)))
            self._evidence_authority(pdoc, where + ("evidence",), sdef.overdue.evidence, spec)
            for key in ("text", "summary"):
                for name in TEMPLATE_RE.findall(getattr(sdef.overdue, key)):
                    if name not in fields and name not in spec.derived and name not in params:
                        self.diags.append(pdoc.diag(where + (key,), "PW202", f"unknown name '{{{name}}}' in the {key}",
                                                    suggest(name, known + list(params))))
        return out

    def _rule(self, doc: Located, path: tuple[Any, ...], rdef: Any, spec: PathwayFile,
              fields: dict[str, FieldDef | None], params: dict[str, Any],
              decisions: dict[str, DecisionPoint]) -> Rule | None:
        before = len(self.diags)
        state_names = list(spec.states)
        in_values = [rdef.in_] if isinstance(rdef.in_, str) else list(rdef.in_)
        for k, name in enumerate(in_values):
            if name != ANY_ACTIVE and name not in spec.states:
                where = path + ("in",) + (() if isinstance(rdef.in_, str) else (k,))
                self.diags.append(doc.diag(where, "PW201", f"unknown state '{name}'", suggest(name, state_names + [ANY_ACTIVE])))
        states = tuple(s for s in expand_sources(spec, rdef.in_) if s in spec.states) if ANY_ACTIVE in in_values else tuple(
            s for s in in_values if s in spec.states)

        known = sorted([n for n in fields] + list(spec.derived))
        parser = self._parser(doc, spec, fields, params, known)
        parser.owner = rdef.id
        due = parser.parse(rdef.due, path + ("due",)) if rdef.due is not None else C.Always()
        when = parser.parse(rdef.when, path + ("when",)) if rdef.when is not None else C.Always()
        for k, name in enumerate(rdef.requires):
            if name not in fields or name == "state":
                self.diags.append(doc.diag(path + ("requires", k), "PW202", f"unknown field '{name}'", suggest(name, known)))
        requires = list(rdef.requires)
        then = self._effects(doc, rdef.then, path + ("then",), spec, states, fields, params, known, parser, requires)
        otherwise = self._effects(doc, rdef.otherwise, path + ("otherwise",), spec, states, fields, params, known, parser,
                                  requires)
        if_missing = self._effects(doc, rdef.if_missing, path + ("if_missing",), spec, states, fields, params, known, parser,
                                   requires)
        if rdef.if_missing and not rdef.requires:
            self.diags.append(doc.diag(path + ("if_missing",), "PW112", "'if_missing' needs a 'requires' list"))
        if any(isinstance(e, (Transition, Dose, Titrate, Score)) for e in if_missing):
            self.diags.append(doc.diag(path + ("if_missing",), "PW112",
                                       "'if_missing' may not move the patient or compute doses or scores on missing data"))
        if not rdef.then and not rdef.otherwise and not rdef.if_missing:
            self.diags.append(doc.diag(path, "PW111", f"rule '{rdef.id}' has no effects ('then', 'otherwise' or 'if_missing')"))
        if rdef.otherwise and rdef.when is None:
            self.diags.append(doc.diag(path + ("otherwise",), "PW112", "'otherwise' needs a 'when' condition to negate"))
        for k, src in enumerate(rdef.evidence.sources):
            if src not in spec.sources:
                self.diags.append(doc.diag(path + ("evidence", "sources", k), "PW204", f"unknown source '{src}'",
                                           suggest(src, spec.sources)))
        self._evidence_authority(doc, path + ("evidence",), rdef.evidence, spec)
        self._signoff(doc, path, rdef)
        if any(isinstance(e, Dose) for e in then + otherwise) and "weight_kg" in fields and "weight_kg" not in requires:
            requires.append("weight_kg")
        if rdef.if_missing:
            probe = Rule(id=rdef.id, title="", file="", line=0, col=0, states=(), priority=0, due=C.Always(), requires=(),
                         when=C.Always(), then=tuple(then), otherwise=(), evidence=rdef.evidence)
            computed = set(probe.computes_with("then"))
            for k, name in enumerate(rdef.requires):
                if name not in computed:
                    self.diags.append(doc.diag(
                        path + ("requires", k), "PW214",
                        f"'{name}' is required but 'then' does not compute with it: with 'if_missing', require only the "
                        "values the 'then' effects compute with, and test the others in 'when' or in another rule"))
        if rdef.decision_point is not None:
            point = decisions.get(rdef.decision_point)
            if point is None:
                if rdef.decision_point not in spec.decision_points:  # (a point with a broken window is reported there)
                    self.diags.append(doc.diag(path + ("decision_point",), "PW221",
                                               f"unknown decision point '{rdef.decision_point}'",
                                               suggest(rdef.decision_point, list(spec.decision_points))))
            elif point.counted_from is not None and states != (point.counted_from,):
                self.diags.append(doc.diag(path + ("in",), "PW221",
                                           f"the days of decision point '{rdef.decision_point}' count from "
                                           f"'{point.counted_from}': its rules are in that state alone, not in "
                                           f"{', '.join(states) or 'no state'}"))
            else:
                # The rule fires only inside the window of its decision point.
                due = C.And((point.window(), due)) if not isinstance(due, C.Always) else point.window()
                parser.used_params.update(p for p in (point.from_param, point.before_param) if p)
        if len(self.diags) > before:
            return None
        line, col = doc.pos(path)
        return Rule(
            id=rdef.id, title=rdef.title, file=doc.file, line=line, col=col, states=states, priority=rdef.priority,
            due=due, requires=tuple(requires), when=when, then=tuple(then), otherwise=tuple(otherwise),
            evidence=rdef.evidence, params=tuple(sorted(parser.used_params)), note=rdef.note, if_missing=tuple(if_missing),
            decision_point=rdef.decision_point,
            reviewed_by=rdef.reviewed_by or "", reviewed_on=rdef.reviewed_on, review_due=rdef.review_due,
        )

    def _signoff(self, doc: Located, path: tuple[Any, ...], rdef: Any) -> None:
        """PW238: ``reviewed_by`` and ``reviewed_on`` come together; ``review_due`` needs them and falls after."""
        if (rdef.reviewed_by is None) != (rdef.reviewed_on is None):
            given, missing = ("reviewed_by", "reviewed_on") if rdef.reviewed_on is None else ("reviewed_on", "reviewed_by")
            self.diags.append(doc.diag(path + (given,), "PW238",
                                       f"'{given}' without '{missing}': a sign-off names who reviewed the rule and when",
                                       key=True))
        if rdef.review_due is not None:
            if rdef.reviewed_on is None:
                if rdef.reviewed_by is not None:
                    return  # said above: the sign-off lacks its date
                self.diags.append(doc.diag(path + ("review_due",), "PW238",
                                           "'review_due' without 'reviewed_on': a review falls due after a sign-off",
                                           key=True))
            elif rdef.review_due <= rdef.reviewed_on:
                self.diags.append(doc.diag(path + ("review_due",), "PW238",
                                           f"review_due {rdef.review_due.isoformat()} is not after reviewed_on "
                                           f"{rdef.reviewed_on.isoformat()}"))

    def _score(self, doc: Located, body: tuple[Any, ...], effect: Score, spec: PathwayFile, fields: dict[str, Any],
               params: dict[str, Any], known: list[str], parser: C.ConditionParser, requires: list[str]) -> Score:
        """Resolve a score: item conditions parsed, factors resolved, every field covered by ``requires``."""
        d = spec.derived.get(effect.name)
        if d is None or d.type != "number":
            self.diags.append(doc.diag(body + ("name",), "PW202",
                                       f"'{effect.name}' must be a number derived fact declared under 'derived:'",
                                       suggest(effect.name, list(spec.derived))))
        used: list[tuple[tuple[Any, ...], str]] = []
        items = []
        for k, item in enumerate(effect.items):
            where = body + ("items", k, "when")
            cond = parser.parse(item.when, where)
            for cmp in C.fields_of(cond):
                used.append((where, cmp.field))
                if cmp.derived:
                    self.diags.append(doc.diag(where, "PW213",
                                               f"score items test case fields only, not derived fact '{cmp.field}'"))
            items.append(ScoreItem.model_construct(when=cond, points=item.points))
        terms = []
        for k, term in enumerate(effect.terms):
            used.append((body + ("terms", k, "field"), term.field))
            factor = self._param(doc, body + ("terms", k, "factor"), term.factor, params, parser)
            if factor is not None and (isinstance(factor, bool) or not isinstance(factor, (int, float))):
                self.diags.append(doc.diag(body + ("terms", k, "factor"), "PW112",
                                           f"'factor' is a number, not {_short(repr(factor))}"))
            elif factor is not None and (problem := number_problem(factor)) is not None:
                self.diags.append(doc.diag(body + ("terms", k, "factor"), problem[0], f"'factor': {problem[1]}"))
            terms.append(ScoreTerm.model_construct(field=term.field, factor=factor))
        if effect.round_to is not None:
            self._positive(doc, body + ("round_to",), "round_to", effect.round_to, None)
        if effect.divide_by is not None:
            used.append((body + ("divide_by",), effect.divide_by))
        for where, name in used:
            f = fields.get(name)
            if f is None and name not in spec.derived:
                self.diags.append(doc.diag(where, "PW202", f"unknown field '{name}'", suggest(name, known)))
            elif name not in spec.derived and name not in requires:
                self.diags.append(doc.diag(where, "PW213", f"score '{effect.name}' uses '{name}', which the rule does not "
                                                           "list under 'requires' (a score is never computed on missing data)"))
        return effect.model_copy(update={"items": items, "terms": terms})

    def _positive(self, doc: Located, where: tuple[Any, ...], key: str, value: Any, param: str | None, *,
                  zero: bool = False, at_most: float | None = None) -> bool:
        """A dose, step, count or rank (written, or the value of ``$param``): a finite number above 0
        (from 0 with ``zero``; at most ``at_most``); otherwise reported (PW112, PW124-PW126)."""
        source = ""
        if param is not None:
            source = f" (parameter '${param}'" + (f", from {self.origin[param]}" if param in self.origin else "") + ")"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.diags.append(doc.diag(where, "PW112", f"'{key}' is a number, not {_short(repr(value))}{source}"))
            return False
        problem = number_problem(value)
        if problem is not None:
            self.diags.append(doc.diag(where, problem[0], f"'{key}': {problem[1]}{source}"))
            return False
        if value < 0 or (value == 0 and not zero) or (at_most is not None and value > at_most):
            bounds = "from 0" if zero else "above 0"
            if at_most is not None:
                bounds += f" and at most {at_most:g}"
            self.diags.append(doc.diag(where, "PW126", f"'{key}' must be {bounds}, not {value:g}{source}"))
            return False
        return True

    def _dose_above_zero(self, doc: Located, body: tuple[Any, ...], resolved: dict[str, Any], weight: Any) -> None:
        """PW126 when a weight-based dose rounds to 0 mg for the lightest plausible patient (the low
        end of the range of ``weight_kg``): the pathway would recommend a dose of 0 mg."""
        per_day = resolved.get("mg_per_kg_per_day") is not None
        per_kg = resolved.get("mg_per_kg_per_day" if per_day else "mg_per_kg")
        times, step = resolved.get("times_per_day"), resolved.get("round_to_mg")
        if weight is None or weight.range is None or weight.range[0] <= 0 or per_kg is None or times is None or step is None:
            return
        lightest = weight.range[0] * float(per_kg) / (float(times) if per_day else 1)
        if lightest < float(step) / 2:
            self.diags.append(doc.diag(body, "PW126",
                                       f"the dose rounds to 0 mg for a patient of {weight.range[0]:g} kg (the lowest "
                                       f"plausible weight): {lightest:g} mg in steps of {step:g} mg"))

    def _ordered(self, doc: Located, where: tuple[Any, ...], what: str, low: Any, high: Any) -> None:
        """PW127 when both ends are numbers and the low one is above the high one."""
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high))
        if numbers and low > high:
            self.diags.append(doc.diag(where, "PW127", f"{what} is [{low:g}, {high:g}]: its low end is above its high end"))

    def _param(self, doc: Located, where: tuple[Any, ...], value: Any, params: dict[str, Any],
               parser: C.ConditionParser) -> Any:
        """A literal, or the value of a ``$parameter`` reference (reported when unknown)."""
        if not isinstance(value, str):
            return value
        name = value[1:] if value.startswith("$") else value
        if not value.startswith("$") or name not in params:
            self.diags.append(_parameter_problem(doc, where, value, params))
            return None
        parser.used_params.add(name)
        return params[name]

    def _effects(self, doc: Located, items: list[Any], path: tuple[Any, ...], spec: PathwayFile, states: tuple[str, ...],
                 fields: dict[str, Any], params: dict[str, Any], known: list[str], parser: C.ConditionParser,
                 requires: list[str]) -> list[Effect]:
        effects = parse_effects(doc, items, path, self.diags)
        out: list[Effect] = []
        template_names: set[str] | None = None  # built for the first text that names a value
        transitions = 0
        for i, effect in effects:
            epath = path + (i,)
            kind_key = next(iter(items[i])) if i < len(items) and isinstance(items[i], dict) else None
            body = epath + ((kind_key,) if kind_key else ())
            if isinstance(effect, Transition):
                transitions += 1
                if effect.to not in spec.states:
                    self.diags.append(doc.diag(body, "PW201", f"unknown state '{effect.to}'",
                                               suggest(effect.to, list(spec.states))))
                else:
                    graph = self._edges(spec)
                    for s in states:
                        if (s, effect.to) not in graph:
                            self.diags.append(doc.diag(body, "PW206",
                                                       f"transition {s} -> {effect.to} is not an edge of the pathway graph"
                                                       + (" (terminal states have no way out)"
                                                          if spec.states[s].kind == "terminal" else "")))
            elif isinstance(effect, Propose):
                if effect.to not in spec.states:
                    self.diags.append(doc.diag(body + ("to",), "PW201", f"unknown state '{effect.to}'",
                                               suggest(effect.to, list(spec.states))))
                else:
                    graph = self._edges(spec)
                    for s in states:
                        if (s, effect.to) not in graph:
                            self.diags.append(doc.diag(body + ("to",), "PW206",
                                                       f"proposal {s} -> {effect.to} is not an edge of the pathway graph"))
                dfield, dvalue = effect.decision
                fdef = fields.get(dfield)
                if fdef is None or fdef.decision is None:
                    self.diags.append(doc.diag(body + ("record",), "PW202",
                                               f"'{dfield}' is not a decision field (a field with 'decision:' in fields.yaml)",
                                               suggest(dfield, [n for n, f in fields.items() if f is not None and f.decision])))
                elif fdef.type == "enum" and dvalue not in fdef.values:
                    self.diags.append(doc.diag(body + ("record", dfield), "PW112",
                                               f"'{dvalue}' is not a value of '{dfield}' ({', '.join(fdef.values)})",
                                               suggest(str(dvalue), fdef.values)))
                else:
                    accepted = expand_sources(spec, fdef.decision.in_)
                    for s in states:
                        if s not in accepted:
                            self.diags.append(doc.diag(body + ("record",), "PW112",
                                                       f"'{dfield}' is not recorded in state '{s}' (its decision 'in' "
                                                       "does not list it), so this proposal could never be enacted"))
            elif isinstance(effect, Derive):
                for name, value in effect.values.items():
                    d = spec.derived.get(name)
                    if d is None:
                        self.diags.append(doc.diag(body + (name,), "PW202",
                                                   f"unknown derived fact '{name}' (declare it under 'derived:' in pathway.yaml)",
                                                   suggest(name, list(spec.derived)), key=True))
                        continue
                    ok = {"boolean": isinstance(value, bool),
                          "number": isinstance(value, (int, float)) and not isinstance(value, bool),
                          "string": isinstance(value, str) and (not d.values or value in d.values)}[d.type]
                    if not ok:
                        self.diags.append(doc.diag(body + (name,), "PW112",
                                                   f"derived fact '{name}' is {d.type}; {value!r} does not fit"))
            elif isinstance(effect, Require):
                for k, name in enumerate(effect.fields):
                    if name not in fields or name == "state":
                        self.diags.append(doc.diag(body + ("fields", k), "PW202", f"unknown field '{name}'",
                                                   suggest(name, known)))
            elif isinstance(effect, Dose):
                resolved: dict[str, Any] = {}
                for key in ("mg_per_kg_per_day", "mg_per_kg", "times_per_day", "round_to_mg", "max_mg_per_dose"):
                    value = getattr(effect, key)
                    param = None
                    if isinstance(value, str):
                        if not value.startswith("$") or value[1:] not in params:
                            self.diags.append(_parameter_problem(doc, body + (key,), value, params))
                            continue
                        param = value[1:]
                        parser.used_params.add(param)
                        value = params[param]
                    if value is not None and not self._positive(doc, body + (key,), key, value, param):
                        continue
                    resolved[key] = value
                if (effect.mg_per_kg_per_day is None) == (effect.mg_per_kg is None):
                    self.diags.append(doc.diag(body, "PW112", "a dose needs exactly one of 'mg_per_kg_per_day' or 'mg_per_kg'"))
                else:
                    self._dose_above_zero(doc, body, resolved, fields.get("weight_kg"))
                if effect.at_days:
                    days = list(effect.at_days)
                    if any(d < 0 for d in days) or days != sorted(set(days)):
                        self.diags.append(doc.diag(body + ("at_days",), "PW112",
                                                   "'at_days' lists days after the first dose, from 0, each once, in order"))
                    if "times_per_day" in effect.model_fields_set or effect.mg_per_kg is None:
                        self.diags.append(doc.diag(body + ("at_days",), "PW112",
                                                   "a scheduled infusion ('at_days') is a dose per administration: give "
                                                   "'mg_per_kg', not 'mg_per_kg_per_day' or 'times_per_day'"))
                elif effect.then_every_days is not None or effect.from_state is not None:
                    key = "then_every_days" if effect.then_every_days is not None else "from_state"
                    self.diags.append(doc.diag(body + (key,), "PW112", f"'{key}' belongs to a scheduled infusion ('at_days')",
                                               key=True))
                if effect.from_state is not None and effect.from_state not in spec.states:
                    self.diags.append(doc.diag(body + ("from_state",), "PW201", f"unknown state '{effect.from_state}'",
                                               suggest(effect.from_state, list(spec.states))))
                targets = {}
                for tname, (low, high) in effect.targets.items():
                    pair = []
                    for k, bound in enumerate((low, high)):
                        param = None
                        if isinstance(bound, str):
                            if bound.startswith("$") and bound[1:] in params:
                                param = bound[1:]
                                parser.used_params.add(param)
                                bound = params[param]
                            else:
                                self.diags.append(doc.diag(body + ("targets", tname), "PW203",
                                                           f"unknown parameter '{_short(bound)}'"))
                                continue
                        if self._positive(doc, body + ("targets", tname, k), f"target {tname}", bound, param,
                                          zero=True):
                            pair.append(bound)
                    if len(pair) == 2:
                        self._ordered(doc, body + ("targets", tname), f"the target range of '{tname}'", pair[0], pair[1])
                    targets[tname] = tuple(pair) if len(pair) == 2 else (low, high)
                resolved["targets"] = targets
                effect = effect.model_copy(update=resolved)
            elif isinstance(effect, Offer):
                rank = self._param(doc, body + ("rank",), effect.rank, params, parser)
                param = effect.rank[1:] if isinstance(effect.rank, str) else None
                if rank is not None and self._positive(doc, body + ("rank",), "rank", rank, param, zero=True):
                    effect = effect.model_copy(update={"rank": rank})
            elif isinstance(effect, Recommend) and effect.medication is not None:
                med = effect.medication
                mpath = body + ("medication",)
                for key in ("dose_mg", "times_per_day"):
                    if getattr(med, key) is not None:
                        self._positive(doc, mpath + (key,), key, getattr(med, key), None)
                for tname, (low, high) in med.targets.items():
                    self._ordered(doc, mpath + ("targets", tname), f"the target range of '{tname}'", low, high)
            elif isinstance(effect, Score):
                effect = self._score(doc, body, effect, spec, fields, params, known, parser, requires)
            elif isinstance(effect, Titrate):
                resolved = {}
                for key in ("target", "times_per_day", "round_to_mg", "max_change_fraction", "max_mg_per_kg_per_day"):
                    raw = getattr(effect, key)
                    resolved[key] = value = self._param(doc, body + (key,), raw, params, parser)
                    if value is not None:
                        self._positive(doc, body + (key,), key, value, raw[1:] if isinstance(raw, str) else None,
                                       at_most=1 if key == "max_change_fraction" else None)
                for key in ("current_daily_mg", "measured"):
                    name = getattr(effect, key)
                    spec_f = fields.get(name)
                    if spec_f is None or spec_f.type not in ("number", "integer"):
                        self.diags.append(doc.diag(body + (key,), "PW202", f"unknown number field '{name}'",
                                                   suggest(name, known)))
                    elif name not in requires:
                        requires.append(name)
                if effect.max_mg_per_kg_per_day is not None and "weight_kg" not in requires:
                    requires.append("weight_kg")  # the ceiling is per kg
                for key in ("cap_text", "limit_text"):
                    if getattr(effect, key) and effect.max_mg_per_kg_per_day is None:
                        self.diags.append(doc.diag(body + (key,), "PW112", f"'{key}' says why an increase stopped at "
                                                                           "'max_mg_per_kg_per_day'; give that too", key=True))
                effect = effect.model_copy(update=resolved)
            for text_key in ("text", "summary", "cap_text", "limit_text"):
                text = getattr(effect, text_key, None)
                if isinstance(text, str):
                    for name in TEMPLATE_RE.findall(text):
                        if template_names is None:
                            template_names = set(known) | set(params) | _TEMPLATE_VALUES
                        if name not in template_names:
                            self.diags.append(doc.diag(body + (text_key,), "PW202", f"unknown name '{{{name}}}' in text",
                                                       suggest(name, sorted(template_names))))
            out.append(effect)
        if transitions > 1:
            self.diags.append(doc.diag(path, "PW112", "a rule takes at most one transition per branch"))
        return out


def _parameter_problem(doc: Located, where: tuple[Any, ...], value: str, params: dict[str, Any]) -> Diagnostic:
    """PW203 for a text where a number or ``$parameter`` belongs; a parameter name without '$' says so."""
    if not value.startswith("$") and value in params:
        return doc.diag(where, "PW203", f"'{value}' is not a number; a parameter is written with '$'", f"${value}")
    name = value[1:] if value.startswith("$") else value
    return doc.diag(where, "PW203", f"unknown parameter '{name}'", suggest(name, list(params)))


def _agents(rules: list[Rule]) -> set[str]:
    """The medicines a codes file's ``agent`` may name: the options rules offer and the computed doses' names."""
    out: set[str] = set()
    for rule in rules:
        for branch in BRANCH_KEYS:
            for eff in rule.effects(branch):
                if isinstance(eff, Offer):
                    out.add(eff.option)
                elif isinstance(eff, (Dose, Titrate)):
                    out.add(eff.name)
                elif isinstance(eff, Recommend) and eff.medication is not None:
                    out.add(eff.medication.name)
    return out


def _avoid_rules(rules: list[Rule]) -> set[str]:
    """The rules a codes file's ``avoid`` may name: those with a recommendation of kind 'avoid'."""
    return {rule.id for rule in rules for branch in BRANCH_KEYS for eff in rule.effects(branch)
            if isinstance(eff, Recommend) and eff.kind == "avoid"}


def untimely_decision_tests(rules: list[Rule], decisions: dict[str, frozenset[str]]) -> list[Diagnostic]:
    """PW215: a test on a decision in a state where that decision never counts (so it never holds).

    A decision counts only in the states its field names (``decision: in``); to ask "was the
    patient ever treated with X" test ``days_since_<state>`` instead.
    """
    out = []
    for rule in rules:
        for cmp in C.fields_of(rule.due) + C.fields_of(rule.when):
            accepted = decisions.get(cmp.field)
            if accepted is None:
                continue
            never = [s for s in rule.states if s not in accepted]
            if never:
                out.append(Diagnostic(rule.file, cmp.line or rule.line, cmp.col or rule.col, "PW215",
                                      f"'{cmp.field}' is a decision that counts only in {', '.join(sorted(accepted))}; "
                                      f"rule '{rule.id}' tests it in {', '.join(never)}, where it never holds "
                                      "(test days_since_<state> to ask whether a treatment was given)"))
    return out


def underived_tests(rules: list[Rule]) -> list[Diagnostic]:
    """PW212: conditions on a derived fact that no rule derives (so they can never hold).

    A fact is derived by a ``derive`` effect (any branch) or named by a ``score`` effect.
    Each test is reported at its own line and column.
    """
    derived: set[str] = set()
    for rule in rules:
        for effect in (*rule.then, *rule.otherwise, *rule.if_missing):
            if isinstance(effect, Derive):
                derived.update(effect.values)
            elif isinstance(effect, Score):
                derived.add(effect.name)
    out: dict[tuple[str, int, int, str], Diagnostic] = {}
    for rule in rules:
        for cmp in (c for cond in (rule.due, rule.when) for c in C.fields_of(cond)):
            if cmp.derived and cmp.field not in derived:
                out.setdefault((rule.file, cmp.line, cmp.col, cmp.field), Diagnostic(
                    rule.file, cmp.line, cmp.col, "PW212",
                    f"derived fact '{cmp.field}' is tested here but no rule derives it "
                    f"(add 'derive: {{{cmp.field}: ...}}' to a rule)"))
    return list(out.values())


def proposal_readers(rules: list[Rule]) -> list[Diagnostic]:
    """PW223: a rule that tests a ``proposed_<state>`` field derives, scores, moves or proposes.

    The session sets ``proposed_<state>`` from the proposals of an evaluation and evaluates again when one is
    made (clock.proposed); that is sound only while nothing the proposals rest on can change in the second pass:
    a rule that reads a proposal only advises (recommend, dose, alert, require, offer). Reported at the test.
    """
    out: list[Diagnostic] = []
    for rule in rules:
        tests = [c for cond in (rule.due, rule.when) for c in C.fields_of(cond) if is_proposed(c.field)]
        if not tests:
            continue
        kinds = sorted({type(e).__name__.lower() for e in (*rule.then, *rule.otherwise, *rule.if_missing)
                        if isinstance(e, (Derive, Score, Transition, Propose))})
        if kinds:
            first = tests[0]
            out.append(Diagnostic(rule.file, first.line, first.col, "PW223",
                                  f"rule '{rule.id}' tests '{first.field}' and also has {', '.join(kinds)} effects: a "
                                  "rule that reads a proposal may only advise (recommend, dose, alert, require, offer)",
                                  "move the derivation, move or proposal into a rule that does not read the proposal"))
    return out


#: the values an effect's text may name besides fields, derived facts and parameters
_TEMPLATE_VALUES = frozenset({"dose_mg", "mg_per_kg_per_day", "mg_per_kg", "times_per_day", "daily_mg", "new_daily_mg",
                              "change_percent", "next_day", "capped", "max_mg_per_kg_per_day", "max_daily_mg"})


def _same_kind(default: Any, value: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def _states_counted_from(field: FieldDef | None) -> str:
    """For a field computed from the record over a window that depends on the states entered (``since``,
    ``until``, ``counted_from``: ``Aggregate.states``), those states as text ("'a' or 'b'"); else empty."""
    states = list(dict.fromkeys(field.aggregate.states)) if field is not None and field.aggregate is not None else []
    return " or ".join(f"'{s}'" for s in states)


def load_definition(name_or_path: str | os.PathLike[str], overrides: dict[str, Any] | None = None,
                    profile: str | None = None, *, mutation: Mutation | None = None,
                    yaml_cache: dict[str, Located] | None = None) -> PathwayDef:
    """Load, validate and resolve a pathway folder; raise DefinitionError listing every problem.

    ``profile`` names a site profile (``profiles/<id>.yaml``; default: the pathway's
    ``default_profile``); ``overrides`` set parameters on top of it. ``mutation`` applies one
    threshold mutant (a parameter an override pins is left as pinned). ``yaml_cache`` reuses
    parsed files across loads (keyed by path, size and modification time; the loader never
    changes a parsed document).
    """
    root = resolve_pathway_dir(name_or_path)
    if mutation is None:  # kept on disk between processes (pathway.loading.stored): the same definition
        kept = stored.stored_definition(root, profile, overrides)
        if kept is not None:
            return kept
    loader = _Loader(root, overrides, profile, mutation, yaml_cache)
    try:
        definition = loader.run()
        if mutation is None:
            stored.keep_definition(root, profile, overrides, definition, loader.read_as)
        return definition
    except PathwayError:
        raise
    except Exception as exc:  # noqa: BLE001 - the error boundary: a rule file never yields a traceback
        raise DefinitionError([*loader.diags, Diagnostic(
            loader.current, 1, 1, "PW129",
            f"the loader failed while reading this file ({type(exc).__name__}); this is a bug of the loader, "
            "please report it with the file")]) from exc


def load_every_profile(name_or_path: str | os.PathLike[str], overrides: dict[str, Any] | None = None,
                       ) -> dict[str | None, PathwayDef]:
    """The pathway under its default profile (key None) and under every profile it ships
    (``profiles/*.yaml``, keyed by id); one DefinitionError lists the problems of all of them.

    A problem of a file every load reads is listed once; one that only a profile's values cause
    (a dose it makes negative) names the profile in its message.
    """
    root = resolve_pathway_dir(name_or_path)
    cache: dict[str, Located] = {}
    folder = root / "profiles"
    try:
        names = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
    except OSError:
        names = []
    out: dict[str | None, PathwayDef] = {}
    diags: list[Diagnostic] = []
    for name in [None, *names]:
        if name is not None and out.get(None) is not None and out[None].profile == name:
            out[name] = out[None]  # the default profile: loaded above
            continue
        try:
            out[name] = load_definition(root, overrides, name, yaml_cache=cache)
        except DefinitionError as exc:
            diags.extend(d for d in exc.diagnostics if d not in diags)
    if diags:
        raise DefinitionError(diags)
    return out
