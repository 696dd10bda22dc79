"""The Longgang and Changji rulebooks say what their plans say, number by number.

Each number in ledger/rulebooks/longgang-2012.toml and changji-2017.toml is listed below with
the value the loaded rulebook has, the value the plan gives and the plan's own words (copied
verbatim from the plan: the tests read no file outside the repository). Four checks:
1. the loaded value is the plan's, and the plan's words state that number;
2. the TOML quotes those words (whole, or with “……” elisions) in the comment right above the
   lines that hold the number, so that the comment and the number cannot drift apart;
3. the tables cover every number in the TOML files (and the listed names are all there is):
   a number added to a file without a line here fails;
4. Longgang's [[tasks]] are its attachment table, row by row (the table is embedded below).
The one number that is not the plan's, Longgang's `lagging_units`, is listed as such.
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ledger.rulebook import RULEBOOK_DIR, Award, Quota, Rulebook, load_rulebook

LG = load_rulebook("longgang-2012")
CJ = load_rulebook("changji-2017")

# (what, value in the loaded rulebook, value the plan gives, the plan's words)
Entry = tuple[str, int | None, int, str]


def _award(rb: Rulebook, name: str) -> Award:
    return next(a for a in rb.awards if a.name == name)


def _quota(rb: Rulebook, key: str) -> Quota:
    seq = rb.sequence(key)
    assert seq is not None and seq.quota is not None, key
    return seq.quota


# --- Longgang 2012 ----------------------------------------------------------------------

LG_MONTHLY = (
    "每月通报。区委(府)办每月定期通报各单位上月采用信息计分情况"
    "(包括省委办公厅和市委办公厅采用加分)和累计采用信息积分情况"
)
LG_DISTRICT_POINTS = "区《龙岗信息》周刊、专报和专刊采用的信息每条分别计10分、20分和30分"
LG_DISTRICT_YUAN = "被区《龙岗信息》周刊、专报和专刊采用的信息每条计50元、100元和200元"
LG_CITY_POINTS = (
    "市《信息快报》周刊、日刊、上报、专报、增刊和调研采用的信息每条分别计"
    "10分、20分、20分、30分、40分和40分"
)
LG_CITY_YUAN = (
    "被市《信息快报》周刊、日刊、上报、专报、增刊和调研采用的信息每条计"
    "150元、250元、250元、300元、400元和400元"
)


def longgang_table() -> list[Entry]:
    district = LG.publication("龙岗信息")
    city = LG.publication("信息快报")
    hot = LG.publication("一周网民议论热点")
    sms = LG.publication("短信息")
    province = LG.publication("粤办信息")
    instruction = LG.bonus("批示")
    return [
        # 五(三), 五(四): a calendar year (2012年), reported month by month
        ("calendar year_start_month", LG.calendar.year_start_month, 1, LG_MONTHLY),
        ("calendar months_per_quarter", LG.calendar.months_per_quarter, 3, LG_MONTHLY),
        # 五(二)一 (points) and 六(一) (稿酬)
        ("龙岗信息 周刊 points", district.points_for("周刊"), 10, LG_DISTRICT_POINTS),
        ("龙岗信息 专报 points", district.points_for("专报"), 20, LG_DISTRICT_POINTS),
        ("龙岗信息 专刊 points", district.points_for("专刊"), 30, LG_DISTRICT_POINTS),
        ("龙岗信息 周刊 yuan", district.yuan_for("周刊"), 50, LG_DISTRICT_YUAN),
        ("龙岗信息 专报 yuan", district.yuan_for("专报"), 100, LG_DISTRICT_YUAN),
        ("龙岗信息 专刊 yuan", district.yuan_for("专刊"), 200, LG_DISTRICT_YUAN),
        ("信息快报 周刊 points", city.points_for("周刊"), 10, LG_CITY_POINTS),
        ("信息快报 日刊 points", city.points_for("日刊"), 20, LG_CITY_POINTS),
        ("信息快报 上报 points", city.points_for("上报"), 20, LG_CITY_POINTS),
        ("信息快报 专报 points", city.points_for("专报"), 30, LG_CITY_POINTS),
        ("信息快报 增刊 points", city.points_for("增刊"), 40, LG_CITY_POINTS),
        ("信息快报 调研 points", city.points_for("调研"), 40, LG_CITY_POINTS),
        ("信息快报 周刊 yuan", city.yuan_for("周刊"), 150, LG_CITY_YUAN),
        ("信息快报 日刊 yuan", city.yuan_for("日刊"), 250, LG_CITY_YUAN),
        ("信息快报 上报 yuan", city.yuan_for("上报"), 250, LG_CITY_YUAN),
        ("信息快报 专报 yuan", city.yuan_for("专报"), 300, LG_CITY_YUAN),
        ("信息快报 增刊 yuan", city.yuan_for("增刊"), 400, LG_CITY_YUAN),
        ("信息快报 调研 yuan", city.yuan_for("调研"), 400, LG_CITY_YUAN),
        ("一周网民议论热点 points", hot.points_for(None), 10, "一周网民议论热点每条计10分"),
        ("一周网民议论热点 yuan", hot.yuan_for(None), 150, "一周网民议论热点每条计150元"),
        ("短信息 points", sms.points_for(None), 5, "短信息每条计5分"),
        ("短信息 yuan", sms.yuan_for(None), 100, "短信息每条计100元"),
        ("粤办信息 points", province.points_for(None), 30, "省《粤办信息》采用的信息每条计30分"),
        ("粤办信息 yuan", province.yuan_for(None), 400, "被省《粤办信息》采用的信息每条计400元"),
        (
            "批示 区领导 points",
            instruction.level("区领导").points,
            5,
            "获区领导批示的信息每条另加5分",
        ),
        ("批示 区领导 yuan", instruction.level("区领导").yuan, 50, "获区领导批示每条次另加50元"),
        (
            "批示 市领导 points",
            instruction.level("市领导").points,
            10,
            "获市领导批示的信息每条另加10分",
        ),
        ("批示 市领导 yuan", instruction.level("市领导").yuan, 100, "获市领导批示每条次另加100元"),
        (
            "批示 省领导 points",
            instruction.level("省领导").points,
            20,
            "获得省领导批示的信息每条另加20分",
        ),
        ("批示 省领导 yuan", instruction.level("省领导").yuan, 200, "获省领导批示每条次另加200元"),
        # 五(二)二
        (
            "组织奖 points",
            LG.unit_bonus("组织奖").points,
            20,
            "领导重视、机构建立,人员稳定,网络健全、运作良好,信息优秀、作用明显,加20分",
        ),
        # 五(二)三
        (
            "市办通报 points",
            LG.deduction("市办通报").points,
            20,
            "受到市委办公厅、市政府办公厅通报的,每条(次)扣20分",
        ),
        ("区办通报 points", LG.deduction("区办通报").points, 10, "区委(府)办通报的,每条(次)扣10分"),
        (
            "约稿 points",
            LG.deduction("约稿").points,
            10,
            "对区委(府)办公室的信息约稿,无故迟报、不报,或者瞒报、谎报,每次扣10分",
        ),
        # 五(四)
        ("先进集体 quota", _award(LG, "先进集体").quota, 20, "先进集体20个"),
        ("优秀组织者 quota", _award(LG, "优秀组织者").quota, 20, "优秀组织者20名"),
        ("优秀信息员 quota", _award(LG, "优秀信息员").quota, 50, "优秀信息员50名"),
    ]


# Entries whose words give the number by what they say rather than as digits.
LG_UNSTATED = {
    "calendar year_start_month": "the plan's year is the calendar year 2012 (2012年, 年终评比)",
    "calendar months_per_quarter": "a quarter is three months; the plan counts no quarters",
}
# (what, value in the loaded rulebook, value, why it is not from the plan, words in its comment)
LG_NOT_FROM_PLAN = [
    (
        "[reports] lagging_units",
        LG.lagging_units,
        3,
        "六(三) asks for 成绩落后的单位 to be named but gives no number: the office's choice",
        "the plan gives no number; the office's choice",
    ),
]
LG_NAMES: dict[str, Any] = {
    "publications": {
        "龙岗信息": ("周刊", "专报", "专刊"),
        "信息快报": ("周刊", "日刊", "上报", "专报", "增刊", "调研"),
        "一周网民议论热点": (),
        "短信息": (),
        "粤办信息": (),
    },
    "bonuses": {"批示": ("区领导", "市领导", "省领导")},
    "unit_bonuses": ["组织奖"],
    "deductions": ["市办通报", "区办通报", "约稿"],
    "sequences": ["street", "district_unit", "resident"],
    "awards": ["先进集体", "优秀组织者", "优秀信息员"],
}

# 附件《龙岗区2012年党政信息采用积分任务基数表》, verbatim (header and 70 rows).
LG_TASK_TABLE = """\
单位 | 市采用信息(条) | 区采用信息(条) | 积 分 |
平湖街道 | 15 | 18 | 300 |
布吉街道 | 15 | 18 | 300 |
坂田街道 | 15 | 18 | 300 |
南湾街道 | 15 | 18 | 300 |
横岗街道 | 15 | 18 | 300 |
龙岗街道 | 15 | 18 | 300 |
龙城街道 | 15 | 18 | 300 |
坪地街道 | 15 | 18 | 300 |
区委组织部 | 1 | 4 | 50 |
区委宣传部 | 1 | 4 | 50 |
区委统战部(侨办) | 1 | 4 | 50 |
区纪委机关(监察局) | 1 | 4 | 50 |
区委政法委 | 1 | 4 | 50 |
区信访局 | 1 | 4 | 50 |
区委党校 | 1 | 3 | 50 |
区人大常委会机关 | 1 | 4 | 50 |
区政协机关 | 1 | 4 | 50 |
区法院 | 1 | 4 | 50 |
区检察院 | 1 | 4 | 50 |
区人武部 | 3 | 30 | |
区发展改革局 | 2 | 4 | 60 |
区经济促进局 | 2 | 4 | 60 |
区教育局 | 2 | 4 | 60 |
区科技创新局 | 2 | 4 | 60 |
区民政局 | 2 | 4 | 60 |
区司法局 | 1 | 4 | 50 |
区财政局 | 1 | 4 | 50 |
区国资委 | 1 | 4 | 50 |
区人力资源局 | 2 | 4 | 60 |
区住房建设局 | 2 | 4 | 60 |
区文体旅游局 | 2 | 4 | 60 |
区卫生局 | 2 | 4 | 60 |
区人口计生局 | 1 | 4 | 50 |
区审计局 | 1 | 4 | 50 |
区环境保护和水务局 | 2 | 4 | 60 |
区统计局 | 1 | 4 | 50 |
区城管局 | 2 | 4 | 60 |
区机关事务管理局 | 3 | 30 | |
区安全生产监督管理局 | 2 | 4 | 60 |
区应急管理办公室 | 1 | 4 | 50 |
区建筑工务局 | 2 | 4 | 60 |
区城市更新办 | 1 | 4 | 50 |
区文化产业发展办公室 | 1 | 3 | 40 |
区新闻中心 | 1 | 4 | 40 |
区政府采购中心 | 1 | 4 | 40 |
区职业训练中心 | 1 | 4 | 40 |
区投资管理有限公司 | 1 | 4 | 40 |
区城市建设投资有限公司 | 3 | 30 | |
区总工会 | 1 | 3 | 40 |
团区委 | 1 | 3 | 40 |
区妇联 | 1 | 3 | 40 |
区总商会(区两新组织工委) | 1 | 3 | 40 |
区残联 | 3 | 30 | |
龙岗公安分局 | 2 | 4 | 60 |
龙岗交通运输局 | 2 | 4 | 60 |
龙岗规划国土管理局 | 2 | 4 | 60 |
龙岗市场监管分局 | 2 | 4 | 60 |
龙岗区国税局 | 2 | 4 | 60 |
龙岗区地税局 | 2 | 4 | 60 |
市地税第五稽查局 | 3 | 30 | |
龙岗社保分局 | 1 | 4 | 50 |
龙岗国安处 | 4 | 40 | |
龙岗出入境检验检疫局 | 1 | 3 | 30 |
龙岗邮政分局 | 3 | 30 | |
龙岗电信分局 | 3 | 30 | |
龙岗药品监管分局 | 1 | 4 | 50 |
龙岗供电局 | 3 | 30 | |
沙湾海关 | 3 | 30 | |
布吉海关 | 3 | 30 | |
龙岗交警大队 | 3 | 30 |
"""
# The rows with two numbers: 区采用信息 and 积分, no 市采用信息 (the TOML comment gives why).
LG_TWO_NUMBER_ROWS = (
    "区人武部",
    "区机关事务管理局",
    "区城市建设投资有限公司",
    "区残联",
    "市地税第五稽查局",
    "龙岗国安处",
    "龙岗邮政分局",
    "龙岗电信分局",
    "龙岗供电局",
    "沙湾海关",
    "布吉海关",
    "龙岗交警大队",
)

# --- Changji 2017 -----------------------------------------------------------------------

CJ_COUNTY = "各县市向州政府办公室报送信息每月不少于100篇并且采用率不低于5%的,每月加20分"
CJ_PARK = "园区向州政府办公室报送信息每月不少于30篇并且采用率不低于10%的,每月加20分"
CJ_KEY = "州直重点部门向州政府办公室报送信息每月不少于20篇并且采用率不低于10%的,每月加20分"
CJ_OTHER = "州直非重点部门向州政府办公室报送信息每月不少于10篇并且采用率不低于10%的,每月加20分"
CJ_INNER = (
    "被《昌吉信息(内刊)》采用的动态类信息,主要包括自治区领导调研言论,自治州重点工作推进情况和"
    "经济社会发展实时动态,每条10分;情况专报类信息,主要包括工作推进和政策落实过程中出现的重要情况、"
    "重要问题及解决措施、建议,重要社会动态和社情民意,重大突发事件处置和分析评估情况,工作创新和"
    "典型经验,领导批示落实情况等,每条20分;参阅参考类信息,主要指综合性、预测性、分析性的调研报告,"
    "每条40分"
)
CJ_REGION = "经《昌吉信息(内刊)》上报,被自治区政府办公厅信息刊物采用的信息,每条另加10分"
CJ_TRAINING = "各县市每年完成2次人数在50人以上的信息集中培训,年底加50分"
CJ_SHADOWING = "各县市、园区按州政府办公室跟班培训计划完成年度跟班培训工作,年底加50分"
CJ_ORGANISATION = (
    "明确分管领导,各县市政府办公室配备2名专职信息员,园区管委会党政办公室配备1名专职信息员,"
    "各部门配备1名专职或兼职信息员,年底加50分"
)


def changji_table() -> list[Entry]:
    inner = CJ.publication("昌吉信息(内刊)")
    instruction = CJ.bonus("批示")
    upward = CJ.bonus("上报")
    per_sequence = dict(_award(CJ, "先进单位").per_sequence)
    return [
        # 三(二), 二(三): a calendar year, ranked month by month, talks quarter by quarter
        (
            "calendar year_start_month",
            CJ.calendar.year_start_month,
            1,
            "按月通报排名,并根据年终名次确定考核成绩",
        ),
        (
            "calendar months_per_quarter",
            CJ.calendar.months_per_quarter,
            3,
            "按季度对信息报送数量不够、质量不高、工作滞后的县市、园区、州直部门进行约谈",
        ),
        # 附件1 三(二)
        ("county quota items", _quota(CJ, "county").items, 100, CJ_COUNTY),
        ("county min_adoption_percent", _quota(CJ, "county").min_adoption_percent, 5, CJ_COUNTY),
        ("county bonus_points", _quota(CJ, "county").bonus_points, 20, CJ_COUNTY),
        ("park quota items", _quota(CJ, "park").items, 30, CJ_PARK),
        ("park min_adoption_percent", _quota(CJ, "park").min_adoption_percent, 10, CJ_PARK),
        ("park bonus_points", _quota(CJ, "park").bonus_points, 20, CJ_PARK),
        ("key_dept quota items", _quota(CJ, "key_dept").items, 20, CJ_KEY),
        ("key_dept min_adoption_percent", _quota(CJ, "key_dept").min_adoption_percent, 10, CJ_KEY),
        ("key_dept bonus_points", _quota(CJ, "key_dept").bonus_points, 20, CJ_KEY),
        ("other_dept quota items", _quota(CJ, "other_dept").items, 10, CJ_OTHER),
        (
            "other_dept min_adoption_percent",
            _quota(CJ, "other_dept").min_adoption_percent,
            10,
            CJ_OTHER,
        ),
        ("other_dept bonus_points", _quota(CJ, "other_dept").bonus_points, 20, CJ_OTHER),
        # 附件1 三(一)
        (
            "昌吉信息(普刊) points",
            CJ.publication("昌吉信息(普刊)").points_for(None),
            10,
            "被《昌吉信息(普刊)》采用的信息,每条10分",
        ),
        ("昌吉信息(内刊) 动态 points", inner.points_for("动态"), 10, CJ_INNER),
        ("昌吉信息(内刊) 情况专报 points", inner.points_for("情况专报"), 20, CJ_INNER),
        ("昌吉信息(内刊) 参阅参考 points", inner.points_for("参阅参考"), 40, CJ_INNER),
        (
            "批示 州领导 points",
            instruction.level("州领导").points,
            10,
            "州政府领导作出批示的信息,每条另加10分",
        ),
        (
            "批示 自治区领导 points",
            instruction.level("自治区领导").points,
            20,
            "自治区政府领导作出批示的信息,每条另加20分",
        ),
        (
            "批示 国务院领导 points",
            instruction.level("国务院领导").points,
            50,
            "国务院领导作出批示的信息,每条另加50分",
        ),
        # 附件1 三(一) (points, 自治区 adoption only) and 附件2 三(二)–(五) (yuan)
        ("上报 国务院采用 points", upward.level("国务院采用").points, 0, CJ_REGION),
        ("上报 新疆要情 points", upward.level("新疆要情").points, 10, CJ_REGION),
        ("上报 参考信息 points", upward.level("参考信息").points, 10, CJ_REGION),
        ("上报 情况专报 points", upward.level("情况专报").points, 10, CJ_REGION),
        ("上报 昨日要情 points", upward.level("昨日要情").points, 10, CJ_REGION),
        (
            "上报 国务院采用 yuan",
            upward.level("国务院采用").yuan,
            1000,
            "被国务院政务信息刊物采用的信息,奖励1000元/篇",
        ),
        (
            "上报 新疆要情 yuan",
            upward.level("新疆要情").yuan,
            500,
            "被自治区政府办公厅《新疆要情》、《参考信息》刊物采用的信息,奖励500元/篇",
        ),
        (
            "上报 参考信息 yuan",
            upward.level("参考信息").yuan,
            500,
            "被自治区政府办公厅《新疆要情》、《参考信息》刊物采用的信息,奖励500元/篇",
        ),
        (
            "上报 情况专报 yuan",
            upward.level("情况专报").yuan,
            200,
            "被自治区政府办公厅《情况专报》刊物采用的信息,奖励200元/篇",
        ),
        (
            "上报 昨日要情 yuan",
            upward.level("昨日要情").yuan,
            100,
            "被自治区政府办公厅《昨日要情》刊物采用的信息,奖励100元/篇",
        ),
        # 附件1 三(三), 三(四)
        (
            "约稿 points",
            CJ.deduction("约稿").points,
            10,
            "未按约稿通知规定的时限、内容报送约稿信息的,一次扣10分",
        ),
        (
            "内容不实 points",
            CJ.deduction("内容不实").points,
            50,
            "信息内容不实造成不良影响的,一次扣50分",
        ),
        # 附件1 三(五), 三(六)
        ("集中培训 points", CJ.unit_bonus("集中培训").points, 50, CJ_TRAINING),
        ("跟班培训 points", CJ.unit_bonus("跟班培训").points, 50, CJ_SHADOWING),
        ("组织体系 points", CJ.unit_bonus("组织体系").points, 50, CJ_ORGANISATION),
        # 附件2 二(一), 三(一)
        ("先进单位 county", per_sequence["county"], 3, "年终积分排名前3位的县市"),
        ("先进单位 park", per_sequence["park"], 1, "第1位的园区"),
        ("先进单位 key_dept", per_sequence["key_dept"], 5, "前5位的州直重点部门"),
        ("先进单位 other_dept", per_sequence["other_dept"], 3, "前3位的州直非重点部门"),
        ("先进单位 yuan", _award(CJ, "先进单位").yuan, 2000, "先进单位,奖励2000元/单位"),
    ]


CJ_UNSTATED = {
    "calendar year_start_month": "ranked by the year's end (年终名次): the calendar year",
    "calendar months_per_quarter": "按季度: a quarter is three months",
    "上报 国务院采用 points": "附件1 scores 自治区 adoption only; 国务院 adoption pays yuan",
}
CJ_NAMES: dict[str, Any] = {
    "publications": {
        "昌吉信息(普刊)": (),
        "昌吉信息(内刊)": ("动态", "情况专报", "参阅参考"),
    },
    "bonuses": {
        "批示": ("州领导", "自治区领导", "国务院领导"),
        "上报": ("国务院采用", "新疆要情", "参考信息", "情况专报", "昨日要情"),
    },
    "unit_bonuses": ["集中培训", "跟班培训", "组织体系"],
    "deductions": ["约稿", "内容不实"],
    "sequences": ["county", "park", "key_dept", "other_dept"],
    "awards": ["先进单位"],
}

BOOKS: dict[str, tuple[Rulebook, Callable[[], list[Entry]], dict[str, str], dict[str, Any]]] = {
    "longgang-2012": (LG, longgang_table, LG_UNSTATED, LG_NAMES),
    "changji-2017": (CJ, changji_table, CJ_UNSTATED, CJ_NAMES),
}


# --- reading the TOML files ---------------------------------------------------------------


def toml_text(name: str) -> str:
    return (RULEBOOK_DIR / f"{name}.toml").read_text(encoding="utf-8")


def blocks(name: str) -> list[tuple[str, str]]:
    """The TOML file as (comment, code) pairs: a run of comment lines, joined, and the lines
    after it up to the next comment (inline comments left out)."""
    found: list[tuple[list[str], list[str]]] = [([], [])]
    for line in toml_text(name).splitlines():
        if line.startswith("#"):
            if found[-1][1]:
                found.append(([], []))
            found[-1][0].append(line[1:].removeprefix(" "))
        else:
            found[-1][1].append(line.split(" #")[0])
    return [("".join(comment), "\n".join(code)) for comment, code in found]


def elides(quote: str, phrase: str) -> bool:
    """The quote is the phrase with parts left out (“……”): its pieces are in it, in order."""
    at = 0
    for piece in filter(None, quote.split("……")):
        at = phrase.find(piece, at)
        if at < 0:
            return False
        at += len(piece)
    return True


def quotes(phrase: str, comment: str) -> bool:
    return phrase in comment or any(elides(q, phrase) for q in re.findall("“([^”]*)”", comment))


def holds(code: str, value: int) -> bool:
    return re.search(rf"(?<![\d.]){value}(?![\d.])", code) is not None


def numbers(data: Any) -> Iterator[int]:
    if isinstance(data, dict):
        for value in data.values():
            yield from numbers(value)
    elif isinstance(data, list):
        for value in data:
            yield from numbers(value)
    elif isinstance(data, int) and not isinstance(data, bool):
        yield data


# --- the checks -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", BOOKS)
def test_each_number_is_the_plans(name: str) -> None:
    _, table, unstated, _ = BOOKS[name]
    wrong = [
        f"{what}: rulebook {got}, plan {want}" for what, got, want, _ in table() if got != want
    ]
    assert wrong == []
    # The plan's words state the number (as digits), unless listed with the reason they do not.
    unstated_found = {
        what for what, _, want, phrase in table() if str(want) not in re.findall(r"\d+", phrase)
    }
    assert unstated_found == set(unstated)
    assert len({what for what, *_ in table()}) == len(table())


@pytest.mark.parametrize("name", BOOKS)
def test_each_number_has_the_plans_words_beside_it(name: str) -> None:
    parts = blocks(name)
    _, table, _, _ = BOOKS[name]
    alone = [
        f"{what} = {want}: {phrase}"
        for what, _, want, phrase in table()
        if not any(quotes(phrase, comment) and holds(code, want) for comment, code in parts)
    ]
    assert alone == []


def test_every_number_in_the_files_is_in_a_table() -> None:
    raw = tomllib.loads(toml_text("longgang-2012"))
    tasks = raw.pop("tasks")
    listed = [want for _, _, want, _ in longgang_table()]
    listed += [want for _, _, want, _, _ in LG_NOT_FROM_PLAN]
    assert Counter(numbers(raw)) == Counter(listed)
    assert len(tasks) == 70  # checked against the attachment below
    raw = tomllib.loads(toml_text("changji-2017"))
    assert Counter(numbers(raw)) == Counter(want for _, _, want, _ in changji_table())


@pytest.mark.parametrize("name", BOOKS)
def test_the_rulebook_has_the_listed_names_and_no_others(name: str) -> None:
    rb, _, _, names = BOOKS[name]
    assert {p.name: tuple(g.name for g in p.grades) for p in rb.publications} == names[
        "publications"
    ]
    assert {b.name: tuple(lv.name for lv in b.levels) for b in rb.bonuses} == names["bonuses"]
    assert [b.name for b in rb.unit_bonuses] == names["unit_bonuses"]
    assert [d.name for d in rb.deductions] == names["deductions"]
    assert [s.key for s in rb.sequences] == names["sequences"]
    assert [a.name for a in rb.awards] == names["awards"]
    # Nothing else with a number: no targets, clues, shares, streaks, core team or limits.
    assert all(
        (s.monthly_target, s.quarterly_target, s.annual_target) == (None, None, None)
        for s in rb.sequences
    )
    assert (rb.clue_points, rb.direct_share_percent, rb.core_team_size) == (None, 0, 0)
    assert (rb.praise, rb.criticism, rb.body_chars, rb.attachment_chars) == ((), (), 0, 0)


def test_lagging_units_is_the_only_number_not_from_the_plan() -> None:
    parts = blocks("longgang-2012")
    for what, got, want, _, words in LG_NOT_FROM_PLAN:
        assert got == want, what
        assert any(words in comment and holds(code, want) for comment, code in parts), what
    assert [what for what, *_ in LG_NOT_FROM_PLAN] == ["[reports] lagging_units"]
    assert CJ.lagging_units == 0


def attachment() -> list[tuple[str, str, list[int]]]:
    """The attachment's rows: the unit, the row as printed, and its numbers."""
    header, *rows = LG_TASK_TABLE.strip("\n").split("\n")
    assert header == "单位 | 市采用信息(条) | 区采用信息(条) | 积 分 |"
    found = []
    for row in rows:
        unit, *cells = (cell.strip() for cell in row.split("|"))
        found.append((unit, row, [int(cell) for cell in cells if cell]))
    return found


def test_longgang_tasks_are_the_attachment_table() -> None:
    rows = attachment()
    assert len(rows) == 70
    expected = []
    for unit, _, counts in rows:
        if len(counts) == 3:
            city, district, points = counts
            expected.append((unit, points, {"市": city, "区": district}))
        else:
            # Two numbers: 区采用信息 and 积分; no 市 task.
            assert len(counts) == 2, unit
            district, points = counts
            expected.append((unit, points, {"区": district}))
    assert [(t.unit, t.points, dict(t.adopted)) for t in LG.tasks] == expected


def test_longgang_two_number_rows_are_district_items_and_points() -> None:
    two = [(unit, counts) for unit, _, counts in attachment() if len(counts) == 2]
    assert [unit for unit, _ in two] == list(LG_TWO_NUMBER_ROWS)
    weekly = LG.publication("龙岗信息").points_for("周刊")
    assert weekly == 10
    for unit, (district, points) in two:
        task = LG.task_of(unit)
        assert task is not None, unit
        assert dict(task.adopted) == {"区": district}, unit  # no 市采用信息 task
        # The reason the TOML gives: 积分 is what that many 周刊 items of 《龙岗信息》 score.
        assert points == weekly * district == task.points, unit
    reason = "the second number is ten times the first"
    assert any(reason in comment for comment, _ in blocks("longgang-2012"))


def test_each_task_in_the_toml_quotes_its_row() -> None:
    beside = dict(
        re.findall(r'^unit = "([^"]+)"\s+# (.*)$', toml_text("longgang-2012"), re.MULTILINE)
    )
    rows = attachment()
    assert list(beside) == [unit for unit, _, _ in rows]
    wrong = [unit for unit, row, _ in rows if not beside[unit].startswith(row)]
    assert wrong == []
