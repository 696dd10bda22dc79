"""The editors' desk (SPEC §4): forwards with reply keys, and editors' commands applied safely.

A filed item is forwarded to each editor (or to `[mailboxes] desk_forward`) with a reply key
(`keys`). A command is applied only when its sender is a registered editor and the message
carries a valid key for the item, or an `Approved:` passphrase of that editor, or (with
`require_dkim`) a DKIM signature of the sender's domain that verifies (`trust`). Everything
else ends `command_refused` and changes nothing.

A reply to a forward is applied whole or not at all; in a batch each item line stands alone.
Each line goes through the verb table (`verbs`; scoring through `scoring`) as a desk action
and an audit row; the editor gets a confirmation, the unit's officer a notice (`mail`). What
belongs to one message lives in its `Reply` (`reply`), never on the shared `Desk`.
"""

from ingest.desk.desk import Desk
from ingest.desk.keys import dkim_passes, find_keys, reply_key

__all__ = ["Desk", "dkim_passes", "find_keys", "reply_key"]
