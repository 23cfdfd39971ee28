"""The recorded results of the scenario library: every result ``observe`` returned, the final result,
the session document, the evaluations and the restored session's result, per scenario (as digests of
their canonical JSON; the final result key by key).

    python tests/golden.py            # writes tests/fixtures/golden/results.json.gz

The set was recorded before the engine's performance work, so ``tests/test_golden_results.py`` proves
that the faster engine returns the same dicts (and dumps the same documents) for every scenario.
Each scenario with two events or more is also run with its last event arriving before the one
ahead of it (a late event, evaluated again from the timeline), and with that event retracted.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pathway import load_pathway  # noqa: E402
from pathway.authoring.scenario import LoadedScenario, discover, load_scenarios  # noqa: E402
from pathway.core.errors import PathwayError  # noqa: E402
from pathway.runtime.api import Pathway  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "golden" / "results.json.gz"
LIBRARY = ROOT / "rules" / "asuc" / "scenarios"


def scenarios() -> list[LoadedScenario]:
    return [ls for f in discover([LIBRARY]) for ls in load_scenarios(f)]


def key(ls: LoadedScenario) -> str:
    return f"{Path(ls.file).name}:{ls.scenario.id}"


def _pathway(ls: LoadedScenario, cache: dict[Any, Pathway]) -> Pathway:
    sc = ls.scenario
    k = (sc.profile, tuple(sorted(sc.parameters.items())))
    if k not in cache:
        cache[k] = load_pathway("asuc", profile=sc.profile, parameters=dict(sc.parameters) or None)
    return cache[k]


def _course(pw: Pathway, patient: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"observed": []}
    try:
        session = pw.start(copy.deepcopy(patient))
    except PathwayError as exc:
        return {"refused_patient": type(exc).__name__ + ": " + str(exc)}
    for i, event in enumerate(events):
        try:
            out["observed"].append(session.observe(copy.deepcopy(event)))
        except PathwayError as exc:
            out["refused"] = {"event": i, "error": type(exc).__name__ + ": " + str(exc)}
            break
    out["result"] = session.result()
    dump = session.dump()
    out["dump"] = dump
    out["evaluations"] = session.evaluations
    out["last_event_evaluations"] = session.last_event_evaluations()
    out["restored"] = pw.restore(copy.deepcopy(dump)).result()
    return out


def compute(ls: LoadedScenario, cache: dict[Any, Pathway]) -> dict[str, Any]:
    pw = _pathway(ls, cache)
    case = ls.scenario.case
    patient, events = case.patient, list(case.events)
    out = {"in_order": _course(pw, patient, events)}
    if len(events) >= 2 and "refused" not in out["in_order"]:
        ided = [dict(e, id=f"e{i}") for i, e in enumerate(events)]
        late = ided[:-2] + [ided[-1], ided[-2]]
        out["late"] = _course(pw, patient, late)
        try:
            session = pw.start(copy.deepcopy(patient))
            for e in ided:
                session.observe(copy.deepcopy(e))
            out["retracted"] = session.retract(f"e{len(ided) - 2}", "entered in error")
            out["retracted_dump"] = session.dump()
        except PathwayError as exc:
            out["retracted"] = type(exc).__name__ + ": " + str(exc)
    return out


def digest(value: Any) -> str:
    """A hash of the value's canonical JSON (sorted keys; ``1`` and ``1.0`` differ, as in the output)."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def digests(value: Any) -> Any:
    """``compute``'s output with every result, document and evaluation list replaced by its digest
    (the final result key by key, so a difference names its key)."""
    out: dict[str, Any] = {}
    for name, part in value.items():
        if isinstance(part, dict) and "observed" in part:
            out[name] = {k: ([digest(x) for x in v] if k == "observed" else
                             {rk: digest(rv) for rk, rv in v.items()} if k == "result" else digest(v)) for k, v in part.items()}
        else:
            out[name] = digest(part)
    return out


def main() -> int:
    cache: dict[Any, Pathway] = {}
    golden = {key(ls): digests(compute(ls, cache)) for ls in scenarios()}
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(golden, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    with gzip.GzipFile(FIXTURE, "wb", compresslevel=9, mtime=0) as fh:
        fh.write(text.encode("utf-8"))
    print(f"{len(golden)} scenarios, {len(text)} bytes of JSON, {FIXTURE.stat().st_size} bytes compressed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
