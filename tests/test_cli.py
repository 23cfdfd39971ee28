"""The pathway command: validate, run, diagram, demo; exit codes 0 / 2."""

from __future__ import annotations

import json
import subprocess
import sys

from cases import rescue

from pathway.cli.main import main


def test_validate_ok(capsys):
    assert main(["validate", "asuc"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: asuc ") and "13 states, 34 transitions" in out


def test_validate_broken_folder_exits_2_with_located_errors(rules_copy, capsys):
    path = rules_copy / "steroids.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("in: iv_steroids\n    then:", "in: iv_steroid\n    then:", 1),
                    encoding="utf-8")
    assert main(["validate", str(rules_copy)]) == 2
    err = capsys.readouterr().err
    assert "steroids.yaml:" in err and "unknown state 'iv_steroid' (did you mean 'iv_steroids'?) [PW201]" in err


def test_run_json_and_text(tmp_path, capsys):
    case_file = tmp_path / "case.json"
    case_file.write_text(json.dumps(rescue("tacrolimus")), encoding="utf-8")
    assert main(["run", str(case_file), "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["state"] == "rescue_tacrolimus"
    assert main(["run", str(case_file), "--format", "text"]) == 0
    out = capsys.readouterr().out
    assert "-> rescue_selection => rescue_tacrolimus  [choose_tacrolimus]" in out
    assert "tacrolimus 2 mg x2/day oral" in out  # 70 kg x 0.05 / 2 = 1.75 -> 2 mg


def test_run_bad_case_points_at_the_line(tmp_path, capsys):
    case_file = tmp_path / "case.yaml"
    case_file.write_text("patient:\n  id: x\nevents:\n  - day: 0\n    pulse_bpm: -5\n", encoding="utf-8")
    assert main(["run", str(case_file)]) == 2
    err = capsys.readouterr().err
    assert "case.yaml:5:16: events[0].pulse_bpm: implausible pulse_bpm = -5" in err and "[PW403]" in err


def test_diagram_writes_dot_and_svg(tmp_path, capsys):
    assert main(["diagram", "asuc", "-o", str(tmp_path / "x")]) == 0
    assert (tmp_path / "x.dot").read_text(encoding="utf-8").startswith("digraph asuc {")
    assert "<svg" in (tmp_path / "x.svg").read_text(encoding="utf-8")


def test_usage_error_exits_2():
    assert main(["run"]) == 2
    assert main(["frobnicate"]) == 2


def test_python_dash_m_and_demo(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pathway", "demo", "-o", str(tmp_path)], capture_output=True, text=True,
                          cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "path: suspected_asuc -> iv_steroids -> rescue_selection -> rescue_tacrolimus -> maintenance_thiopurine" in proc.stdout
    assert (tmp_path / "asuc.svg").is_file() and (tmp_path / "asuc.dot").is_file()
    trace = (tmp_path / "asuc-demo-trace.dot").read_text(encoding="utf-8")
    assert "4. tac_response (day 10)" in trace and (tmp_path / "asuc-demo-trace.svg").is_file()


def test_run_reads_a_case_from_standard_input():
    case = json.dumps(rescue("infliximab"))
    proc = subprocess.run([sys.executable, "-m", "pathway", "run", "-"], input=case, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["state"] == "rescue_infliximab"
    bad = subprocess.run([sys.executable, "-m", "pathway", "run", "-"],
                         input='{"patient": {"id": "x"}, "events": [{"day": 0, "pulse_bpm": 500}]}',
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "<stdin>:1:" in bad.stderr and "implausible pulse_bpm = 500" in bad.stderr


def test_a_reader_that_closes_the_pipe_ends_the_command_quietly():
    """``pathway evidence asuc | head -1``: the reader goes after one line; the command stops with 141 (as a shell
    reports SIGPIPE) and writes nothing to standard error (no BrokenPipeError traceback). The listing (over 100 KB)
    is larger than a pipe's buffer (64 KB), so the command is still writing when the reader goes."""
    with subprocess.Popen([sys.executable, "-m", "pathway", "evidence", "asuc"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read()
        code = proc.wait(timeout=120)
    assert first.strip() and err == b"", err.decode(errors="replace")[-500:]
    assert code == 141
