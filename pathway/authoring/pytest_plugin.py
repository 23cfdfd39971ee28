"""pytest plugin: every scenario in a YAML scenario file is a test item.

Registered through the ``pytest11`` entry point, so ``pytest`` in a folder of scenario files
collects them with the tool authors already know; a failure shows the same expected-vs-actual
report as ``pathway test``, naming the file and line. The pathway is the folder above the
scenario file that holds ``pathway.yaml``, else the file's ``pathway:`` key, else ``asuc``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pathway.authoring.scenario import LoadedScenario, is_scenario_file, load_scenarios, run_scenario
from pathway.runtime.api import Pathway

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr

_CACHE: dict[Any, Pathway] = {}


def _pathway_of(path: Path) -> str:
    for parent in path.resolve().parents:
        if (parent / "pathway.yaml").is_file():
            return str(parent)
    return "asuc"


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> ScenarioFileItem | None:
    if file_path.suffix in (".yaml", ".yml") and is_scenario_file(file_path):
        return ScenarioFileItem.from_parent(parent, path=file_path)
    return None


class ScenarioFileItem(pytest.File):
    def collect(self) -> Iterator[ScenarioItem]:
        pathway = _pathway_of(self.path)
        for loaded in load_scenarios(self.path):
            yield ScenarioItem.from_parent(self, name=loaded.scenario.id, loaded=loaded, pathway=pathway)


class ScenarioFailed(Exception):
    pass


class ScenarioItem(pytest.Item):
    def __init__(self, *, loaded: LoadedScenario, pathway: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.loaded = loaded
        self.pathway = loaded.pathway or pathway

    def runtest(self) -> None:
        outcome = run_scenario(self.loaded, self.pathway, _CACHE)
        if not outcome.passed:
            raise ScenarioFailed(outcome.report())

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str | TerminalRepr:  # noqa: ANN401
        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.loaded.line - 1, f"scenario {self.loaded.scenario.id}: {self.loaded.scenario.purpose}"
