"""The order rules of a chat's tool messages, as OpenAI enforces them.

- A ``tool`` message needs ``tool_call_id``, and it must answer a call that the assistant message
  before it made and that no other tool message answered yet.
- An assistant message with ``tool_calls`` (each with an ``id``) must be answered by one ``tool``
  message per id before the next ``user`` or ``assistant`` message, and before the conversation
  ends. System and developer messages may stand between them.

A request that breaks one is a 400 ``1214`` whose ``param`` names the offending message
(``messages[2].tool_call_id``), rather than a prompt with a stray ``<tool_response>`` or a call
left hanging, which the model answers with nonsense.
"""

from __future__ import annotations

from collections.abc import Sequence

from glmserve.errors import InvalidField
from glmserve.frontends.chat.protocol import Message


def _open_calls(msg: Message, at: int) -> dict[str, int]:
    """The ids ``msg`` calls, in order; a call without an id cannot be answered."""
    ids: dict[str, int] = {}
    for j, call in enumerate(msg.tool_calls or ()):
        if not call.id:
            raise InvalidField(
                f"messages[{at}].tool_calls[{j}] has no 'id'; a tool message answers a call by it",
                param=f"messages[{at}].tool_calls[{j}].id",
            )
        ids[call.id] = j
    return ids


def _unanswered(at: int, pending: dict[str, int]) -> InvalidField:
    ids = ", ".join(pending)
    return InvalidField(
        f"an assistant message with 'tool_calls' must be followed by tool messages answering each "
        f"'tool_call_id'; messages[{at}] has no answer for: {ids}",
        param=f"messages[{at}].tool_calls",
    )


def _answer(msg: Message, at: int, caller: int | None, pending: dict[str, int], called: set[str]) -> None:
    param = f"messages[{at}].tool_call_id"
    if not msg.tool_call_id:
        raise InvalidField(f"messages[{at}] has role 'tool' and needs 'tool_call_id'", param=param)
    if msg.tool_call_id in pending:
        del pending[msg.tool_call_id]
        return
    if msg.tool_call_id in called:
        why = f"call '{msg.tool_call_id}' was answered already or belongs to an earlier turn"
    elif caller is None:
        why = "no assistant message with 'tool_calls' comes right before it"
    else:
        why = f"messages[{caller}] made no call with id '{msg.tool_call_id}'"
    raise InvalidField(
        f"messages[{at}] with role 'tool' must answer a tool call of the assistant message before it: {why}",
        param=param,
    )


def check_message_sequence(messages: Sequence[Message]) -> None:
    """Raise ``InvalidField`` (400 ``1214``) at the first message that breaks the rules above."""
    pending: dict[str, int] = {}  # ids of the calls of messages[caller] still unanswered
    called: set[str] = set()
    caller: int | None = None  # the assistant message with tool_calls the tool messages answer
    for at, msg in enumerate(messages):
        if msg.role == "tool":
            _answer(msg, at, caller, pending, called)
        elif msg.role in ("user", "assistant"):
            if pending and caller is not None:
                raise _unanswered(caller, pending)
            caller = at if msg.role == "assistant" and msg.tool_calls else None
            pending = _open_calls(msg, at) if caller is not None else {}
            called.update(pending)
    if pending and caller is not None:
        raise _unanswered(caller, pending)
