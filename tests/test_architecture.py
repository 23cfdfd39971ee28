"""The package's layers, its one registry of codes, and its load cache, as contracts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import grimp
import networkx as nx
import pytest

from pathway import load_pathway
from pathway.core.codes import CODES, codes_document, codes_inline
from pathway.core.errors import Diagnostic

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pathway"
LAYERS = ["cli", "service", "audit", "authoring", "render", "analysis", "runtime", "loading", "definition", "core"]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    # Imports under ``if TYPE_CHECKING:`` only name types for annotations; they never run.
    return grimp.build_graph("pathway", include_external_packages=True, exclude_type_checking_imports=True)


def test_every_module_belongs_to_a_layer():
    # errors.py: the 0.1.0 import path of the exception tree, kept as an alias of pathway.core.errors
    loose = [p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py", "errors.py")]
    assert loose == [], "modules belong in a layer's subpackage"
    assert sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()) == sorted(LAYERS)


def test_no_import_cycles(graph):
    g = nx.DiGraph()
    for module in graph.modules:
        if module.startswith("pathway"):
            for imported in graph.find_modules_directly_imported_by(module):
                if imported.startswith("pathway") and imported != "pathway":
                    g.add_edge(module, imported)
    cycles = list(nx.simple_cycles(g))
    assert cycles == [], f"import cycles: {cycles[:3]}"


def test_imports_flow_down_the_layers(graph):
    def layer(module: str) -> int | None:
        parts = module.split(".")
        return LAYERS.index(parts[1]) if len(parts) > 1 and parts[0] == "pathway" and parts[1] in LAYERS else None

    upward = []
    for module in graph.modules:
        here = layer(module)
        if here is None:
            continue
        for imported in graph.find_modules_directly_imported_by(module):
            there = layer(imported)
            if there is not None and there < here:
                upward.append(f"{module} -> {imported}")
    assert upward == []


def test_only_the_engine_module_imports_durable(graph):
    importers = set()
    for external in ("durable", "durable_rules_engine"):
        importers |= {m for m in graph.find_modules_that_directly_import(external) if m.startswith("pathway")}
    assert importers == {"pathway.runtime.engine"}


def test_no_library_module_imports_the_cli(graph):
    users = {m for m in graph.find_modules_that_directly_import("pathway.cli.common")
             | graph.find_modules_that_directly_import("pathway.cli.main")
             if not m.startswith("pathway.cli") and m != "pathway.__main__"}
    assert users == set()


@pytest.mark.parametrize("module, absent", [
    ("pathway", ["durable", "durable_rules_engine", "networkx", "pydantic", "yaml"]),
    ("pathway.definition.units", ["durable", "durable_rules_engine", "networkx", "pydantic"]),
    ("pathway.analysis.check", ["durable", "durable_rules_engine"]),
    ("pathway.analysis.explain", ["durable", "durable_rules_engine"]),
])
def test_importing_a_lower_layer_does_not_start_the_engine(module, absent):
    code = f"import sys, {module}; print(sorted(m for m in {absent!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", f"import {module} loaded {out}"


def test_public_api_is_loaded_on_first_use():
    code = ("import sys, pathway; assert 'durable' not in sys.modules; "
            "from pathway import load_pathway, Pathway, Session, SessionStore, PathwayError, RESULT_KEYS; "
            "assert 'durable' in sys.modules; print(load_pathway('asuc').id, pathway.__version__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "asuc" and re.fullmatch(r"\d+\.\d+\.\d+", out[1])


# -- codes ------------------------------------------------------------------------------------

def _emitted_codes() -> set[str]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        if path.name == "codes.py":
            continue
        found |= set(re.findall(r"\bPW\d{3}\b", path.read_text(encoding="utf-8")))
    return found


def test_every_code_the_package_uses_is_registered_and_every_registered_code_is_used():
    used = _emitted_codes()
    retired = {c.code for c in CODES.values() if c.retired}
    assert sorted(used - set(CODES)) == []
    assert sorted(set(CODES) - used) == sorted(retired)
    assert sorted(used & retired) == []


def test_a_diagnostic_with_an_unregistered_code_is_a_programming_error():
    with pytest.raises(ValueError, match="PW999"):
        Diagnostic("f.yaml", 1, 1, "PW999", "no such code")


def test_code_tables_are_generated_from_the_registry():
    assert (ROOT / "docs" / "codes.md").read_text(encoding="utf-8") == codes_document(), \
        "docs/codes.md is stale: run 'pathway codes -o docs/codes.md'"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- codes:begin[^>]*-->\n(.*?)<!-- codes:end -->", readme, re.S)
    assert block and block.group(1) == codes_inline(), "README's code list is stale: paste codes_inline() between the markers"


# -- load cache -------------------------------------------------------------------------------

def test_cache_sees_an_edit_in_a_rule_file_in_a_sub_folder(rules_copy):
    (rules_copy / "sub").mkdir()
    (rules_copy / "steroids.yaml").rename(rules_copy / "sub" / "steroids.yaml")
    spec = rules_copy / "pathway.yaml"
    text = spec.read_text(encoding="utf-8")
    assert text.count("  - steroids.yaml\n") == 1
    spec.write_text(text.replace("  - steroids.yaml\n", "  - sub/steroids.yaml\n"), encoding="utf-8")

    first = load_pathway(rules_copy)
    assert load_pathway(rules_copy) is first  # unchanged files: the cached pathway
    rule_file = rules_copy / "sub" / "steroids.yaml"
    before = rule_file.stat()
    rule_file.write_text(rule_file.read_text(encoding="utf-8").replace(
        "Oxford (Travis) criteria on day 3", "Oxford (Travis) criteria on day 3 - edited"), encoding="utf-8")
    os.utime(rule_file, ns=(before.st_atime_ns, before.st_mtime_ns))  # same time stamp: only the contents differ
    second = load_pathway(rules_copy)
    assert second is not first
    assert second.rule("oxford_index").title.endswith("- edited")


def test_cache_sees_an_edit_in_the_profile(rules_copy):
    first = load_pathway(rules_copy, profile="nice")
    profile = rules_copy / "profiles" / "nice.yaml"
    profile.write_text(profile.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert load_pathway(rules_copy, profile="nice") is not first


def test_the_facade_exports_exactly_its_lazy_names():
    import pathway

    assert sorted(pathway.__all__) == sorted([*pathway._EXPORTS, "__version__"])
