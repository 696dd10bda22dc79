"""Writes the desk fixtures beside this file: editors' replies as real clients build them.

Run from the repository root: `.venv/bin/python tests/data/desk/make_fixtures.py`. The reply
keys are those of items 1 and 2 under the tests' reply-key secret (`DESK_SECRET`).
"""

from __future__ import annotations

import base64
import quopri
import textwrap
from pathlib import Path

from ingest.desk import reply_key

HERE = Path(__file__).parent
DESK_SECRET = "desk-tests-reply-key-secret"
KEY1 = reply_key(DESK_SECRET, 1)
KEY2 = reply_key(DESK_SECRET, 2)
ITEM1_SUBJECT = f"【待编】GZ-2026-000001 天河区：天河区多措并举推进“放管服”改革取得新成效 [#{KEY1}]"

# The forward as editors see it quoted (its own example tags included: never to be executed).
QUOTED_FORWARD = """各位编辑：

天河区报送信息一条，已登记，请审阅。

  登记编号：GZ-2026-000001
  信息标题：天河区多措并举推进“放管服”改革取得新成效

—— 处理方法 ——
直接回复本邮件，在回复内容最前面每行写一个标签（简体、繁体均可，可加 #），例如：
  采用 穗府信息 标题
  不采用 理由
  退回 理由
"""


def b64(data: bytes) -> str:
    return "\r\n".join(textwrap.wrap(base64.b64encode(data).decode(), 76))


def qp(data: bytes) -> str:
    return quopri.encodestring(data).decode("ascii").replace("\n", "\r\n")


def rfc2047(text: str, charset: str) -> str:
    return f"=?{charset}?B?{base64.b64encode(text.encode(charset)).decode()}?="


def foxmail(
    name: str,
    *,
    from_name: str,
    from_addr: str,
    to: str,
    subject: str,
    top: str,
    msgid: str,
    in_reply_to: str | None,
    quoted: str = QUOTED_FORWARD,
) -> None:
    """Foxmail 7 on Windows: GBK, multipart/alternative, base64 plain and QP html."""
    plain = top + "\r\n\r\n------------------ 原始邮件 ------------------\r\n"
    plain += (
        '发件人: "政务信息处"<inf@mailroom.test>;\r\n发送时间: 2026年11月22日(星期日) 上午10:16\r\n'
    )
    plain += f'收件人: "{from_name}"<{from_addr}>;\r\n主题: {subject}\r\n\r\n'
    plain += quoted.replace("\n", "\r\n")
    html = "<html><body>" + "".join(f"<div>{line}</div>" for line in top.split("\r\n"))
    html += "<div><br></div><div>------------------&nbsp;原始邮件&nbsp;------------------</div>"
    html += "<blockquote>" + quoted.replace("\n", "<br>") + "</blockquote></body></html>"
    headers = [
        "Date: Sun, 22 Nov 2026 10:42:07 +0800",
        f'From: "{rfc2047(from_name, "GBK")}" <{from_addr}>',
        f"To: {to}",
        f"Subject: {rfc2047(('回复：' if in_reply_to or top == '' else '') + subject, 'GBK')}",
        "X-Priority: 3",
        "X-Has-Attach: no",
        "X-Mailer: Foxmail 7.2.25.254[cn]",
        "Mime-Version: 1.0",
        f"Message-ID: {msgid}",
    ]
    if in_reply_to:
        headers += [f"In-Reply-To: {in_reply_to}", f"References: {in_reply_to}"]
    boundary = "----=_001_NextPart547192033061_=----"
    body = [
        f'Content-Type: multipart/alternative;\r\n\tboundary="{boundary}"',
        "",
        "This is a multi-part message in MIME format.",
        "",
        f"--{boundary}",
        'Content-Type: text/plain;\r\n\tcharset="GB2312"',
        "Content-Transfer-Encoding: base64",
        "",
        b64(plain.encode("gb18030")),
        "",
        f"--{boundary}",
        'Content-Type: text/html;\r\n\tcharset="GB2312"',
        "Content-Transfer-Encoding: quoted-printable",
        "",
        qp(html.encode("gb18030")),
        "",
        f"--{boundary}--",
        "",
    ]
    (HERE / name).write_bytes("\r\n".join(headers + body).encode("ascii"))


def outlook_big5(name: str, *, top: str, msgid: str, in_reply_to: str) -> None:
    """Outlook 2016 (Traditional Chinese Windows): Big5, QP, `寄件者:` quote block."""
    quoted = (
        "________________________________\r\n"
        "寄件者: 政務信息處 <inf@mailroom.test>\r\n"
        "寄件日期: 2026年11月22日 上午 10:16\r\n"
        "收件者: 梁曉彤 <liangxiaotong@gzb.gz.test>\r\n"
        "主旨: 【待編】GZ-2026-000001 天河區多措並舉推進“放管服”改革取得新成效\r\n\r\n"
        "直接回覆本郵件，在回覆內容最前面每行寫一個標籤，例如：\r\n  採用 穗府信息 標題\r\n"
    )
    plain = top + "\r\n\r\n" + quoted
    subject = "回覆: " + ITEM1_SUBJECT
    headers = [
        f"From: =?big5?B?{base64.b64encode('梁曉彤'.encode('big5')).decode()}?= "
        "<liangxiaotong@gzb.gz.test>",
        f"To: =?big5?B?{base64.b64encode('編輯台'.encode('big5')).decode()}?= "
        f"<desk+{KEY1}@mailroom.test>",
        # Outlook folds a long Subject into several encoded-words.
        "Subject: "
        + "\r\n ".join(rfc2047(subject[i : i + 20], "utf-8") for i in range(0, len(subject), 20)),
        "Thread-Topic: " + rfc2047(ITEM1_SUBJECT[:30], "utf-8"),
        "Thread-Index: AQHW3k9x7dYb6QZ0RkSd2mF4p3mU1A==",
        "Date: Sun, 22 Nov 2026 02:51:19 +0000",
        f"Message-ID: {msgid}",
        f"References: {in_reply_to}",
        f"In-Reply-To: {in_reply_to}",
        "Accept-Language: zh-TW, en-US",
        "Content-Language: zh-TW",
        "X-MS-Has-Attach:",
        "X-MS-TNEF-Correlator:",
        "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="big5"',
        "Content-Transfer-Encoding: quoted-printable",
        "",
        qp(plain.encode("big5hkscs")),
        "",
    ]
    (HERE / name).write_bytes("\r\n".join(headers).encode("ascii"))


def webmail_163(name: str, *, top: str, msgid: str, in_reply_to: str) -> None:
    """163 webmail: UTF-8, base64 html + plain, `在 …，… 写道：` with > quotes."""
    quoted = "\n".join("> " + line for line in QUOTED_FORWARD.split("\n"))
    plain = f'{top}\n\n在 2026-11-22 10:16:30，"政务信息处" <inf@mailroom.test> 写道：\n{quoted}\n'
    html = (
        '<div style="line-height:1.7;color:#000000;font-size:14px;font-family:Arial">'
        + "".join(f"<div>{line}</div>" for line in top.split("\n"))
        + '<br><div style="position:relative;zoom:1"></div><div id="divNeteaseMailCard">'
        + '</div><br><pre><br>在 2026-11-22 10:16:30，"政务信息处" &lt;inf@mailroom.test&gt; '
        + "写道：<br>&gt; 采用 穗府信息 标题<br></pre></div>"
    )
    boundary = "----=_Part_207731_1470328517.1795316447123"
    headers = [
        f'From: "{rfc2047("何振华", "UTF-8")}" <hezhenhua@gzb.gz.test>',
        f'To: "{rfc2047("编辑台", "UTF-8")}" <desk+{KEY1}@mailroom.test>',
        f"Subject: {rfc2047('Re:' + ITEM1_SUBJECT, 'UTF-8')}",
        "Date: Sun, 22 Nov 2026 10:58:41 +0800 (CST)",
        f"Message-ID: {msgid}",
        f"In-Reply-To: {in_reply_to}",
        f"References: {in_reply_to}",
        "X-Originating-IP: [127.0.0.1]",
        "X-Mailer: Coremail Webmail Server Version XT5.0.14 build 20230109(dcb5de15)",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=UTF-8",
        "Content-Transfer-Encoding: base64",
        "",
        b64(plain.replace("\n", "\r\n").encode("utf-8")),
        f"--{boundary}",
        "Content-Type: text/html; charset=UTF-8",
        "Content-Transfer-Encoding: base64",
        "",
        b64(html.encode("utf-8")),
        f"--{boundary}--",
        "",
    ]
    (HERE / name).write_bytes("\r\n".join(headers).encode("ascii"))


def item_yuexiu() -> None:
    """A second valid item (越秀区), so tests have an item 2 for keys of another item."""
    body = (
        "越秀区推进老旧小区改造惠及居民3.2万户\r\n\r\n"
        "今年以来，越秀区以“绣花”功夫推进老旧小区微改造，完成改造项目46个，"
        "惠及居民3.2万户。一是问需于民，改造方案经居民议事会表决通过；"
        "二是补齐短板，新增电梯87台、停车位1200个；三是长效管理，引入物业服务企业19家。\r\n\r\n"
        "作者单位：越秀区人民政府办公室\r\n姓名：王芳\r\n联系电话：13593519892\r\n"
        "日期：2026年11月22日\r\n"
    )
    headers = [
        "Date: Sun, 22 Nov 2026 10:31:02 +0800",
        f'From: "{rfc2047("越秀区", "GBK")}" <wangfang@yx.gz.test>',
        'To: "inf" <inf@mailroom.test>',
        f"Subject: {rfc2047('【越秀区】越秀区推进老旧小区改造惠及居民3.2万户', 'GBK')}",
        "X-Mailer: Foxmail 7.2.25.254[cn]",
        "Mime-Version: 1.0",
        "Message-ID: <202611221031020281735@yx.gz.test>",
        'Content-Type: text/plain;\r\n\tcharset="GB2312"',
        "Content-Transfer-Encoding: base64",
        "",
        b64(body.encode("gb18030")),
        "",
    ]
    (HERE / "item_yuexiu_gbk.eml").write_bytes("\r\n".join(headers).encode("ascii"))


def main() -> None:
    item_yuexiu()
    forward_id = f"<desk.{KEY1}.7f3a9c21e4b0@mailroom.test>"
    foxmail(
        "reply_foxmail_gbk_adopt.eml",
        from_name="陈静",
        from_addr="chenjing@gzb.gz.test",
        to=f'"{rfc2047("编辑台", "GBK")}" <desk+{KEY1}@mailroom.test>',
        subject=ITEM1_SUBJECT,
        top="采用 穗府信息 标题\r\n\r\n陈静\r\n市政府办公厅新闻信息处",
        msgid="<202611221042073418821@gzb.gz.test>",
        in_reply_to=forward_id,
    )
    outlook_big5(
        "reply_outlook_big5_adopt.eml",
        top="採用 穗府信息 標題",
        msgid="<TY2PR06MB33448F0E1A9B7C2D5E6F7A8B9C0@TY2PR06MB3344.apcprd06.prod.outlook.com>",
        in_reply_to=f"<desk.{KEY1}.c4d81e0a7b25@mailroom.test>",
    )
    webmail_163(
        "reply_163_utf8_decline.eml",
        top="不采用 内容与前期信息重复",
        msgid="<4c1b9e2a.5d31.18f3c2a9b7e.Coremail.hezhenhua@gzb.gz.test>",
        in_reply_to=f"<desk.{KEY1}.1e9f0c3b5a77@mailroom.test>",
    )
    foxmail(
        "reply_foxmail_gbk_return.eml",
        from_name="陈静",
        from_addr="chenjing@gzb.gz.test",
        to=f'"{rfc2047("编辑台", "GBK")}" <desk+{KEY1}@mailroom.test>',
        subject=ITEM1_SUBJECT,
        top="#退回 需注明数据来源",
        msgid="<202611221103551129034@gzb.gz.test>",
        in_reply_to=forward_id,
    )
    foxmail(
        "new_editor_no_key.eml",
        from_name="陈静",
        from_addr="chenjing@gzb.gz.test",
        to=f'"{rfc2047("编辑台", "GBK")}" <desk@mailroom.test>',
        subject="GZ-2026-000001 天河区多措并举推进“放管服”改革取得新成效",
        top="采用 穗府信息 标题",
        msgid="<202611221110021234567@gzb.gz.test>",
        in_reply_to=None,
    )
    foxmail(
        "reply_officer_with_key.eml",
        from_name="李明",
        from_addr="liming@th.gz.test",
        to=f'"{rfc2047("编辑台", "GBK")}" <desk+{KEY1}@mailroom.test>',
        subject=ITEM1_SUBJECT,
        top="采用 穗府信息 标题",
        msgid="<202611221112093345678@th.gz.test>",
        in_reply_to=forward_id,
    )
    # The subject is item 1's forward, but the key (address, subject tag) is item 2's.
    foxmail(
        "reply_key_for_other_item.eml",
        from_name="陈静",
        from_addr="chenjing@gzb.gz.test",
        to=f'"{rfc2047("编辑台", "GBK")}" <desk+{KEY2}@mailroom.test>',
        subject=ITEM1_SUBJECT.replace(KEY1, KEY2),
        top="采用 穗府信息 标题",
        msgid="<202611221115174456789@gzb.gz.test>",
        in_reply_to=None,
    )
    foxmail(
        "reply_quoted_only.eml",
        from_name="陈静",
        from_addr="chenjing@gzb.gz.test",
        to=f'"{rfc2047("编辑台", "GBK")}" <desk+{KEY1}@mailroom.test>',
        subject=ITEM1_SUBJECT,
        top="",
        msgid="<202611221120305567890@gzb.gz.test>",
        in_reply_to=forward_id,
    )


if __name__ == "__main__":
    main()
