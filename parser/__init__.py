"""Pure parsing: raw message bytes → decoded message → a validated Submission or Problems.

No I/O, no database, no clock: the receive time and the sender's registry entry are arguments.
"""

from parser.classify import classify
from parser.count import count_chars
from parser.decode import decode_message
from parser.types import (
    Attachment,
    DecodedMessage,
    Limits,
    Problem,
    SenderContext,
    SignOff,
    Submission,
    Verdict,
)
from parser.validate import validate

__all__ = [
    "Attachment",
    "DecodedMessage",
    "Limits",
    "Problem",
    "SenderContext",
    "SignOff",
    "Submission",
    "Verdict",
    "classify",
    "count_chars",
    "decode_message",
    "validate",
]
