"""Telling the alarm topic that the removal guard blocked a target (docs/dag-awareness.md#blocked-notification).

An alarm says only that something is blocked; this message says what, how much, and the exact
event that lets the run through, so the operator need not read logs to decide. It carries counts
and the most affected tags only: no secret (none is ever handed to it) and no pair list.
"""

import os
import shlex
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any, Protocol

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from dagsync import SERVICE
from dagsync.core.guard import RULE_MEANING, GuardRule
from dagsync.core.models import TagMap, count_pairs

logger = Logger(service=SERVICE, child=True)

FORCE_EVENT = '{"force": true}'
TOP_TAGS = 10
# SNS limits a subject to printable ASCII under 100 characters on one line, and a message to
# 256 KB. Every part of the message is bounded (ten tags of at most 127 characters, one target
# name, the stack name) except the tally, which is cut to this length.
MAX_SUBJECT_CHARS = 99
MAX_TALLY_CHARS = 1_000


class SnsPublisher(Protocol):
    """The one call of a boto3 SNS client this module makes."""

    def publish(self, *, TopicArn: str, Subject: str, Message: str) -> Any: ...  # noqa: N803  (boto3's names)


class BlockedNotifier:
    """One message to the alarm topic per blocked target and run; build one per run.

    With no topic (`topic_arn` None) notifications are off and nothing is sent. A publish that
    fails logs a warning and never fails the run: the `Blocked` metric and alarm still say it.
    """

    def __init__(
        self, sns: SnsPublisher, topic_arn: str | None, *, environ: Mapping[str, str] = os.environ
    ) -> None:
        self._sns = sns
        self._topic_arn = topic_arn
        self._function_name = environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self._region = environ.get("AWS_REGION")
        self._notified: set[str] = set()
        self._lock = threading.Lock()

    def blocked(
        self,
        target: str,
        *,
        rule: GuardRule,
        unregister: TagMap,
        previous_pairs: int,
        tally: str,
        deployment: str,
    ) -> None:
        """Publish what the guard held back on `target`; a second call for the same target does nothing.

        `tally` is the guard's own account of the numbers, as the run's result states it.
        """
        if self._topic_arn is None:
            return
        with self._lock:
            if target in self._notified:
                return
            self._notified.add(target)
        name = f"DAG Sync {deployment}" if deployment else "DAG Sync"
        subject = _subject(f"{name}: {target} blocked by the removal guard")
        message = self._message(
            name, target, rule=rule, unregister=unregister, previous_pairs=previous_pairs, tally=tally
        )
        try:
            answer = self._sns.publish(TopicArn=self._topic_arn, Subject=subject, Message=message)
        except (BotoCoreError, ClientError) as exc:
            logger.warning(
                "blocked notification not sent; the Blocked alarm still reports the target",
                extra={"target": target, "error": str(exc)},
            )
            return
        logger.info(
            "blocked notification sent", extra={"target": target, "message_id": answer.get("MessageId")}
        )

    def _message(
        self, name: str, target: str, *, rule: GuardRule, unregister: TagMap, previous_pairs: int, tally: str
    ) -> str:
        if len(tally) > MAX_TALLY_CHARS:
            tally = tally[: MAX_TALLY_CHARS - 1] + "…"
        lines = [
            f"{name} blocked target {target}:",
            "the removal guard held, nothing was sent to this target and its snapshot is kept.",
            "",
            f"Would unregister: {count_pairs(unregister)} pairs on {len(unregister)} IPs",
            f"Pairs recorded before this run: {previous_pairs}",
            f"Rule that held: {rule} ({RULE_MEANING[rule]})",
            f"Tally: {tally}",
            "",
            *_top_losses(unregister),
            "",
            "Before forcing, find out why: an inventory read short, labels lost or renamed on the PCE,",
            "or, with TAGS_IN_USE_ONLY, a dynamic address group deleted on the device.",
            "",
            "To let the run through, invoke the function with the manual event",
            f"  {FORCE_EVENT}",
            "for example:",
            f"  {self._invoke_line()}",
            "A forced run lets every target of that run through the guard, not only this one.",
        ]
        return "\n".join(lines)

    def _invoke_line(self) -> str:
        name = shlex.quote(self._function_name) if self._function_name else "<function name>"
        region = f" --region {shlex.quote(self._region)}" if self._region else ""
        return (
            f"aws lambda invoke --function-name {name}{region} --cli-binary-format raw-in-base64-out "
            f"--payload {shlex.quote(FORCE_EVENT)} response.json"
        )


def _top_losses(unregister: TagMap) -> list[str]:
    """The tags that would lose the most members (IPs), most first, ties by name."""
    losses = Counter(tag for tags in unregister.values() for tag in tags)
    ranked = sorted(losses.items(), key=lambda item: (-item[1], item[0]))
    lines = [f"Tags that would lose the most members (top {min(TOP_TAGS, len(ranked))} of {len(ranked)}):"]
    lines += [f"  {tag}: {members} members" for tag, members in ranked[:TOP_TAGS]]
    return lines


def _subject(text: str) -> str:
    """SNS's subject rules: printable ASCII on one line, under 100 characters."""
    clean = "".join(char if " " <= char <= "~" else "?" for char in text)
    if len(clean) <= MAX_SUBJECT_CHARS:
        return clean
    return clean[: MAX_SUBJECT_CHARS - 3] + "..."
