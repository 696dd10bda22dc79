# ruff: noqa: E501 - a table of fixtures: one message per line reads best
"""Build the `.eml` fixtures under tests/data/mail/ and the hostile Word files under word/.

Run by hand when a fixture changes (`.venv/bin/python tests/data/build_fixtures.py`); the
output is committed and the tests never run this. Each message is laid out the way its client
lays mail out: header order, MIME structure, charsets and transfer encodings as Foxmail 7.2,
Outlook 2016 (zh-CN and zh-TW), WPS Office, QQ Mail, 163 (Coremail) webmail, a Coremail
government mail system, Thunderbird and iPhone Mail send them. `MANIFEST.json` records what each
fixture must yield; the tests read it.

The real Word files (item.docx/.doc/.wps, long.docx/.doc, latin.doc) were saved by LibreOffice
7.4 headless from the .txt files beside them (see word/README.md); encrypted.docx was encrypted
with msoffcrypto-tool. The hostile ones (zip bomb, entity tricks, broken and flagged .doc) are
derived from them here.
"""

from __future__ import annotations

import base64
import io
import json
import quopri
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).parent
MAIL = HERE / "mail"
WORD = HERE / "word"
CRLF = "\r\n"

# --- item texts --------------------------------------------------------------------------

ITEM_TH = (
    "今年以来，天河区围绕优化营商环境，深入推进“放管服”改革。一是压减审批事项。全区取消和下放"
    "行政审批事项37项，企业开办时间由原来的5个工作日压缩至1个工作日。二是推行“一窗通办”。在区"
    "政务服务中心设立综合受理窗口28个，实现126项高频事项“一窗受理、集成服务”，群众办事平均等候"
    "时间缩短40%。三是强化事中事后监管。建立“双随机、一公开”监管机制，全年开展联合抽查86次。"
    "截至10月底，全区新登记市场主体4.3万户，同比增长18.6%。"
)
ITEM_YX = (
    "越秀区深入开展城市环境综合整治行动，组织街道、社区和相关职能部门对辖区内背街小巷、农贸市场、"
    "城中村等重点区域进行全面排查整治，累计清理卫生死角1200余处，拆除违法建设3.6万平方米，规范"
    "设置非机动车停放点260个，市容环境面貌明显改善，群众满意度显著提升。"
)
ITEM_YX_TRAD = (
    "越秀區深入開展城市環境綜合整治行動，組織街道、社區和相關職能部門對轄區內背街小巷、農貿市場、"
    "城中村等重點區域進行全面排查整治，累計清理衛生死角1200餘處，拆除違法建設3.6萬平方米，規範"
    "設置非機動車停放點260個，市容環境面貌明顯改善，群眾滿意度顯著提升。"
)
ITEM_HD = (
    "花都区以“干净整洁有序”为目标，全面推进农村人居环境整治。全区188个行政村全部建立垃圾收运"
    "体系，农村生活垃圾无害化处理率达100%；新建农村污水处理设施126座，铺设管网350公里；新建"
    "乡村公园32个。群众满意度显著提高。"
)
ITEM_HZ = (
    "海珠区加快推进城市更新，今年共启动旧村改造项目5个、旧厂房改造项目12个，完成投资86亿元。"
    "区里建立“一项目一专班”工作机制，由区领导挂点推进，协调解决征拆、规划调整等难题43个，"
    "项目平均审批时限压缩三分之一。"
)
ITEM_PY = (
    "番禺区扎实做好冬季森林防火工作。区成立森林防火指挥部，组建专业扑火队伍12支共480人，在重点"
    "林区设置瞭望塔9座、视频监控点56个，实现重点林区全天候监测。入冬以来全区未发生森林火灾。"
)
ITEM_GBK_ONLY = (
    "天河区组织学习朱镕基同志关于政府工作的论述，区政府办公室王堃同志作交流发言。全区各部门结合"
    "实际，制定改进作风的具体措施32条。"
)


def signoff(unit: str, name: str, phone: str, day: str = "2026年11月22日") -> list[str]:
    return [f"作者单位：{unit}", f"姓名：{name}", f"联系电话：{phone}", f"日期：{day}"]


TH_SIGNOFF = signoff("天河区政府办公室", "李明", "020-38620000")
YX_SIGNOFF = signoff("越秀区政府办公室", "王芳", "13593519892")
HD_SIGNOFF = signoff("花都区政府办公室", "唐秀英", "13733097276")
HZ_SIGNOFF = signoff("海珠区政府办公室", "徐海燕", "13653949184")
PY_SIGNOFF = signoff("番禺区政府办公室", "郑伟光", "020-84620000转8001")

SENDERS = {
    "TH": ("天河区", "liming@th.gz.test"),
    "YX": ("越秀区", "wangfang@yx.gz.test"),
    "HD": ("花都区", "tangxiuying@hd.gz.test"),
    "HZ": ("海珠区", "xuhaiyan@hz.gz.test"),
    "PY": ("番禺区", "zhengweiguang@py.gz.test"),
}
DATE = "Sun, 22 Nov 2026 10:55:12 +0800"  # five minutes before the tests' receive time

# --- encoders ----------------------------------------------------------------------------


def b64_lines(data: bytes, width: int = 76) -> str:
    text = base64.b64encode(data).decode("ascii")
    return CRLF.join(text[i : i + width] for i in range(0, len(text), width)) or ""


def qp(data: bytes) -> str:
    return quopri.encodestring(data).decode("ascii").replace("\n", CRLF)


def ew(text: str, charset: str, kind: str = "B", chunk: int = 0) -> str:
    """RFC 2047 encoded-word(s); `chunk` splits into several words of that many characters."""
    pieces = [text[i : i + chunk] for i in range(0, len(text), chunk)] if chunk else [text]
    words = []
    for piece in pieces:
        data = piece.encode(_codec(charset))
        if kind == "B":
            words.append(f"=?{charset}?B?{base64.b64encode(data).decode()}?=")
        else:
            body = "".join(chr(b) if (chr(b).isalnum() and b < 128) else f"={b:02X}" for b in data)
            words.append(f"=?{charset}?Q?{body}?=")
    return (CRLF + " ").join(words)


def _codec(charset: str) -> str:
    return {"gb2312": "gbk", "x-gbk": "gbk", "big5": "big5hkscs"}.get(charset.lower(), charset)


def html_of(lines: list[str], style: str) -> str:
    inner = "".join(f"<div>{line or '<br>'}</div>\n" for line in lines)
    return f'<html><head><meta charset="{style}"></head><body>\n{inner}</body></html>'


@dataclass
class Part:
    headers: list[tuple[str, str]]
    body: str  # already transfer-encoded, CRLF line ends

    def render(self) -> str:
        head = CRLF.join(f"{k}: {v}" for k, v in self.headers)
        return head + CRLF + CRLF + self.body


def text_part(
    text: str, charset: str, cte: str, subtype: str = "plain", folded_ctype: bool = True
) -> Part:
    data = text.replace("\n", CRLF).encode(_codec(charset), errors="strict")
    body = b64_lines(data) if cte == "base64" else qp(data) if cte == "quoted-printable" else ""
    if cte in ("8bit", "7bit"):
        body = data.decode(_codec(charset))
    sep = ";" + CRLF + "\t" if folded_ctype else "; "
    return Part(
        [
            ("Content-Type", f'text/{subtype}{sep}charset="{charset}"'),
            ("Content-Transfer-Encoding", cte),
        ],
        body,
    )


def multipart(subtype: str, boundary: str, parts: list[Part], preamble: str = "") -> str:
    out = [preamble] if preamble else []
    for part in parts:
        out.append(f"--{boundary}{CRLF}{part.render()}{CRLF}")
    out.append(f"--{boundary}--{CRLF}")
    return CRLF.join(out) if preamble else "".join(out)


# --- one fixture ------------------------------------------------------------------------


@dataclass
class Fixture:
    name: str
    client: str
    sender: str | None  # the demo registry's address of the sender, None when unregistered
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ignored: str | None = None
    title: str | None = None
    attachment: str | None = None
    attachment_chars: int | None = None
    markers: list[str] = field(default_factory=list)
    approver: str | None = None  # the sign-off's 审签人 / 签发人 / 审核人, when it names one
    note: str = ""


FIXTURES: list[Fixture] = []


def write(fx: Fixture, raw: str | bytes) -> None:
    data = raw.encode("utf-8", errors="surrogateescape") if isinstance(raw, str) else raw
    (MAIL / f"{fx.name}.eml").write_bytes(data)
    FIXTURES.append(fx)


def body_lines(item: str, sign: list[str], extra_after: list[str] | None = None) -> list[str]:
    return [item, "", *sign, *(extra_after or [])]


# --- clients -----------------------------------------------------------------------------


def foxmail(
    *,
    unit: str,
    subject: str,
    lines: list[str],
    seq: int,
    charset: str = "GB2312",
    attachments: list[tuple[str, bytes, str]] | None = None,
    inline_image: bool = False,
    from_name: str | None = None,
    date: str = DATE,
    html: bool = True,
) -> str:
    name, address = SENDERS[unit]
    stamp = f"202611221055{seq:02d}"
    alt_b = f"----=_001_NextPart{stamp}_=----"
    text = "\n".join(lines)
    parts = [text_part(text, charset, "base64")]
    if html:
        hp = text_part(html_of(lines, charset), charset, "quoted-printable", "html")
        parts.append(hp)
    inner = multipart("alternative", alt_b, parts)
    headers = [
        ("Date", date),
        ("From", f'"{ew(from_name or name, charset)}" <{address}>'),
        ("To", '"inf" <inf@mailroom.test>'),
        ("Subject", ew(subject, charset)),
        ("X-Priority", "3"),
        ("X-GUID", f"6B0E2C4A-3D1F-4E7B-9A5C-2F8D1E6B7C{seq:02d}"),
        ("X-Has-Attach", "yes" if attachments else "no"),
        ("X-Mailer", "Foxmail 7.2.25.254[cn]"),
        ("Mime-Version", "1.0"),
        ("Message-ID", f"<{stamp}0911274@{address.split('@')[1]}>"),
    ]
    if not attachments and not inline_image:
        headers.append(("Content-Type", f'multipart/alternative;{CRLF}\tboundary="{alt_b}"'))
        head = CRLF.join(f"{k}: {v}" for k, v in headers)
        return (
            head
            + CRLF
            + CRLF
            + "This is a multi-part message in MIME format."
            + CRLF
            + CRLF
            + inner
        )
    mixed_b = f"----=_001_NextPart{stamp}_=----mixed"
    subparts = [
        Part([("Content-Type", f'multipart/alternative;{CRLF}\tboundary="{alt_b}"')], inner)
    ]
    if inline_image:
        png = base64.b64decode(
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
        )
        subparts.append(
            Part(
                [
                    ("Content-Type", 'image/png;\r\n\tname="image001.png"'),
                    ("Content-Transfer-Encoding", "base64"),
                    ("Content-ID", f"<_Foxmail.1@{stamp}>"),
                    ("Content-Disposition", "inline"),
                ],
                b64_lines(png),
            )
        )
    for filename, data, ctype in attachments or []:
        encoded = ew(filename, charset)
        subparts.append(
            Part(
                [
                    ("Content-Type", f'{ctype};{CRLF}\tname="{encoded}"'),
                    ("Content-Transfer-Encoding", "base64"),
                    ("Content-Disposition", f'attachment;{CRLF}\tfilename="{encoded}"'),
                ],
                b64_lines(data),
            )
        )
    headers.append(("Content-Type", f'multipart/mixed;{CRLF}\tboundary="{mixed_b}"'))
    head = CRLF.join(f"{k}: {v}" for k, v in headers)
    return (
        head
        + CRLF
        + CRLF
        + "This is a multi-part message in MIME format."
        + CRLF
        + CRLF
        + multipart("mixed", mixed_b, subparts)
    )


def outlook(
    *,
    unit: str,
    subject: str,
    lines: list[str],
    seq: int,
    charset: str = "gb2312",
    attachments: list[tuple[str, bytes, str]] | None = None,
    language: str = "zh-CN",
    from_name: str | None = None,
    extra_headers: list[tuple[str, str]] | None = None,
    date: str = "Sun, 22 Nov 2026 02:55:12 +0000",
) -> str:
    name, address = SENDERS[unit]
    tag = f"{seq:02d}8a3e0c9b6f2d4e71a5c3b2d1e0f9a8b7"
    alt_b = f"_000_{tag}TH_"
    text = "\n".join(lines)
    alternative = multipart(
        "alternative",
        alt_b,
        [
            text_part(text, charset, "base64", folded_ctype=False),
            text_part(html_of(lines, charset), charset, "base64", "html", folded_ctype=False),
        ],
    )
    headers = [
        ("From", f"{ew(from_name or name, charset)} <{address}>"),
        ("To", '"inf@mailroom.test" <inf@mailroom.test>'),
        ("Subject", ew(subject, charset, chunk=14)),
        ("Thread-Topic", ew(subject, charset, chunk=14)),
        ("Thread-Index", "AQHbXK2vJ5n1wQ8e0kO3l9Qm6Yc8Aw=="),
        ("Date", date),
        ("Message-ID", f"<{tag}@EXCH01.{address.split('@')[1]}>"),
        ("Accept-Language", f"{language}, en-US"),
        ("Content-Language", language),
        ("X-MS-Has-Attach", "yes" if attachments else ""),
        ("X-MS-TNEF-Correlator", ""),
        *(extra_headers or []),
    ]
    if not attachments:
        headers += [
            ("Content-Type", f'multipart/alternative;{CRLF}\tboundary="{alt_b}"'),
            ("MIME-Version", "1.0"),
        ]
        return CRLF.join(f"{k}: {v}" for k, v in headers) + CRLF + CRLF + alternative
    mixed_b = f"_004_{tag}TH_"
    parts = [
        Part([("Content-Type", f'multipart/alternative;{CRLF}\tboundary="{alt_b}"')], alternative)
    ]
    for filename, data, ctype in attachments:
        encoded = ew(filename, charset)
        parts.append(
            Part(
                [
                    ("Content-Type", f'{ctype}; name="{encoded}"'),
                    ("Content-Description", encoded),
                    (
                        "Content-Disposition",
                        f'attachment; filename="{encoded}"; size={len(data)};{CRLF}'
                        '\tcreation-date="Sun, 22 Nov 2026 02:50:00 GMT";'
                        f'{CRLF}\tmodification-date="Sun, 22 Nov 2026 02:50:00 GMT"',
                    ),
                    ("Content-Transfer-Encoding", "base64"),
                ],
                b64_lines(data),
            )
        )
    headers += [
        ("Content-Type", f'multipart/mixed;{CRLF}\tboundary="{mixed_b}"'),
        ("MIME-Version", "1.0"),
    ]
    return (
        CRLF.join(f"{k}: {v}" for k, v in headers)
        + CRLF
        + CRLF
        + multipart("mixed", mixed_b, parts)
    )


def webmail_qq(
    *,
    unit: str,
    subject: str,
    lines: list[str],
    seq: int,
    html_only: bool = False,
    extra_headers: list[tuple[str, str]] | None = None,
) -> str:
    name, address = SENDERS[unit]
    boundary = f"----=_NextPart_5F0A6E2B_0B7C1D28_{seq:08d}"
    html = html_of(lines, "gb18030")
    parts = (
        [] if html_only else [text_part("\n".join(lines), "gb18030", "base64", folded_ctype=False)]
    )
    parts.append(text_part(html, "gb18030", "base64", "html", folded_ctype=False))
    headers = [
        ("X-QQ-FEAT", "3C+bdAhPVq8/Tbmwz0eMNcRyIwVdMRBO5LFy4FBjsq0="),
        ("X-QQ-SSF", "00000000000000F000000000000000Z"),
        ("X-HAS-ATTACH", "no"),
        ("X-QQ-BUSINESS-ORIGIN", "2"),
        ("X-Originating-IP", "127.0.0.1"),
        ("X-QQ-STYLE", ""),
        ("X-QQ-mid", f"webmail{seq}t1637545678t3172838"),
        ("From", f'"{ew(name, "gb18030")}" <{address}>'),
        ("To", '"inf" <inf@mailroom.test>'),
        ("Subject", ew(subject, "gb18030")),
        ("Mime-Version", "1.0"),
        ("Content-Type", f'multipart/alternative;{CRLF}\tboundary="{boundary}"'),
        ("Content-Transfer-Encoding", "8Bit"),
        ("Date", DATE),
        ("X-Priority", "3"),
        ("Message-ID", f"<tencent_{seq:04d}A2F3C9E1@qq.com>"),
        ("X-QQ-MIME", "TCMime 1.0 by Tencent"),
        ("X-Mailer", "QQMail 2.x"),
        ("X-QQ-Mailer", "QQMail 2.x"),
        *(extra_headers or []),
    ]
    return (
        CRLF.join(f"{k}: {v}" for k, v in headers)
        + CRLF
        + CRLF
        + multipart(
            "alternative", boundary, parts, preamble="This is a multi-part message in MIME format."
        )
    )


def coremail(
    *,
    unit: str,
    subject: str,
    lines: list[str],
    seq: int,
    charset: str = "GBK",
    cte: str = "base64",
    attachments: list[tuple[str, bytes, str]] | None = None,
    rfc2231: bool = False,
    government: bool = False,
) -> str:
    """163/126 webmail (Coremail XT5) and the Coremail-based government mail systems."""
    name, address = SENDERS[unit]
    alt_b = f"----=_Part_{seq}_1573619862.1637545678901"
    text = "\n".join(lines)
    alternative = multipart(
        "alternative",
        alt_b,
        [
            text_part(text, charset, cte, folded_ctype=False),
            text_part(html_of(lines, charset), charset, cte, "html", folded_ctype=False),
        ],
    )
    mailer = (
        "Coremail Webmail Server Version XT5.0.13 build 20210622(a5b8f2ec) Copyright (c) "
        "2002-2026 www.mailtech.cn" + (" gov" if government else " 163com")
    )
    headers = [
        ("Date", DATE),
        ("From", f'"{ew(name, charset)}" <{address}>'),
        ("To", "inf@mailroom.test"),
        ("Subject", ew(subject, charset)),
        ("X-Priority", "3"),
        ("X-Mailer", mailer),
        ("X-NTES-SC", "AL_Qu2aAv+Zt0wu5CKZYOkXn0cRhOs6W8K2vP0i2YNSP5k0hyvs3Bwe"),
        ("Content-Transfer-Encoding", "7bit"),
        ("X-Originating-IP", "[127.0.0.1]"),
        ("MIME-Version", "1.0"),
        (
            "Message-ID",
            f"<{seq:04d}c0a81e.2f0b.17d4a1b2c3d.Coremail.{address.split('@')[0]}@{address.split('@')[1]}>",
        ),
        ("X-Coremail-Locale", "zh_CN"),
        ("X-CM-TRANSID", f"_____wD3_{seq:04d}8xJhGt0AA--.12345S2"),
        ("X-CM-SenderInfo", "xolmyuxjq6ij6rwjhhfrp/1tbiFQ-2nmHqx4jfAAAAsz"),
        ("X-Coremail-Antispam", "1U5529EdanIXcx71UUUUU7vcSsGvfC2KfnxnUU=="),
    ]
    if not attachments:
        headers.append(("Content-Type", f'multipart/alternative; {CRLF}\tboundary="{alt_b}"'))
        return CRLF.join(f"{k}: {v}" for k, v in headers) + CRLF + CRLF + alternative
    mixed_b = f"----=_Part_{seq}_1573619862.1637545678900"
    parts = [
        Part([("Content-Type", f'multipart/alternative; {CRLF}\tboundary="{alt_b}"')], alternative)
    ]
    for filename, data, ctype in attachments:
        if rfc2231:
            quoted = "".join(
                chr(b) if (chr(b).isalnum() and b < 128) or chr(b) in ".-_" else f"%{b:02X}"
                for b in filename.encode(_codec(charset))
            )
            half = len(quoted) // 2
            while quoted[half - 1] == "%" or quoted[half - 2] == "%":
                half += 1
            disp = (
                f"attachment; {CRLF}\tfilename*0*={charset}''{quoted[:half]};{CRLF}"
                f"\tfilename*1*={quoted[half:]}"
            )
            ctype_line = f"{ctype}; {CRLF}\tname*={charset}''{quoted}"
        else:
            disp = f'attachment; filename="{ew(filename, charset)}"'
            ctype_line = f'{ctype}; name="{ew(filename, charset)}"'
        parts.append(
            Part(
                [
                    ("Content-Type", ctype_line),
                    ("Content-Transfer-Encoding", "base64"),
                    ("Content-Disposition", disp),
                ],
                b64_lines(data),
            )
        )
    headers.append(("Content-Type", f'multipart/mixed; {CRLF}\tboundary="{mixed_b}"'))
    return (
        CRLF.join(f"{k}: {v}" for k, v in headers)
        + CRLF
        + CRLF
        + multipart("mixed", mixed_b, parts)
    )


def wps(
    *,
    unit: str,
    subject: str,
    lines: list[str],
    seq: int,
    attachments: list[tuple[str, bytes, str]],
) -> str:
    """WPS Office's "send as mail attachment": UTF-8, base64 text, the .wps as octet-stream."""
    name, address = SENDERS[unit]
    boundary = f"=====001_Dragon{seq:06d}8130_====="
    parts = [text_part("\n".join(lines), "utf-8", "base64", folded_ctype=False)]
    for filename, data, ctype in attachments:
        encoded = ew(filename, "utf-8")
        parts.append(
            Part(
                [
                    ("Content-Type", f'{ctype};{CRLF}\tname="{encoded}"'),
                    ("Content-Transfer-Encoding", "base64"),
                    ("Content-Disposition", f'attachment;{CRLF}\tfilename="{encoded}"'),
                ],
                b64_lines(data),
            )
        )
    headers = [
        ("Date", DATE),
        ("From", f'"{ew(name, "utf-8")}" <{address}>'),
        ("To", '"inf" <inf@mailroom.test>'),
        ("Subject", ew(subject, "utf-8")),
        ("Message-ID", f"<{seq:04d}.wps.2026112210551@{address.split('@')[1]}>"),
        ("X-mailer", "WPS Office 2019 [cn] 11.1.0.12313"),
        ("Mime-Version", "1.0"),
        ("Content-Type", f'multipart/mixed;{CRLF}\tboundary="{boundary}"'),
    ]
    return (
        CRLF.join(f"{k}: {v}" for k, v in headers)
        + CRLF
        + CRLF
        + multipart(
            "mixed", boundary, parts, preamble="This is a multi-part message in MIME format."
        )
    )


def thunderbird(
    *,
    unit: str,
    subject: str,
    lines: list[str],
    seq: int,
    attachments: list[tuple[str, bytes, str]],
) -> str:
    """Thunderbird 115: UTF-8 format=flowed, RFC 2231 file names (filename*=UTF-8'')."""
    name, address = SENDERS[unit]
    boundary = f"------------{seq:02d}Vx9ZkQ0uY1pLm3nB7cD"
    parts = [
        Part(
            [
                ("Content-Type", "text/plain; charset=UTF-8; format=flowed"),
                ("Content-Transfer-Encoding", "8bit"),
            ],
            CRLF.join(lines) + CRLF,
        )
    ]
    for filename, data, ctype in attachments:
        quoted = "".join(
            chr(b) if (chr(b).isalnum() and b < 128) or chr(b) in ".-_" else f"%{b:02X}"
            for b in filename.encode("utf-8")
        )
        parts.append(
            Part(
                [
                    ("Content-Type", f"{ctype};{CRLF} name*=UTF-8''{quoted}"),
                    ("Content-Disposition", f"attachment;{CRLF} filename*=UTF-8''{quoted}"),
                    ("Content-Transfer-Encoding", "base64"),
                ],
                b64_lines(data),
            )
        )
    headers = [
        ("Message-ID", f"<{seq:02d}a1b2c3-4d5e-6f70-8192-a3b4c5d6e7f8@{address.split('@')[1]}>"),
        ("Date", DATE),
        ("MIME-Version", "1.0"),
        ("User-Agent", "Mozilla Thunderbird"),
        ("Content-Language", "zh-CN"),
        ("To", "inf@mailroom.test"),
        ("From", f"{ew(name, 'UTF-8')} <{address}>"),
        ("Subject", ew(subject, "UTF-8", chunk=12)),
        ("Content-Type", f'multipart/mixed; boundary="{boundary}"'),
    ]
    return (
        CRLF.join(f"{k}: {v}" for k, v in headers)
        + CRLF
        + CRLF
        + multipart(
            "mixed", boundary, parts, preamble="This is a multi-part message in MIME format."
        )
    )


def iphone(*, unit: str, subject: str, lines: list[str], seq: int) -> str:
    name, address = SENDERS[unit]
    part = text_part("\n".join(lines), "utf-8", "quoted-printable", folded_ctype=False)
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Transfer-Encoding", "quoted-printable"),
        ("From", f"{ew(name, 'utf-8')} <{address}>"),
        ("Mime-Version", "1.0 (1.0)"),
        ("Date", DATE),
        ("Subject", ew(subject, "utf-8")),
        ("Message-Id", f"<{seq:02d}F3E2D1C0-B9A8-4766-9F5E-4D3C2B1A0F9E@{address.split('@')[1]}>"),
        ("To", "inf@mailroom.test"),
        ("X-Mailer", "iPhone Mail (20H115)"),
    ]
    return CRLF.join(f"{k}: {v}" for k, v in headers) + CRLF + CRLF + part.body


# --- Word files, hostile and broken -------------------------------------------------------


def zip_replace(source: bytes, name: str, content: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(source)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = content if info.filename == name else src.read(info)
            fresh = zipfile.ZipInfo(info.filename, date_time=(2026, 11, 22, 10, 50, 0))
            fresh.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(fresh, data)
    return out.getvalue()


def hostile_word_files() -> dict[str, bytes]:
    docx = (WORD / "item.docx").read_bytes()
    doc = (WORD / "item.doc").read_bytes()
    w = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    laughs = (
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
        + "".join(
            f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
            for i in range(1, 10)
        )
        + f"]>\n<w:document {w}><w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>"
    )
    xxe = (
        '<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
        f"<w:document {w}><w:body><w:p><w:r><w:t>&x;</w:t></w:r></w:p></w:body></w:document>"
    )
    # 64 MiB of spaces inside a valid element: compresses to ~64 KiB.
    bomb = (
        f"<w:document {w}><w:body><w:p><w:r><w:t>".encode()
        + b" " * (64 * 1024 * 1024)
        + b"</w:t></w:r></w:p></w:body></w:document>"
    )
    flagged = bytearray(doc)
    # A password-protected .doc keeps its FIB readable and sets fEncrypted (bit 8 at 0x0A) in
    # the WordDocument stream, which LibreOffice writes as the first sector after the header.
    start = bytes(flagged).find(b"\xec\xa5")
    flags = struct.unpack_from("<H", flagged, start + 0x0A)[0] | 0x0100
    struct.pack_into("<H", flagged, start + 0x0A, flags)
    return {
        "billion_laughs.docx": zip_replace(docx, "word/document.xml", laughs.encode()),
        "xxe.docx": zip_replace(docx, "word/document.xml", xxe.encode()),
        "zip_bomb.docx": zip_replace(docx, "word/document.xml", bomb),
        "encrypted_flag.doc": bytes(flagged),
        "broken.doc": doc[:3000],
    }


def tnef(attachments: list[tuple[str, bytes]]) -> bytes:
    """A winmail.dat as Outlook writes it ([MS-OXTNEF]): message attributes, then per
    attachment its rendering, title, data and MAPI properties (the long file name)."""

    def attr(level: int, attr_id: int, data: bytes) -> bytes:
        checksum = sum(data) & 0xFFFF
        return struct.pack("<BII", level, attr_id, len(data)) + data + struct.pack("<H", checksum)

    out = struct.pack("<IH", 0x223E9F78, 0x0001)
    out += attr(1, 0x00089006, struct.pack("<I", 0x00010000))  # attTnefVersion
    out += attr(1, 0x00069007, struct.pack("<II", 936, 0))  # attOemCodepage
    out += attr(1, 0x00078008, b"IPM.Microsoft Mail.Note\x00")  # attMessageClass
    for name, data in attachments:
        out += attr(2, 0x00069002, struct.pack("<HIIHHI", 1, 0xFFFFFFFF, 0, 1, 1, 0))
        out += attr(2, 0x00018010, name.encode("gbk") + b"\x00")
        out += attr(2, 0x0006800F, data)
        long_name = (name + "\x00").encode("utf-16-le")
        props = struct.pack("<I", 1) + struct.pack("<HH", 0x001F, 0x3707)
        props += struct.pack("<II", 1, len(long_name)) + long_name + b"\x00" * (-len(long_name) % 4)
        out += attr(2, 0x00069005, props)
    return out


# --- the fixtures -------------------------------------------------------------------------

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
DOC = "application/msword"


def build() -> None:
    MAIL.mkdir(exist_ok=True)
    for old in MAIL.glob("*.eml"):
        old.unlink()
    hostile = hostile_word_files()
    for name, data in hostile.items():
        (WORD / name).write_bytes(data)
    item_docx = (WORD / "item.docx").read_bytes()
    item_doc = (WORD / "item.doc").read_bytes()
    item_wps = (WORD / "item.wps").read_bytes()
    long_docx = (WORD / "long.docx").read_bytes()
    long_doc = (WORD / "long.doc").read_bytes()
    th_title = "天河区深化“放管服”改革取得新成效"
    th = body_lines(ITEM_TH, TH_SIGNOFF)
    seq = iter(range(1, 1000))

    def fx(
        name: str, client: str, sender: str | None = "liming@th.gz.test", **kw: object
    ) -> Fixture:
        return Fixture(name=name, client=client, sender=sender, **kw)  # type: ignore[arg-type]

    # Valid items from each client.
    write(
        fx("foxmail_gbk_valid", "Foxmail 7.2", title=th_title),
        foxmail(unit="TH", subject=f"【天河区】{th_title}", lines=th, seq=next(seq)),
    )
    write(
        fx(
            "foxmail_docx",
            "Foxmail 7.2",
            title=th_title,
            attachment="天河区放管服改革详细材料.docx",
            attachment_chars=459,
        ),
        foxmail(
            unit="TH",
            subject=f"【天河区】{th_title}",
            lines=th,
            seq=next(seq),
            attachments=[("天河区放管服改革详细材料.docx", item_docx, DOCX)],
        ),
    )
    write(
        fx(
            "outlook_gb2312_doc",
            "Outlook 2016 zh-CN",
            title=th_title,
            attachment="详细材料.doc",
            attachment_chars=459,
        ),
        outlook(
            unit="TH",
            subject=f"【天河区】{th_title}",
            lines=th,
            seq=next(seq),
            attachments=[("详细材料.doc", item_doc, DOC)],
        ),
    )
    hd_title = "花都区推进农村人居环境整治见成效"
    write(
        fx(
            "wps_utf8_wps",
            "WPS Office 2019",
            sender="tangxiuying@hd.gz.test",
            title=hd_title,
            attachment="农村人居环境整治.wps",
            attachment_chars=244,
        ),
        wps(
            unit="HD",
            subject=f"【花都区】{hd_title}",
            lines=body_lines(ITEM_HD, HD_SIGNOFF),
            seq=next(seq),
            attachments=[("农村人居环境整治.wps", item_wps, "application/octet-stream")],
        ),
    )
    hz_title = "海珠区加快推进城市更新"
    write(
        fx(
            "qq_gb18030_compact_signoff",
            "QQ Mail webmail",
            sender="xuhaiyan@hz.gz.test",
            title=hz_title,
        ),
        webmail_qq(
            unit="HZ",
            subject=f"【海珠区】{hz_title}",
            seq=next(seq),
            lines=[ITEM_HZ, "", "（海珠区政府办公室 徐海燕 电话：13653949184 2026年11月22日）"],
        ),
    )
    write(
        fx(
            "qq_html_only",
            "QQ Mail webmail (HTML only)",
            sender="xuhaiyan@hz.gz.test",
            title=hz_title,
        ),
        webmail_qq(
            unit="HZ",
            subject=f"【海珠区】{hz_title}",
            seq=next(seq),
            html_only=True,
            lines=[ITEM_HZ, "", *HZ_SIGNOFF],
        ),
    )
    py_title = "番禺区扎实做好冬季森林防火工作"
    write(
        fx(
            "netease163_gbk_chinese_date",
            "163 webmail (Coremail XT5)",
            sender="zhengweiguang@py.gz.test",
            title=py_title,
        ),
        coremail(
            unit="PY",
            subject=f"【番禺区】{py_title}",
            seq=next(seq),
            lines=[ITEM_PY, "", *PY_SIGNOFF[:3], "日期：二〇二六年十一月二十二日"],
        ),
    )
    write(
        fx("coremail_gov_utf8_qp", "Coremail government mail", title=th_title),
        coremail(
            unit="TH",
            subject=f"【天河区】{th_title}",
            seq=next(seq),
            charset="UTF-8",
            cte="quoted-printable",
            government=True,
            lines=[ITEM_TH, "", *TH_SIGNOFF[:3], "日期：2026-11-22"],
        ),
    )
    write(
        fx(
            "coremail_rfc2231_gbk_name",
            "163 webmail (Coremail XT5)",
            title=th_title,
            attachment="天河区放管服改革详细材料.docx",
            attachment_chars=459,
        ),
        coremail(
            unit="TH",
            subject=f"【天河区】{th_title}",
            seq=next(seq),
            lines=th,
            rfc2231=True,
            attachments=[("天河区放管服改革详细材料.docx", item_docx, DOCX)],
        ),
    )
    write(
        fx(
            "thunderbird_rfc2231_utf8",
            "Thunderbird 115",
            title=th_title,
            attachment="天河区放管服改革详细材料.docx",
            attachment_chars=459,
        ),
        thunderbird(
            unit="TH",
            subject=f"【天河区】{th_title}",
            lines=th,
            seq=next(seq),
            attachments=[("天河区放管服改革详细材料.docx", item_docx, DOCX)],
        ),
    )
    yx_title_trad = "越秀區深入開展城市環境綜合整治"
    write(
        fx(
            "outlook_big5_traditional",
            "Outlook 2016 zh-TW",
            sender="wangfang@yx.gz.test",
            title=yx_title_trad,
        ),
        outlook(
            unit="YX",
            subject=f"【越秀區】{yx_title_trad}",
            seq=next(seq),
            charset="big5",
            language="zh-TW",
            from_name="越秀區",
            lines=[
                ITEM_YX_TRAD,
                "",
                "作者單位：越秀區政府辦公室",
                "姓名：王芳",
                "聯繫電話：13593519892",
                "日期：2026年11月22日",
            ],
        ),
    )
    write(
        fx("iphone_utf8_footer", "iPhone Mail", title=th_title),
        iphone(
            unit="TH",
            subject=f"【天河区】{th_title}",
            seq=next(seq),
            lines=[ITEM_TH, "", *TH_SIGNOFF[:3], "日期：2026.11.22", "", "发自我的iPhone"],
        ),
    )
    write(
        fx(
            "foxmail_quoted_original",
            "Foxmail 7.2",
            title=th_title,
            note="the quoted original below the sign-off is not counted",
        ),
        foxmail(
            unit="TH",
            subject=f"【天河区】{th_title}",
            seq=next(seq),
            html=False,
            lines=[
                *th,
                "",
                "",
                "liming@th.gz.test",
                "",
                "------------------ 原始邮件 ------------------",
                '发件人: "inf"<inf@mailroom.test>;',
                "发送时间: 2026年11月21日(星期六) 下午5:02",
                "主题: 退稿：天河区深化改革",
                "",
                ITEM_TH * 3,
            ],
        ),
    )
    write(
        fx("signature_below_dashes", "Foxmail 7.2", title=th_title),
        foxmail(
            unit="TH",
            subject=f"【天河区】{th_title}",
            seq=next(seq),
            lines=[
                *th,
                "",
                "-- ",
                "天河区人民政府办公室 信息科",
                "地址：广州市天河区天府路1号",
                "电话：020-38620000",
            ],
        ),
    )
    write(
        fx("netease_quoted_reply_163", "163 webmail (Coremail XT5)", title=th_title),
        coremail(
            unit="TH",
            subject=f"Re:【天河区】{th_title}",
            seq=next(seq),
            lines=[
                *th,
                "",
                '在 2026-11-21 17:02:11，"inf" <inf@mailroom.test> 写道：',
                "> 退稿：正文超过 450 字上限",
                "> " + ITEM_TH,
            ],
        ),
    )
    write(
        fx(
            "gb2312_label_gbk_only_chars",
            "Foxmail 7.2",
            title="天河区学习朱镕基同志论述",
            note="镕 and 堃 are GBK-only: a GB2312 decoder would lose them",
        ),
        foxmail(
            unit="TH",
            subject="【天河区】天河区学习朱镕基同志论述",
            seq=next(seq),
            charset="GB2312",
            lines=[
                ITEM_GBK_ONLY,
                "",
                "作者单位：天河区政府办公室",
                "姓名：王堃",
                "联系电话：020-38620000",
                "日期：2026年11月22日",
            ],
        ),
    )
    write(
        fx("compact_signoff_halfwidth", "Foxmail 7.2", title=th_title),
        foxmail(
            unit="TH",
            subject=f"[天河区]{th_title}",
            seq=next(seq),
            lines=[ITEM_TH, "", "(天河区政府办公室 李明 电话:020-38620000 2026-11-22)"],
        ),
    )
    write(
        fx("labels_any_order_spaced", "Outlook 2016 zh-CN", title=th_title),
        outlook(
            unit="TH",
            subject=f"（天河区）{th_title}",
            seq=next(seq),
            lines=[
                ITEM_TH,
                "",
                "日　　期：2026年11月22日",
                "联系电话：138 0013 8000",
                "",
                "姓　　名：李明",
                "作者单位：天河区政府办公室",
            ],
        ),
    )
    write(
        fx(
            "phone_with_extension",
            "163 webmail (Coremail XT5)",
            sender="zhengweiguang@py.gz.test",
            title=py_title,
        ),
        coremail(
            unit="PY",
            subject=f"【番禺区】{py_title}",
            seq=next(seq),
            lines=body_lines(ITEM_PY, PY_SIGNOFF),
        ),
    )
    write(
        fx("revision_bracket", "Foxmail 7.2", title=th_title, markers=["revision"]),
        foxmail(unit="TH", subject=f"【天河区】【修改稿】{th_title}", lines=th, seq=next(seq)),
    )
    write(
        fx("revision_plain_suffix", "Outlook 2016 zh-CN", title=th_title, markers=["revision"]),
        outlook(unit="TH", subject=f"【天河区】{th_title}（修改稿）", lines=th, seq=next(seq)),
    )
    write(
        fx(
            "revision_correction_prefix",
            "QQ Mail webmail",
            sender="xuhaiyan@hz.gz.test",
            title=hz_title,
            markers=["revision"],
        ),
        webmail_qq(
            unit="HZ",
            subject=f"【海珠区】更正：{hz_title}",
            seq=next(seq),
            lines=body_lines(ITEM_HZ, HZ_SIGNOFF),
        ),
    )
    write(
        fx(
            "solicited_with_code",
            "Foxmail 7.2",
            title=th_title,
            markers=["solicited", "solicited_subject", "solicitation:YG-2026-07"],
        ),
        foxmail(
            unit="TH", subject=f"【天河区】【约稿:YG-2026-07】{th_title}", lines=th, seq=next(seq)
        ),
    )
    write(
        fx("inline_image_allowed", "Foxmail 7.2", title=th_title),
        foxmail(
            unit="TH", subject=f"【天河区】{th_title}", lines=th, seq=next(seq), inline_image=True
        ),
    )
    write(
        fx(
            "outlook_tnef_docx",
            "Outlook 2016 zh-CN (Rich Text, winmail.dat)",
            title=th_title,
            attachment="天河区详细材料.docx",
            attachment_chars=459,
        ),
        outlook(
            unit="TH",
            subject=f"【天河区】{th_title}",
            lines=th,
            seq=next(seq),
            attachments=[
                ("winmail.dat", tnef([("天河区详细材料.docx", item_docx)]), "application/ms-tnef")
            ],
        ),
    )
    write(
        fx(
            "path_trick_unix_name",
            "Foxmail 7.2",
            title=th_title,
            attachment="passwd.docx",
            attachment_chars=459,
        ),
        foxmail(
            unit="TH",
            subject=f"【天河区】{th_title}",
            lines=th,
            seq=next(seq),
            attachments=[("../../etc/passwd.docx", item_docx, DOCX)],
        ),
    )
    write(
        fx(
            "path_trick_windows_name",
            "Outlook 2016 zh-CN",
            title=th_title,
            attachment="y.docx",
            attachment_chars=459,
        ),
        outlook(
            unit="TH",
            subject=f"【天河区】{th_title}",
            lines=th,
            seq=next(seq),
            attachments=[("C:\\x\\y.docx", item_docx, DOCX)],
        ),
    )
    write(
        fx(
            "docx_sent_as_octet_stream",
            "163 webmail (Coremail XT5)",
            title=th_title,
            attachment="材料",
            attachment_chars=459,
            note="no extension and a generic type: the bytes say .docx",
        ),
        coremail(
            unit="TH",
            subject=f"【天河区】{th_title}",
            seq=next(seq),
            lines=th,
            attachments=[("材料", item_docx, "application/octet-stream")],
        ),
    )
    write(
        fx(
            "leave_policy_title_not_vacation",
            "Foxmail 7.2",
            title="天河区落实职工带薪休假制度",
            note="休假 in a marked title is an item, not an out-of-office reply",
        ),
        foxmail(unit="TH", subject="【天河区】天河区落实职工带薪休假制度", lines=th, seq=next(seq)),
    )

    # Warnings (filed).
    write(
        fx("from_name_mismatch", "Foxmail 7.2", title=th_title, warnings=["from_name_mismatch"]),
        foxmail(
            unit="TH", subject=f"【天河区】{th_title}", lines=th, seq=next(seq), from_name="李明"
        ),
    )
    write(
        fx("clock_skew", "Foxmail 7.2", title=th_title, warnings=["clock_skew"]),
        foxmail(
            unit="TH",
            subject=f"【天河区】{th_title}",
            lines=th,
            seq=next(seq),
            date="Sun, 22 Nov 2026 08:41:00 +0800",
        ),
    )
    write(
        fx("late_report", "Foxmail 7.2", title=th_title, warnings=["late_report"]),
        foxmail(
            unit="TH",
            subject=f"【天河区】{th_title}",
            seq=next(seq),
            lines=body_lines(
                ITEM_TH, signoff("天河区政府办公室", "李明", "020-38620000", "2026年11月16日")
            ),
        ),
    )

    # Charset traps.
    raw = foxmail(
        unit="TH",
        subject=f"【天河区】{th_title}",
        lines=th,
        seq=next(seq),
        charset="GBK",
        html=False,
    )
    write(
        fx("x_gbk_label", "Foxmail 7.2 (x-gbk label)", title=th_title),
        raw.replace('charset="GBK"', 'charset="x-gbk"').replace("=?GBK?", "=?x-gbk?"),
    )
    gbk_body = "\n".join(th).replace("\n", CRLF).encode("gbk")
    write(
        fx("utf8_label_gbk_bytes", "mislabelled (UTF-8 label, GBK bytes)", title=th_title),
        (
            "Date: "
            + DATE
            + CRLF
            + f"From: {ew('天河区', 'gbk')} <liming@th.gz.test>"
            + CRLF
            + "To: inf@mailroom.test"
            + CRLF
            + f"Subject: {ew('【天河区】' + th_title, 'gbk')}"
            + CRLF
            + "Message-ID: <mislabel-1@th.gz.test>"
            + CRLF
            + "MIME-Version: 1.0"
            + CRLF
            + 'Content-Type: text/plain; charset="utf-8"'
            + CRLF
            + "Content-Transfer-Encoding: 8bit"
            + CRLF
            + CRLF
        ).encode("ascii")
        + gbk_body
        + CRLF.encode(),
    )
    write(
        fx("no_charset_raw_gbk_headers", "unlabelled 8-bit GBK, raw 8-bit headers", title=th_title),
        ("Date: " + DATE + CRLF).encode()
        + "From: 天河区 <liming@th.gz.test>".encode("gbk")
        + CRLF.encode()
        + b"To: inf@mailroom.test"
        + CRLF.encode()
        + f"Subject: 【天河区】{th_title}".encode("gbk")
        + CRLF.encode()
        + b"Message-ID: <raw-gbk-1@th.gz.test>\r\nMIME-Version: 1.0\r\n"
        + b"Content-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + gbk_body
        + CRLF.encode(),
    )
    write(
        fx(
            "big5_raw_headers",
            "unlabelled 8-bit Big5 headers, Big5 body",
            sender="wangfang@yx.gz.test",
            title=yx_title_trad,
        ),
        ("Date: " + DATE + CRLF).encode()
        + "From: 越秀區 <wangfang@yx.gz.test>".encode("big5")
        + CRLF.encode()
        + b"To: inf@mailroom.test\r\n"
        + f"Subject: 【越秀區】{yx_title_trad}".encode("big5")
        + CRLF.encode()
        + b"Message-ID: <raw-big5-1@yx.gz.test>\r\nMIME-Version: 1.0\r\n"
        + b"Content-Type: text/plain; charset=big5\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + "\r\n".join(
            [
                ITEM_YX_TRAD,
                "",
                "作者單位：越秀區政府辦公室",
                "姓名：王芳",
                "聯繫電話：13593519892",
                "日期：2026年11月22日",
            ]
        ).encode("big5hkscs")
        + CRLF.encode(),
    )

    # Exactly one refusal code each (SPEC §3.3, §3.4, §10).
    def refused(
        name: str,
        code: str,
        raw: str | bytes,
        sender: str | None = "liming@th.gz.test",
        **kw: object,
    ) -> None:
        write(fx(name, kw.pop("client", "Foxmail 7.2"), sender=sender, problems=[code], **kw), raw)  # type: ignore[arg-type]

    refused(
        "missing_mark",
        "missing_mark",
        foxmail(unit="TH", subject=th_title, lines=th, seq=next(seq)),
    )
    refused(
        "wrong_mark",
        "missing_mark",
        foxmail(unit="TH", subject=f"【越秀区】{th_title}", lines=th, seq=next(seq)),
    )
    refused(
        "missing_title",
        "missing_title",
        foxmail(unit="TH", subject="【天河区】", lines=th, seq=next(seq)),
    )
    refused(
        "missing_body",
        "missing_body",
        foxmail(unit="TH", subject=f"【天河区】{th_title}", lines=TH_SIGNOFF, seq=next(seq)),
    )
    refused(
        "missing_unit",
        "missing_unit",
        foxmail(
            unit="TH",
            subject=f"【天河区】{th_title}",
            seq=next(seq),
            lines=[ITEM_TH, "", *TH_SIGNOFF[1:]],
        ),
    )
    refused(
        "missing_author",
        "missing_author",
        outlook(
            unit="TH",
            subject=f"【天河区】{th_title}",
            seq=next(seq),
            lines=[ITEM_TH, "", TH_SIGNOFF[0], *TH_SIGNOFF[2:]],
        ),
        client="Outlook 2016 zh-CN",
    )
    refused(
        "missing_phone",
        "missing_phone",
        foxmail(
            unit="TH",
            subject=f"【天河区】{th_title}",
            seq=next(seq),
            lines=[ITEM_TH, "", *TH_SIGNOFF[:2], TH_SIGNOFF[3]],
        ),
    )
    refused(
        "bad_phone",
        "bad_phone",
        foxmail(
            unit="TH",
            subject=f"【天河区】{th_title}",
            seq=next(seq),
            lines=body_lines(ITEM_TH, signoff("天河区政府办公室", "李明", "3862000")),
        ),
    )
    refused(
        "bad_phone_landline_without_area_code",
        "bad_phone",
        coremail(
            unit="TH",
            subject=f"【天河区】{th_title}",
            seq=next(seq),
            lines=body_lines(ITEM_TH, signoff("天河区政府办公室", "李明", "38620000")),
        ),
        client="163 webmail (Coremail XT5)",
    )
    refused(
        "missing_date",
        "missing_date",
        foxmail(
            unit="TH",
            subject=f"【天河区】{th_title}",
            seq=next(seq),
            lines=[ITEM_TH, "", *TH_SIGNOFF[:3]],
        ),
    )
    refused(
        "bad_date",
        "bad_date",
        foxmail(
            unit="TH",
            subject=f"【天河区】{th_title}",
            seq=next(seq),
            lines=body_lines(
                ITEM_TH, signoff("天河区政府办公室", "李明", "020-38620000", "2026年13月32日")
            ),
        ),
    )
    refused(
        "bad_date_words",
        "bad_date",
        outlook(
            unit="TH",
            subject=f"【天河区】{th_title}",
            seq=next(seq),
            lines=body_lines(
                ITEM_TH, signoff("天河区政府办公室", "李明", "020-38620000", "二〇二六年十三月五日")
            ),
        ),
        client="Outlook 2016 zh-CN",
    )
    long_item = ITEM_TH + ITEM_HZ + ITEM_PY + ITEM_HD  # 497 字
    refused(
        "body_too_long",
        "body_too_long",
        foxmail(
            unit="TH",
            subject=f"【天河区】{th_title}",
            seq=next(seq),
            lines=body_lines(long_item, TH_SIGNOFF),
        ),
    )
    refused(
        "attachment_too_long_docx",
        "attachment_too_long",
        foxmail(
            unit="TH",
            subject=f"【天河区】{th_title}",
            lines=th,
            seq=next(seq),
            attachments=[("城市更新详细材料.docx", long_docx, DOCX)],
        ),
    )
    refused(
        "attachment_too_long_doc",
        "attachment_too_long",
        outlook(
            unit="TH",
            subject=f"【天河区】{th_title}",
            lines=th,
            seq=next(seq),
            attachments=[("城市更新详细材料.doc", long_doc, DOC)],
        ),
        client="Outlook 2016 zh-CN",
    )
    refused(
        "unsupported_attachment_pdf",
        "unsupported_attachment",
        foxmail(
            unit="TH",
            subject=f"【天河区】{th_title}",
            lines=th,
            seq=next(seq),
            attachments=[
                (
                    "详细材料.pdf",
                    b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n",
                    "application/pdf",
                )
            ],
        ),
    )
    refused(
        "unsupported_attachment_zip",
        "unsupported_attachment",
        coremail(
            unit="TH",
            subject=f"【天河区】{th_title}",
            seq=next(seq),
            lines=th,
            attachments=[("材料.zip", _plain_zip(), "application/zip")],
        ),
        client="163 webmail (Coremail XT5)",
    )
    refused(
        "unreadable_encrypted_docx",
        "unreadable_attachment",
        foxmail(
            unit="TH",
            subject=f"【天河区】{th_title}",
            lines=th,
            seq=next(seq),
            attachments=[("加密材料.docx", (WORD / "encrypted.docx").read_bytes(), DOCX)],
        ),
    )
    refused(
        "unreadable_encrypted_doc",
        "unreadable_attachment",
        outlook(
            unit="TH",
            subject=f"【天河区】{th_title}",
            lines=th,
            seq=next(seq),
            attachments=[("加密材料.doc", hostile["encrypted_flag.doc"], DOC)],
        ),
        client="Outlook 2016 zh-CN",
    )
    refused(
        "unreadable_broken_doc",
        "unreadable_attachment",
        foxmail(
            unit="TH",
            subject=f"【天河区】{th_title}",
            lines=th,
            seq=next(seq),
            attachments=[("损坏材料.doc", hostile["broken.doc"], DOC)],
        ),
    )
    refused(
        "zip_bomb_docx",
        "unreadable_attachment",
        foxmail(
            unit="TH",
            subject=f"【天河区】{th_title}",
            lines=th,
            seq=next(seq),
            attachments=[("详细材料.docx", hostile["zip_bomb.docx"], DOCX)],
        ),
    )
    refused(
        "billion_laughs_docx",
        "unreadable_attachment",
        foxmail(
            unit="TH",
            subject=f"【天河区】{th_title}",
            lines=th,
            seq=next(seq),
            attachments=[("详细材料.docx", hostile["billion_laughs.docx"], DOCX)],
        ),
    )
    refused(
        "external_entity_docx",
        "unreadable_attachment",
        foxmail(
            unit="TH",
            subject=f"【天河区】{th_title}",
            lines=th,
            seq=next(seq),
            attachments=[("详细材料.docx", hostile["xxe.docx"], DOCX)],
        ),
    )
    refused(
        "multiple_items_two_word_files",
        "multiple_items",
        foxmail(
            unit="TH",
            subject=f"【天河区】{th_title}",
            lines=th,
            seq=next(seq),
            attachments=[("材料一.docx", item_docx, DOCX), ("材料二.doc", item_doc, DOC)],
        ),
    )
    refused(
        "multiple_items_two_titles",
        "multiple_items",
        foxmail(
            unit="TH",
            subject=f"【天河区】{th_title}",
            seq=next(seq),
            lines=[
                ITEM_TH[:120],
                "",
                *TH_SIGNOFF,
                "",
                "【天河区】天河区开展冬季安全生产大检查",
                "天河区组织安监、消防等部门开展冬季安全生产大检查，排查隐患156处，已整改142处。",
                "",
                *TH_SIGNOFF,
            ],
        ),
    )
    refused(
        "tnef_unreadable",
        "tnef_attachment",
        outlook(
            unit="TH",
            subject=f"【天河区】{th_title}",
            lines=th,
            seq=next(seq),
            attachments=[
                ("winmail.dat", b"\x78\x9f\x3e\x22\x01\x00\x01\x06\x90", "application/ms-tnef")
            ],
        ),
        client="Outlook 2016 zh-CN (Rich Text, winmail.dat)",
    )
    undecodable = foxmail(
        unit="TH", subject=f"【天河区】{th_title}", lines=th, seq=next(seq), html=False
    )
    bad_bytes = base64.b64encode("\n".join(th).encode("gbk") + b"\xff\xfe\x80\xff").decode()
    start = (
        undecodable.index("Content-Transfer-Encoding: base64")
        + len("Content-Transfer-Encoding: base64")
        + 4
    )
    end = undecodable.index("------=_001", start)
    refused(
        "undecodable_text",
        "undecodable_text",
        undecodable[:start]
        + CRLF.join(bad_bytes[i : i + 76] for i in range(0, len(bad_bytes), 76))
        + CRLF
        + CRLF
        + undecodable[end:],
    )
    refused(
        "unknown_sender_registered_domain",
        "unknown_sender",
        foxmail(unit="TH", subject=f"【天河区】{th_title}", lines=th, seq=next(seq)).replace(
            "liming@th.gz.test", "zhaoliu@th.gz.test"
        ),
        sender=None,
    )

    # Auto-replies and bounces (ignored, never answered).
    write(
        fx("qq_auto_reply", "QQ Mail webmail (auto-reply)", ignored="auto_reply"),
        webmail_qq(
            unit="TH",
            subject="自动回复: 回执：GZ-2026-000001 天河区深化改革",
            seq=next(seq),
            lines=[
                "您好，我最近正在休假中，无法亲自回复您的邮件。我将在假期结束后，尽快给您回复。"
            ],
        ),
    )
    write(
        fx(
            "outlook_ooo_traditional",
            "Outlook 2016 zh-TW (out of office)",
            sender="wangfang@yx.gz.test",
            ignored="auto_reply",
        ),
        outlook(
            unit="YX",
            subject="自動回覆: 退稿：越秀區整治",
            seq=next(seq),
            charset="big5",
            language="zh-TW",
            from_name="越秀區",
            lines=["本人休假中，11月30日返回辦公室。"],
        ),
    )
    write(
        fx(
            "exchange_auto_submitted",
            "Outlook 2016 zh-CN (Exchange auto-reply)",
            ignored="auto_reply",
        ),
        outlook(
            unit="TH",
            subject="答复: 回执",
            seq=next(seq),
            lines=["我不在办公室。"],
            extra_headers=[("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All")],
        ),
    )
    write(
        fx("vacation_x_autoreply", "163 webmail (vacation)", ignored="auto_reply"),
        coremail(unit="TH", subject="Re: 回执", seq=next(seq), lines=["您的来信已收到。"]).replace(
            "X-Priority: 3", "X-Priority: 3\r\nX-Autoreply: yes"
        ),
    )
    write(
        fx("precedence_bulk", "mass mailing", ignored="auto_reply"),
        coremail(unit="TH", subject="通知", seq=next(seq), lines=["群发通知。"]).replace(
            "X-Priority: 3", "X-Priority: 3\r\nPrecedence: bulk"
        ),
    )
    write(
        fx("netease_bounce_cn", "163 mail system bounce (系统退信)", sender=None, ignored="bounce"),
        _dsn("postmaster@163.com", "系统退信", "Coremail", next(seq)),
    )
    write(
        fx("postfix_dsn", "Postfix bounce", sender=None, ignored="bounce"),
        _dsn(
            "MAILER-DAEMON@mx.th.gz.test",
            "Undelivered Mail Returned to Sender",
            "Postfix",
            next(seq),
        ),
    )
    write(
        fx("read_receipt_mdn", "Outlook read receipt (MDN)", ignored="auto_reply"), _mdn(next(seq))
    )

    # The unit's sign-off (审签) line, as units very often add it: between the other lines or
    # last, under each of its usual labels. It is read as the approver and breaks nothing.
    write(
        fx("approver_line_foxmail", "Foxmail 7.2", title=th_title, approver="王五"),
        foxmail(
            unit="TH",
            subject=f"【天河区】{th_title}",
            seq=next(seq),
            lines=[ITEM_TH, "", *TH_SIGNOFF[:2], "审签人：王五", *TH_SIGNOFF[2:]],
        ),
    )
    write(
        fx("approver_last_line_outlook", "Outlook 2016 zh-CN", title=th_title, approver="赵六"),
        outlook(
            unit="TH",
            subject=f"【天河区】{th_title}",
            seq=next(seq),
            lines=[*th, "签发人：赵六"],
        ),
    )
    write(
        fx(
            "approver_reviewer_label_wps",
            "WPS Office 2019",
            sender="tangxiuying@hd.gz.test",
            title=hd_title,
            approver="陈七",
        ),
        wps(
            unit="HD",
            subject=f"【花都区】{hd_title}",
            seq=next(seq),
            lines=[*body_lines(ITEM_HD, HD_SIGNOFF), "审核人： 陈七"],
            attachments=[],
        ),
    )


def _plain_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr(
            zipfile.ZipInfo("材料.txt", date_time=(2026, 11, 22, 10, 50, 0)), "详细材料".encode()
        )
    return out.getvalue()


def _dsn(sender: str, subject: str, mta: str, seq: int) -> bytes:
    boundary = f"{seq:04d}.1637545678/mx.gz.test"
    text = (
        "This is the mail system at host mx.gz.test.\r\n\r\nI'm sorry to have to inform you that "
        "your message could not\r\nbe delivered to one or more recipients.\r\n\r\n"
        "<nobody@th.gz.test>: host mx.th.gz.test said: 550 5.1.1 User unknown\r\n"
    )
    status = (
        "Reporting-MTA: dns; mx.gz.test\r\nArrival-Date: Sun, 22 Nov 2026 10:55:00 +0800\r\n\r\n"
        "Final-Recipient: rfc822; nobody@th.gz.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n"
    )
    return (
        f"Date: {DATE}\r\nFrom: {sender} ({'Mail Delivery System' if mta == 'Postfix' else '系统管理员'})\r\n"
        f"Subject: {ew(subject, 'utf-8')}\r\nTo: inf@mailroom.test\r\nAuto-Submitted: auto-replied\r\n"
        f"MIME-Version: 1.0\r\nMessage-Id: <{seq:04d}.dsn@mx.gz.test>\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary="{boundary}"\r\n\r\n'
        f"This is a MIME-encapsulated message.\r\n\r\n--{boundary}\r\nContent-Description: Notification\r\n"
        f"Content-Type: text/plain; charset=us-ascii\r\n\r\n{text}\r\n--{boundary}\r\n"
        f"Content-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n{status}\r\n"
        f"--{boundary}--\r\n"
    ).encode()


def _mdn(seq: int) -> bytes:
    boundary = f"----=_NextPart_MDN_{seq:04d}"
    return (
        f"From: {ew('天河区', 'gb2312')} <liming@th.gz.test>\r\nTo: inf@mailroom.test\r\n"
        f"Subject: {ew('已读: 回执', 'gb2312')}\r\nDate: {DATE}\r\nMessage-ID: <mdn{seq}@th.gz.test>\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=disposition-notification;\r\n"
        f'\tboundary="{boundary}"\r\n\r\n--{boundary}\r\nContent-Type: text/plain; charset="gb2312"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{b64_lines('您的邮件已被阅读。'.encode('gbk'))}\r\n\r\n"
        f"--{boundary}\r\nContent-Type: message/disposition-notification\r\n\r\n"
        f"Reporting-UA: TH-EXCH01.th.gz.test; Microsoft Exchange Server\r\n"
        f"Final-Recipient: rfc822;liming@th.gz.test\r\nDisposition: automatic-action/MDN-sent-automatically; displayed\r\n"
        f"\r\n--{boundary}--\r\n"
    ).encode("ascii")


def main() -> None:
    build()
    manifest = {
        fx.name: {k: v for k, v in fx.__dict__.items() if k != "name" and v not in (None, [], "")}
        for fx in FIXTURES
    }
    (MAIL / "MANIFEST.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    print(f"{len(FIXTURES)} fixtures written to {MAIL}")


if __name__ == "__main__":
    main()
