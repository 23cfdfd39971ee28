"""Case builders shared by the tests: small, readable patients for each branch."""

from __future__ import annotations

import copy
import re
from typing import Any

PATIENT: dict[str, Any] = {
    "id": "p-1",
    "weight_kg": 70,
    "age_years": 40,
    "prior_anti_tnf_failure": False,
    "prior_thiopurine_failure": False,
    "latent_tb": "negative",
    "hbv_status": "negative",
    "nyha_class": 0,
    "tpmt_status": "normal",
    "hiv_uncontrolled": False,
    "demyelinating_disease": False,
    "malignancy_current": False,
    "immunodeficiency": False,
}

ADMIT = {"day": 0, "bloody_stools_24h": 8, "pulse_bpm": 100, "temp_c": 37.4, "hb_g_dl": 11.5, "crp_mg_l": 60}
DAY3_FAIL = {"day": 3, "stool_freq_24h": 9, "visible_blood": True, "crp_mg_l": 80}
#: the eligibility results at the rescue decision, C. difficile and CMV excluded (an infection not yet excluded
#: puts a caution on every rescue agent: rules/asuc/rescue_selection.yaml, D4)
RESCUE_LABS = {"day": 3, "cholesterol_mmol_l": 4.5, "magnesium_mmol_l": 0.8, "creatinine_umol_l": 70,
               "active_serious_infection": False, "bp_uncontrolled": False, "cdiff_result": "negative",
               "cmv_biopsy_result": "negative"}
RESPONSE = {"stool_freq_24h": 2, "visible_blood": False, "crp_mg_l": 12}
#: a response to rescue: an improvement sustained over 2 consecutive days (days 9 and 10)
RESCUE_RESPONSE = ({"day": 9, "stool_freq_24h": 3, "visible_blood": False, "crp_mg_l": 20}, {"day": 10, **RESPONSE})
#: no improvement on rescue: as many bloody stools as at the start (DAY3_FAIL) and a higher CRP
NO_RESPONSE = {"stool_freq_24h": 9, "visible_blood": True, "crp_mg_l": 85}


def patient(**overrides: Any) -> dict[str, Any]:
    p = copy.deepcopy(PATIENT)
    p.update(overrides)
    return p


def to_rescue(**patient_overrides: Any) -> dict[str, Any]:
    """A case that reaches rescue_selection on day 3 with eligibility labs recorded."""
    return {"patient": patient(**patient_overrides),
            "events": [dict(ADMIT), dict(DAY3_FAIL), dict(RESCUE_LABS)]}


def rescue(agent: str, *later: dict[str, Any], **patient_overrides: Any) -> dict[str, Any]:
    case = to_rescue(**patient_overrides)
    case["events"].append({"day": 3, "rescue_choice": agent})
    case["events"].extend(later)
    return case


def without_clock(result: dict[str, Any]) -> dict[str, Any]:
    """The result with the clock time of each recheck's last value left out: a bundle gives every observation its
    time, which the recheck names ("on day 3 at 2026-03-05T08:00:00Z"); the case file gives days only."""
    out = dict(result)
    out["data_required"] = [{k: (re.sub(r" at \d{4}-\d\d-\d\dT[\d:.]+Z", "", v) if k == "text" else v)
                             for k, v in item.items() if k != "recorded_time"} for item in result["data_required"]]
    return out
