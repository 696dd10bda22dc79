"""The bench workload: realistic items as Foxmail builds them, from the demo registry's officers.

Each item is GBK (labelled GB2312, as Foxmail does): a base64 text/plain part and a
quoted-printable text/html part in multipart/alternative, about 2 KB; every `docx_every`-th
item also carries a .docx of detailed material (1,000–3,000 字) in multipart/mixed. All of them
pass validation, so each one is filed and answered with a receipt.
"""

from __future__ import annotations

import base64
import csv
import io
import quopri
import random
import struct
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from ledger.demo import DEMO_DIR
from parser.count import count_chars

ZONE = ZoneInfo("Asia/Shanghai")
DAILY = "inf@mailroom.test"
CRLF = b"\r\n"


@dataclass(frozen=True)
class Officer:
    """A registered info officer (信息员) of a demo unit: who sends the items."""

    unit_code: str
    unit_name: str
    mark: str
    name: str
    email: str
    phone: str


@dataclass(frozen=True)
class Letter:
    """One message to send: the envelope sender and the bytes on the wire (CRLF)."""

    mail_from: str
    data: bytes


def demo_officers() -> list[Officer]:
    """The info officers of the demo registry (`mailroom init --demo`), one per unit."""
    with open(DEMO_DIR / "units.csv", encoding="utf-8") as fh:
        units = {row["code"]: row for row in csv.DictReader(fh)}
    officers = []
    with open(DEMO_DIR / "people.csv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["role"] != "officer":
                continue
            unit = units[row["unit_code"]]
            officers.append(
                Officer(
                    unit_code=unit["code"],
                    unit_name=unit["name"],
                    mark=unit["mark"],
                    name=row["name"],
                    email=row["email"],
                    phone=row["phone"],
                )
            )
    return officers


# --- text -------------------------------------------------------------------------------

_ACTIONS = ("多措并举推进", "扎实开展", "全面深化", "创新推行", "着力抓好", "持续优化", "统筹推进")
_TOPICS = (
    "“放管服”改革",
    "营商环境建设",
    "城市环境综合整治",
    "安全生产大检查",
    "防汛防旱工作",
    "民生实事项目",
    "政务公开工作",
    "基层社会治理",
    "招商引资工作",
    "文明城市创建",
    "垃圾分类处理",
    "食品安全监管",
)
_RESULTS = ("取得新成效", "成效明显", "见实效", "取得阶段性进展", "亮点纷呈")
# A sentence is an opening, a measure and a result, each drawn on its own: two units' items
# share a phrase here and there, as real ones on the same topics do, and no more (at most
# about a third of their character shingles, under `[similar] threshold`).
_OPENINGS = (
    "今年以来，{unit}围绕{topic}，",
    "{month}月份，{unit}",
    "为切实抓好{topic}，{unit}",
    "针对群众反映强烈的突出问题，",
    "在前期试点的基础上，",
    "按照市委、市政府统一部署，",
    "结合辖区实际，{unit}",
    "据统计，截至{month}月底，",
    "自{topic}启动以来，",
    "同时，",
    "一是",
    "二是",
)
_MEASURES = (
    "成立以主要负责同志为组长的工作领导小组，制定实施方案{n}项",
    "组织专项督查{n}次，发现并整改问题{m}个",
    "在全区设立服务窗口{n}个，实现{m}项高频事项一窗受理",
    "通过报刊、网站和政务微博发布信息{n}条",
    "累计投入资金{n}万元，惠及群众{m}万人次",
    "共受理群众来电来信{n}件，逐件登记、限时办结",
    "组织党员志愿者{n}人次深入社区开展服务活动",
    "建立问题台账{n}本，逐项明确责任单位和完成时限",
    "召开专题协调会{n}次，研究解决重点难点问题{m}个",
    "对辖区{m}家企业开展拉网式排查，下发整改通知书{n}份",
    "引入第三方机构开展评估，形成评估报告{n}份",
    "推行网格化管理，划分网格{n}个，配备网格员{m}名",
    "开展业务培训{n}期，培训基层干部{m}人次",
    "聘请专家顾问{n}名，对重点项目进行全程跟踪指导",
)
_RESULTS_OF_MEASURES = (
    "，整改完成率达到{p}%。",
    "，群众知晓率明显提高。",
    "，同比增长{p}%。",
    "，群众满意度达到{p}%。",
    "，相关经验做法在全市推广。",
    "，得到省、市有关部门的充分肯定。",
    "，工作效率提高{p}%。",
    "，有效破解了一批历史遗留问题。",
    "，为下一步全面铺开积累了经验。",
    "，形成了一批可复制可推广的制度成果。",
)
_MATERIAL = (
    "关于{topic}的详细材料如下：",
    "（一）基本情况。{unit}共有相关单位{n}个，从业人员{m}人，近三年累计完成投资{p}亿元。",
    "（二）主要做法。坚持问题导向，建立台账{n}本，逐项明确责任单位、责任人和完成时限。",
    "（三）存在问题。部分单位认识不到位，工作进展不平衡，个别项目推进缓慢，资金到位率仅{p}%。",
    "（四）下一步工作。继续加大投入力度，完善考核办法，确保年底前完成全部{n}项任务。",
)


def _fill(template: str, rng: random.Random, unit: str, topic: str, now: datetime) -> str:
    return template.format(
        unit=unit,
        topic=topic,
        n=rng.randint(3, 480),
        m=rng.randint(10, 9000),
        p=rng.randint(11, 99),
        month=now.month,
    )


def _body(rng: random.Random, unit: str, topic: str, now: datetime, limit: int = 260) -> str:
    """Paragraphs of the item's text: between about 100 and `limit` 字 (the cap is 450)."""
    target = rng.randint(100, limit - 60)
    paragraphs: list[str] = []
    total = 0
    while total < target:
        template = rng.choice(_OPENINGS) + rng.choice(_MEASURES) + rng.choice(_RESULTS_OF_MEASURES)
        candidate = _fill(template, rng, unit, topic, now)
        chars = count_chars(candidate)
        if total + chars > limit:
            break
        paragraphs.append(candidate)
        total += chars
    return "\r\n".join(paragraphs)


def _material(rng: random.Random, unit: str, topic: str, now: datetime) -> list[str]:
    """Paragraphs of the .docx's detailed material: 1,000 to 3,000 字."""
    target = rng.randint(1000, 3000)
    paragraphs: list[str] = []
    total = 0
    while total < target:
        for template in _MATERIAL:
            line = _fill(template, rng, unit, topic, now)
            paragraphs.append(line)
            total += count_chars(line)
    return paragraphs


# --- MIME as Foxmail writes it -----------------------------------------------------------


def _b64_lines(data: bytes) -> bytes:
    encoded = base64.b64encode(data)
    return CRLF.join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


def _word(text: str) -> str:
    """An RFC 2047 encoded word in GBK, as Foxmail writes display names and subjects."""
    return "=?GBK?B?" + base64.b64encode(text.encode("gbk")).decode("ascii") + "?="


def _qp(data: bytes) -> bytes:
    return quopri.encodestring(data).replace(b"\r\n", b"\n").replace(b"\n", CRLF)


_DOCX_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Default Extension="png" ContentType="image/png"/>'
    '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.wordprocessingml.document.main+xml"/></Types>'
)
_DOCX_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
)
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def docx_bytes(paragraphs: Iterable[str], image_bytes: int = 0) -> bytes:
    """A minimal real .docx (as Word saves it: a zip with `word/document.xml`).

    `image_bytes` adds an incompressible picture of that size under `word/media/`, to make a
    large attachment the way real ones are large.
    """
    runs = "".join(
        f'<w:p><w:r><w:rPr><w:rFonts w:hint="eastAsia"/></w:rPr><w:t>{p}</w:t></w:r></w:p>'
        for p in paragraphs
    )
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<w:document xmlns:w="{_W}"><w:body>{runs}<w:sectPr/></w:body></w:document>'
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", _DOCX_TYPES)
        zf.writestr("_rels/.rels", _DOCX_RELS)
        zf.writestr("word/document.xml", document)
        if image_bytes:
            # A PNG signature and random bytes: pictures do not compress.
            blob = b"\x89PNG\r\n\x1a\n" + random.Random(image_bytes).randbytes(image_bytes - 8)
            zf.writestr("word/media/image1.png", blob, compress_type=zipfile.ZIP_STORED)
    return out.getvalue()


def build_item(
    officer: Officer,
    seq: int,
    rng: random.Random,
    now: datetime,
    *,
    with_docx: bool = False,
    image_bytes: int = 0,
    body: str | None = None,
) -> bytes:
    """One item from `officer`, as Foxmail 7.2 sends it (GBK, CRLF line ends); `body` gives
    its text (another unit's copy), else it is written afresh."""
    local = now.astimezone(ZONE)
    topic = rng.choice(_TOPICS)
    title = f"{officer.unit_name}{rng.choice(_ACTIONS)}{topic}{rng.choice(_RESULTS)}"
    if body is None:
        body = _body(rng, officer.unit_name, topic, local)
    signoff = "\r\n".join(
        (
            f"作者单位：{officer.unit_name}",
            f"姓名：{officer.name}",
            f"联系电话：{officer.phone}",
            f"日期：{local.year}年{local.month}月{local.day}日",
        )
    )
    text = f"{title}\r\n\r\n{body}\r\n\r\n{signoff}\r\n"
    html = (
        '<html><head><meta http-equiv="content-type" content="text/html; charset=GB2312">'
        '<style>body { font-size: 14px; font-family: "Microsoft YaHei UI"; }</style>'
        "</head><body>\r\n"
        + "".join(
            f"<div>{line}</div>\r\n" if line else "<div><br></div>\r\n"
            for line in text.split("\r\n")
        )
        + "</body></html>"
    )
    stamp = local.strftime("%Y%m%d%H%M%S")
    domain = officer.email.rpartition("@")[2]
    alt = f"----=_001_NextPart{stamp}{seq:06d}_=----"
    headers = [
        f"Date: {format_datetime(local)}",
        f'From: "{_word(officer.unit_name)}" <{officer.email}>',
        f'To: "inf" <{DAILY}>',
        f"Subject: {_word(officer.mark + title)}",
        "X-Priority: 3",
        f"X-GUID: {rng.getrandbits(128):032X}",
        f"X-Has-Attach: {'yes' if with_docx else 'no'}",
        "X-Mailer: Foxmail 7.2.25.254[cn]",
        "Mime-Version: 1.0",
        f"Message-ID: <{stamp}{seq:07d}{rng.randint(0, 9999):04d}@{domain}>",
    ]
    alternative = CRLF.join(
        [
            f"--{alt}".encode(),
            b'Content-Type: text/plain;\r\n\tcharset="GB2312"',
            b"Content-Transfer-Encoding: base64",
            b"",
            _b64_lines(text.encode("gbk")),
            b"",
            f"--{alt}".encode(),
            b'Content-Type: text/html;\r\n\tcharset="GB2312"',
            b"Content-Transfer-Encoding: quoted-printable",
            b"",
            _qp(html.encode("gbk")),
            b"",
            f"--{alt}--".encode(),
            b"",
        ]
    )
    if not with_docx:
        head = [*headers, f'Content-Type: multipart/alternative;\r\n\tboundary="{alt}"']
        return CRLF.join(
            [
                CRLF.join(h.encode() for h in head),
                b"",
                b"This is a multi-part message in MIME format.",
                b"",
                alternative,
            ]
        )
    mixed = f"----=_001_NextPart{stamp}{seq:06d}_=----mixed"
    filename = _word(f"{title[:20]}详细材料.docx")
    docx = docx_bytes(_material(rng, officer.unit_name, topic, local), image_bytes)
    head = [*headers, f'Content-Type: multipart/mixed;\r\n\tboundary="{mixed}"']
    return CRLF.join(
        [
            CRLF.join(h.encode() for h in head),
            b"",
            b"This is a multi-part message in MIME format.",
            b"",
            f"--{mixed}".encode(),
            f'Content-Type: multipart/alternative;\r\n\tboundary="{alt}"'.encode(),
            b"",
            alternative,
            f"--{mixed}".encode(),
            b"Content-Type: application/vnd.openxmlformats-officedocument."
            b'wordprocessingml.document;\r\n\tname="' + filename.encode() + b'"',
            b"Content-Transfer-Encoding: base64",
            b'Content-Disposition: attachment;\r\n\tfilename="' + filename.encode() + b'"',
            b"",
            _b64_lines(docx),
            b"",
            f"--{mixed}--".encode(),
            b"",
        ]
    )


def make_workload(
    count: int,
    *,
    seed: int = 8,
    now: datetime | None = None,
    docx_every: int = 10,
    copy_every: int = 20,
) -> list[Letter]:
    """`count` items from the demo officers in turn; every `docx_every`-th has a .docx, and
    every `copy_every`-th is the text of the item before it sent again by another unit under
    its own title (撒网式报送, which the filing path looks for in every item)."""
    rng = random.Random(seed)
    now = now or datetime.now(ZONE)
    officers = demo_officers()
    letters = []
    last_body: str | None = None
    for seq in range(count):
        officer = officers[seq % len(officers)]
        copied = last_body if copy_every > 0 and seq % copy_every == copy_every - 1 else None
        body = copied or _body(
            random.Random(rng.random()),
            officer.unit_name,
            rng.choice(_TOPICS),
            now.astimezone(ZONE),
        )
        data = build_item(
            officer, seq, rng, now, with_docx=docx_every > 0 and seq % docx_every == 0, body=body
        )
        letters.append(Letter(officer.email, data))
        last_body = body
    return letters


def big_item(size: int, *, now: datetime | None = None) -> Letter:
    """One item of about `size` bytes: a .docx whose picture makes it large."""
    officer = demo_officers()[0]
    now = now or datetime.now(ZONE)
    small = build_item(officer, 0, random.Random(1), now, with_docx=True)
    # base64 at 76 columns with CRLF: 4/3 of the bytes, plus 2 bytes per 76.
    image = max(1024, int((size - len(small)) * 57 / 78) - 2048)
    data = build_item(officer, 0, random.Random(1), now, with_docx=True, image_bytes=image)
    return Letter(officer.email, data)


# --- the workload file the load client reads ---------------------------------------------

_RECORD = struct.Struct("!HI")


def write_workload(letters: Iterable[Letter], path: Path) -> int:
    """Write letters as length-prefixed records; returns how many."""
    n = 0
    with open(path, "wb") as fh:
        for letter in letters:
            sender = letter.mail_from.encode()
            fh.write(_RECORD.pack(len(sender), len(letter.data)))
            fh.write(sender)
            fh.write(letter.data)
            n += 1
    return n


def read_workload(path: Path) -> Iterator[Letter]:
    with open(path, "rb") as fh:
        while head := fh.read(_RECORD.size):
            n_sender, n_data = _RECORD.unpack(head)
            sender = fh.read(n_sender).decode()
            yield Letter(sender, fh.read(n_data))
