"""pathway validate pauses the cyclic collector while it builds the pathway: on again afterwards, left off
when the caller turned it off."""

from __future__ import annotations

import gc

import pytest

from pathway.cli.common import paused_gc
from pathway.cli.main import main


@pytest.fixture
def collector():
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_the_collector_is_paused_inside_and_on_again_after_nested_blocks_and_errors(collector):
    gc.enable()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block did not turn it on under the outer one
    assert gc.isenabled()
    with pytest.raises(ValueError), paused_gc():
        raise ValueError
    assert gc.isenabled()


def test_a_collector_the_caller_turned_off_stays_off(collector):
    gc.disable()
    with paused_gc():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_validate_runs_without_the_collector_and_leaves_it_on(collector, monkeypatch, capsys):
    import pathway.cli.run as run

    seen: list[bool] = []
    load = run.load_every_profile

    def spying(*args, **kwargs):
        seen.append(gc.isenabled())
        return load(*args, **kwargs)

    monkeypatch.setattr(run, "load_every_profile", spying)
    gc.enable()
    assert main(["validate", "asuc"]) == 0
    assert seen == [False] and gc.isenabled()
    assert main(["validate", "no_such_pathway"]) == 2  # an error on the way out too
    assert gc.isenabled()
    assert capsys.readouterr().out.startswith("ok: asuc")


def test_the_pathway_command_freezes_what_its_imports_built_and_a_call_with_arguments_does_not(collector):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    code = ("import gc, json, sys\nfrom pathway.cli.main import main\nsys.argv = ['pathway', 'validate', 'asuc']\n"
            "before = gc.get_freeze_count()\nrc = main()\n"
            "print(json.dumps([rc, before, gc.get_freeze_count(), gc.isenabled()]))")
    env = dict(os.environ, PYTHONPATH=str(root))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root, check=True)
    rc, before, after, enabled = json.loads(out.stdout.splitlines()[-1])
    assert rc == 0 and after > before + 10_000 and enabled  # 3.12 starts with a few hundred frozen
    frozen = gc.get_freeze_count()
    assert main(["codes"]) == 0
    assert gc.get_freeze_count() == frozen
