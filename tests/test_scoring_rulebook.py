"""The rulebook (SPEC §5.2): the shipped Guangzhou file loads; a bad one names file and key."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from ledger.rulebook import RULEBOOK_DIR, RulebookError, load_rulebook, parse_rulebook

SHIPPED = RULEBOOK_DIR / "guangzhou-2004.toml"


def shipped() -> dict[str, Any]:
    return tomllib.loads(SHIPPED.read_text(encoding="utf-8"))


def test_the_guangzhou_rulebook_says_what_the_plan_says() -> None:
    rules = load_rulebook("guangzhou-2004")
    # 四(二)1–5
    assert rules.publication("穗府信息").points_for("标题") == 2
    assert rules.publication("穗府信息").points_for("短波") == 1
    assert [rules.publication(n).points_for(None) for n in ("穗府要情", "专报", "专刊")] == [3] * 3
    assert rules.publication("穗府信息调研").points_for(None) == 5
    assert (rules.bonus("批示").mode, rules.bonus("批示").level("市领导").points) == (
        "cumulative",
        5,
    )
    ladder = rules.bonus("上报")
    assert ladder.mode == "highest"
    assert [(lv.name, lv.points) for lv in ladder.levels] == [
        ("省办采用", 5),
        ("省领导批示", 10),
        ("国办采用", 10),
        ("国办领导批示", 20),
    ]
    assert rules.clue_points == 2
    # 四(二)6
    assert [(d.name, d.points) for d in rules.deductions] == [
        ("省办通报", 5),
        ("市办通报", 3),
        ("迟报", 4),
    ]
    # 四(三)
    assert [(s.key, s.quarterly_target, s.annual_target) for s in rules.sequences] == [
        ("district", 18, 72),
        ("dept_a", 18, 72),
        ("dept_b", 12, 48),
        ("direct", None, 6),
    ]
    assert rules.direct_share_percent == 50
    # 五(二)(三)
    assert [(p.first_quarters_met, p.notify) for p in rules.praise] == [
        (2, "supervising_leader"),
        (3, "principal_leader"),
    ]
    assert [(c.quarters_missed, c.notify, c.replace_officer) for c in rules.criticism] == [
        (2, "supervising_leader", False),
        (3, "principal_leader", True),
    ]
    assert rules.late_deduction == "迟报"
    assert (rules.body_chars, rules.attachment_chars) == (450, 4000)


def test_names_match_across_full_and_half_width() -> None:
    rules = load_rulebook("guangzhou-2004")
    assert rules.publication(" 穗府信息 ").name == "穗府信息"
    assert rules.deduction("迟报").points == 4


def _edit(path: list[str | int], value: Any) -> dict[str, Any]:
    data = shipped()
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["publications", 0, "grades", 0, "points"], -1, "[[publications]] 1 grades 1 points"),
        (["publications", 1, "points"], "three", "[[publications]] 2 points must be a whole"),
        (["publications", 1, "grades"], [{"name": "a", "points": 1}], "not both"),
        (["publications", 2, "name"], "穗府要情", "name '穗府要情' is given twice"),
        (["publications", 0, "colour"], "red", "unknown key [[publications]] 1 colour"),
        (["bonuses", 1, "mode"], "sum", "[[bonuses]] 2 mode must be one of cumulative, highest"),
        (["bonuses", 0, "levels"], [], "[[bonuses]] 1 levels must list at least one level"),
        (["bonuses", 0, "requires_adoption"], "yes", "requires_adoption must be true or false"),
        (["deductions", 2, "points"], 4.5, "[[deductions]] 3 points must be a whole number"),
        (["sequences", "office"], {"name": "C"}, "[sequences.office] needs a key of letters"),
        (["sequences", "dept_a", "colour"], "red", "unknown key [sequences.dept_a] colour"),
        (["sequences", "district", "quarterly_target"], True, "[sequences.district] quarterly"),
        (["direct_report", "parent_share_percent"], 150, "parent_share_percent must be a whole"),
        (["streaks", "praise", 0, "notify"], "mayor", "[[streaks.praise]] 1 notify must be one"),
        (["streaks", "criticism", 1, "quarters_missed"], 5, "[[streaks.criticism]] 2 quarters"),
        (["solicitation", "late_deduction"], "罚款", "'罚款' is not one of [[deductions]]"),
        (["calendar", "months_per_quarter"], 5, "[calendar] months_per_quarter must divide 12"),
        (["limits", "body_chars"], 0, "[limits] body_chars must be a whole number"),
        (["meta"], KeyError, "[meta] is missing"),
        (["scoring"], {}, "unknown section [scoring]"),
    ],
)
def test_a_bad_rulebook_names_the_file_and_the_key(
    path: list[str | int], value: Any, message: str
) -> None:
    with pytest.raises(RulebookError) as caught:
        parse_rulebook(_edit(path, value), "office.toml")
    assert str(caught.value).startswith("rulebook office.toml: ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_rulebook_file_by_path(tmp_path: Path) -> None:
    path = tmp_path / "office.toml"
    path.write_text(SHIPPED.read_text(encoding="utf-8").replace("= 18", "= 20"), encoding="utf-8")
    rules = load_rulebook("office.toml", tmp_path)
    assert rules.sequence("district") is not None
    assert rules.sequence("district").quarterly_target == 20  # type: ignore[union-attr]
    with pytest.raises(RulebookError, match="is not shipped"):
        load_rulebook("shenzhen-2030")
