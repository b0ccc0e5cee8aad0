"""Approval task cards on DingTalk and WeCom: what they say, when they change, sending.

A card row (`BotCard`) is written in the same transaction as the decision that changes
what it should say (`wanted`); `flush` sends and updates cards after the commit, and the
sweep (`sweep`, run by the worker or `bedside bots sweep`) retries what failed and sends
cards for tasks created elsewhere (GraphQL, escalation). So a callback answers as soon as
its transaction commits, and a lost process loses no card.

- `facts`: what a card says (`card_key`, `task_facts`, `wanted_state`);
- `refresh`: card changes queued in the caller's transaction (`refresh_instance_cards`);
- `decisions`: a tap through the approvals service (`decide_tap`, `decide_from_card`);
- `delivery`: sending after the commit (`flush`, `flusher`, `sweep`, `after_tap`), with
  each platform's rendering in `bots.dingtalk_cards` and `bots.wecom_cards`.
"""

from bots.cards.decisions import (
    CARD_RETURN_COMMENT,
    DECISIONS,
    TapResult,
    decide_from_card,
    decide_stored_tap,
    decide_tap,
)
from bots.cards.delivery import Flusher, after_tap, flush, flusher, sweep
from bots.cards.facts import (
    GRADE_WORDS,
    INSTANCE_WORDS,
    OUTCOME_WORDS,
    PLATFORMS,
    SWEEP_BATCH,
    card_key,
    local_time,
    task_facts,
    wanted_state,
)
from bots.cards.refresh import enabled_platforms, refresh_instance_cards

__all__ = [
    "CARD_RETURN_COMMENT",
    "DECISIONS",
    "GRADE_WORDS",
    "INSTANCE_WORDS",
    "OUTCOME_WORDS",
    "PLATFORMS",
    "SWEEP_BATCH",
    "Flusher",
    "TapResult",
    "after_tap",
    "card_key",
    "decide_from_card",
    "decide_stored_tap",
    "decide_tap",
    "enabled_platforms",
    "flush",
    "flusher",
    "local_time",
    "refresh_instance_cards",
    "sweep",
    "task_facts",
    "wanted_state",
]
