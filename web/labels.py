"""The Chinese names the console shows for the ledger's codes: the states of a message in the
intake log, and the reason and warning codes it records (refusal problems, warnings in a
receipt, why a message was ignored, quarantined or a desk command not applied). A code with no
name here is shown as it is."""

from __future__ import annotations

# Intake states (`ledger.models.Intake.state`).
STATE_TEXT = {
    "received": "已接收",
    "filed": "已登记",
    "rejected": "已退稿",
    "duplicate": "重复",
    "ignored": "不予处理",
    "quarantined": "已隔离",
    "retried": "已重新处理",
    "command": "编辑指令",
    "command_refused": "指令未执行",
}

REASON_TEXT = {
    # Refusals (the problems of a 退稿) and warnings in a receipt.
    "unknown_sender": "发件邮箱未登记",
    "inactive_sender": "信息员不在任职期间",
    "missing_mark": "单位标识缺失或不符",
    "missing_title": "主题缺少题目",
    "missing_body": "正文无信息内容",
    "body_too_long": "正文超过字数上限",
    "missing_unit": "落款缺少作者单位",
    "missing_author": "落款缺少作者姓名",
    "missing_phone": "落款缺少联系电话",
    "missing_approver": "落款缺少审签人",
    "unknown_approver": "审签人未登记",
    "approver_rank_too_low": "审签人无权审签",
    "bad_phone": "联系电话格式不正确",
    "missing_date": "落款缺少日期",
    "bad_date": "落款日期不正确",
    "multiple_items": "一封邮件报送多条信息",
    "attachment_too_long": "附件超过字数上限",
    "unsupported_attachment": "附件类型不符合要求",
    "unreadable_attachment": "附件无法读取",
    "tnef_attachment": "附件为 winmail.dat 格式",
    "undecodable_text": "邮件编码无法识别",
    "malformed_message": "邮件结构异常",
    "from_name_mismatch": "发件人名称未显示单位名称",
    "clock_skew": "发件时间与收件时间不符",
    "late_report": "报送不及时",
    "revision_without_original": "修改稿未找到原稿",
    # Set aside, ignored, a copy.
    "processing_error": "处理出错",
    "too_slow": "处理超时",
    "too_large": "邮件过大",
    "duplicate": "重复来信",
    "postmaster": "发给邮件管理员的邮件",
    "own_message": "本系统发出的邮件",
    "bounce": "退信",
    "auto_reply": "自动回复",
    "mailing_list": "邮件列表",
    "refusal_rate_limited": "未执行的指令过多，暂停答复",
    # 查询 by a unit's officer.
    "status_query": "查询",
    "status_query_stranger": "非信息员的查询",
    "status_query_rate_limited": "查询过于频繁",
    "status_query_not_own_item": "查询非本单位的信息",
    "status_query_bad_period": "查询的期间无效",
    # Desk commands not applied.
    "not_an_editor": "发件邮箱未登记为编辑",
    "dkim_failed": "未通过 DKIM 签名验证",
    "bad_passphrase": "Approved 口令不正确",
    "passphrase_locked": "口令输错次数过多",
    "conflicting_keys": "回复标识相互矛盾",
    "no_commands": "未找到标签",
    "no_reply_key": "缺少回复标识",
    "bad_reply_key": "回复标识无效",
    "key_for_other_item": "回复标识与稿件不符",
    "unknown_tag": "无法识别的标签",
    "missing_tag": "未写标签",
    "not_a_command": "不是指令",
    "no_item": "未指明稿件",
    "unknown_item": "没有此登记编号",
    "item_not_current": "稿件已被取代或撤回",
    "missing_reason": "未写明理由",
    "already_recorded": "已登记过同一标签",
    "nothing_to_undo": "没有可撤销的标签",
    "unknown_publication": "没有此刊物",
    "unknown_grade": "刊物的信息类别不正确",
    "unknown_bonus_level": "没有此加分项",
    "unknown_deduction": "没有此扣分项",
    "unknown_unit_bonus": "没有此单位加分项",
    "unknown_unit": "没有此单位",
    "requires_adoption": "须在采用后登记",
    "no_clue_rule": "不设信息线索分",
    "scoring_unavailable": "计分功能未启用",
    "reply_not_applied_whole": "整封回复均未执行",
}


def state_text(code: str) -> str:
    return STATE_TEXT.get(code, code)


def reason_text(code: str) -> str:
    return REASON_TEXT.get(code, code)
