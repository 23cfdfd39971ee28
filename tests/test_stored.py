"""The cache of loaded pathways on disk (pathway.loading.stored): a second load gives the same pathway without
reading the rule files, and any change of what the load read, or anything odd about an entry, loads afresh."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pathway.core.errors import DefinitionError
from pathway.loading import loader as loader_module
from pathway.loading import stored
from pathway.loading.loader import load_definition
from pathway.runtime.api import Pathway
from pathway.runtime.compile import compile_pathway

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "rules" / "asuc" / "cases" / "demo.yaml"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.delenv("PATHWAY_NO_CACHE", raising=False)
    monkeypatch.setenv("PATHWAY_CACHE_DIR", str(folder))
    return folder


def entries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.pathway-cache")) if folder.is_dir() else []


class Unread(Exception):
    pass


@pytest.fixture
def no_files(monkeypatch: pytest.MonkeyPatch):
    """After this, a load that reads the rule files fails (a load taken from the cache does not read them)."""

    def refuse(self, *args, **kwargs):
        raise Unread("the rule files were read")

    def arm() -> None:
        monkeypatch.setattr(loader_module._Loader, "run", refuse)

    return arm


def demo_case() -> dict:
    import yaml

    return yaml.safe_load(DEMO.read_text())  # type: ignore[no-any-return]


def demo_results(definition) -> str:
    with Pathway(definition) as pw:
        return json.dumps(pw.run_case(demo_case()), sort_keys=True, default=str)


def test_a_second_load_comes_from_the_cache_and_decides_the_same(cache: Path, rules_copy: Path, no_files) -> None:
    first = load_definition(rules_copy)
    assert len(entries(cache)) == 1
    fresh = demo_results(first)  # compiling it keeps the compiled form beside it
    no_files()
    again = load_definition(rules_copy)
    assert again is not first
    assert again.fingerprint() == first.fingerprint()
    assert again.params == first.params and [r.id for r in again.rules] == [r.id for r in first.rules]
    kept = stored.stored_compiled(again)
    assert kept is not None and kept.definition is again
    assert kept.rulesets == compile_pathway(first).rulesets
    assert demo_results(again) == fresh


def test_the_cache_is_off_with_pathway_no_cache(cache: Path, rules_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATHWAY_NO_CACHE", "1")
    load_definition(rules_copy)
    assert entries(cache) == []


def test_an_edited_rule_file_is_read_again(cache: Path, rules_copy: Path) -> None:
    load_definition(rules_copy)
    text = (rules_copy / "pathway.yaml").read_text()
    assert "value: 8\n" in text  # the day-3 stool threshold (Travis-1996)
    (rules_copy / "pathway.yaml").write_text(text.replace("value: 8\n", "value: 9\n", 1))
    assert load_definition(rules_copy).params["oxford_stool_high"] == 9
    # and a file with a problem is reported, never answered from the cache
    (rules_copy / "steroids.yaml").write_text("rules: [")
    with pytest.raises(DefinitionError) as err:
        load_definition(rules_copy)
    assert "steroids.yaml" in str(err.value)


def test_a_new_profile_and_an_override_are_loads_of_their_own(cache: Path, rules_copy: Path, no_files) -> None:
    base = load_definition(rules_copy)
    name, value = next((n, v) for n, v in base.params.items() if isinstance(v, int) and not isinstance(v, bool))
    changed = load_definition(rules_copy, {name: value + 1})
    assert changed.params[name] == value + 1
    assert len(entries(cache)) == 2
    shutil.copy(rules_copy / "profiles" / "nice.yaml", rules_copy / "profiles" / "other.yaml")
    no_files()
    with pytest.raises(DefinitionError, match=r"\(Unread\)"):  # the profiles folder changed: loaded again
        load_definition(rules_copy)


def test_a_mutant_is_never_kept(cache: Path, rules_copy: Path) -> None:
    from pathway.definition.mutation import Mutation

    name = next(iter(load_definition(rules_copy).params))
    mutant = load_definition(rules_copy, mutation=Mutation(kind="parameter", parameter=name, direction=1))
    assert mutant is not None
    assert len(entries(cache)) == 1
    assert stored.stored_compiled(mutant) is None


@pytest.mark.parametrize("damage", ["truncated", "garbage", "others_can_write", "folder_others_can_write"])
def test_a_damaged_or_foreign_entry_is_not_used(cache: Path, rules_copy: Path, no_files, damage: str) -> None:
    load_definition(rules_copy)
    [entry] = entries(cache)
    if damage == "truncated":
        entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    elif damage == "garbage":
        entry.write_bytes(b"not a pickle")
    elif damage == "others_can_write":
        entry.chmod(0o666)
    else:
        cache.chmod(0o777)
    no_files()
    with pytest.raises(DefinitionError, match=r"\(Unread\)"):
        load_definition(rules_copy)


def test_a_file_swapped_for_a_link_out_of_the_folder_is_not_taken_from_the_cache(cache: Path, rules_copy: Path,
                                                                                  tmp_path: Path) -> None:
    load_definition(rules_copy)
    outside = tmp_path / "outside.yaml"
    shutil.copy(rules_copy / "steroids.yaml", outside)
    (rules_copy / "steroids.yaml").unlink()
    (rules_copy / "steroids.yaml").symlink_to(outside)
    with pytest.raises(DefinitionError) as err:
        load_definition(rules_copy)
    assert "PW241" in str(err.value)


def test_an_unusable_cache_folder_only_costs_the_cache(tmp_path: Path, rules_copy: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.delenv("PATHWAY_NO_CACHE", raising=False)
    monkeypatch.setenv("PATHWAY_CACHE_DIR", str(blocker / "cache"))
    assert load_definition(rules_copy).id == "asuc"
    assert load_definition(rules_copy).id == "asuc"


def test_changed_code_is_a_load_of_its_own(cache: Path, rules_copy: Path, monkeypatch: pytest.MonkeyPatch,
                                           no_files) -> None:
    load_definition(rules_copy)
    monkeypatch.setattr(stored, "_code", "another version of the package")
    no_files()
    with pytest.raises(DefinitionError, match=r"\(Unread\)"):
        load_definition(rules_copy)


def test_entries_beyond_the_limit_are_removed(cache: Path, rules_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stored, "MAX_ENTRIES", 2)
    base = load_definition(rules_copy)
    name, value = next((n, v) for n, v in base.params.items() if isinstance(v, int) and not isinstance(v, bool))
    for step in (1, 2, 3):
        load_definition(rules_copy, {name: value + step})
    assert len(entries(cache)) == 2
    assert stat_mode(cache) == 0o700 and {stat_mode(p) for p in entries(cache)} == {0o600}


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_validate_twice_in_fresh_processes(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PATHWAY_NO_CACHE"}
    env["PATHWAY_CACHE_DIR"] = str(tmp_path / "cache")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    outputs = [subprocess.run([sys.executable, "-m", "pathway", "validate", "asuc"], env=env, capture_output=True,
                              text=True, check=True, cwd=ROOT) for _ in range(2)]
    assert outputs[0].stdout == outputs[1].stdout and outputs[0].stdout.startswith("ok: asuc")
    assert outputs[1].stderr == ""
    assert len(entries(tmp_path / "cache")) == 3  # the default profile and the two others


def test_a_file_changed_while_it_was_loaded_is_not_kept(cache: Path, rules_copy: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    read = loader_module.load_yaml_file

    def read_then_saved_again(path, *args, **kwargs):
        doc = read(path, *args, **kwargs)
        if path.endswith("steroids.yaml"):  # an editor saves the file just after the load read it
            text = Path(path).read_text()
            Path(path).write_text(text + "\n# saved again\n")
        return doc

    monkeypatch.setattr(loader_module, "load_yaml_file", read_then_saved_again)
    load_definition(rules_copy)
    assert entries(cache) == []
    monkeypatch.setattr(loader_module, "load_yaml_file", read)
    load_definition(rules_copy)
    assert len(entries(cache)) == 1


def test_rulesets_durable_took_before_are_registered_at_the_first_evaluation(
        cache: Path, rules_copy: Path, no_files, monkeypatch: pytest.MonkeyPatch) -> None:
    first = Pathway(load_definition(rules_copy))
    assert first.engine.registered == sorted(first.compiled.rulesets)  # a load from the files: every one, now
    assert stored.registered_before(first.definition)
    fresh = demo_results(first.definition)
    no_files()
    again = Pathway(load_definition(rules_copy))
    assert again.engine.registered == []  # taken before: none until something is evaluated (pathway validate)
    case = demo_case()
    s = again.start(case["patient"])
    s.observe(case["events"][0])
    # then all at once, never a state's when a patient first reaches it (that crashed durable: engine module notes)
    assert again.engine.registered == sorted(again.compiled.rulesets)
    assert demo_results(again.definition) == fresh


_COURSES = r"""
import copy, sys
sys.path.insert(0, sys.argv[1])
from golden import scenarios
from pathway import load_pathway
pw = load_pathway("asuc")
done = 0
for ls in list(scenarios())[:120]:
    sc = ls.scenario
    if sc.profile or sc.parameters:
        continue
    try:
        s = pw.start(dict(copy.deepcopy(sc.case.patient), id="x"))
        for event in sc.case.events:
            s.observe(copy.deepcopy(event))
    except Exception:
        continue
    done += 1
print(done)
"""


def test_courses_of_many_patients_from_the_cache_run_to_the_end(tmp_path: Path) -> None:
    # A pathway from the cache of loaded pathways runs many courses through every state in one process, its rulesets
    # registered at the first evaluation (see the engine's module notes): each process ends normally.
    env = {k: v for k, v in os.environ.items() if k != "PATHWAY_NO_CACHE"}
    env["PATHWAY_CACHE_DIR"] = str(tmp_path / "cache")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    for _ in range(3):  # the first writes the cache; the others start from it
        done = subprocess.run([sys.executable, "-c", _COURSES, str(ROOT / "tests")], env=env, capture_output=True,
                              text=True, cwd=ROOT, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        assert int(done.stdout.split()[-1]) > 80


def test_a_compiled_form_durable_never_took_is_registered_at_once_and_then_kept_as_taken(
        cache: Path, rules_copy: Path) -> None:
    from pathway.runtime.compile import compile_kept

    definition = load_definition(rules_copy)
    compile_kept(definition)  # kept as `pathway check` and `pathway table` keep it: compiled, never registered
    assert stored.stored_compiled(definition) is not None and not stored.registered_before(definition)
    pw = Pathway(definition)
    assert pw.engine.registered == sorted(pw.compiled.rulesets)
    assert stored.registered_before(definition)
    again = load_definition(rules_copy)
    assert stored.registered_before(again) and stored.stored_compiled(again) is not None


def test_a_ruleset_refused_on_first_use_fails_the_evaluation_and_changes_nothing(
        cache: Path, rules_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import durable_rules_engine

    from pathway.core.errors import EngineError

    Pathway(load_definition(rules_copy))
    pw = Pathway(load_definition(rules_copy))
    assert pw.engine.registered == []
    create = durable_rules_engine.create_ruleset

    def refuse(name, text):
        if name.startswith("asuc.iv_steroids"):
            raise durable_rules_engine.error("Could not create ruleset, error code: 106")
        return create(name, text)

    monkeypatch.setattr(durable_rules_engine, "create_ruleset", refuse)
    case = demo_case()
    s = pw.start(case["patient"])
    before = s.result()
    with pytest.raises(EngineError, match="refused a ruleset it took before") as info:
        s.observe(case["events"][0])
    assert "error code: 106" in str(info.value)
    assert s.result() == before
