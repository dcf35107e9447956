"""The set of our tags that some dynamic address group on a target names (docs/dag-awareness.md#tags-in-use).

With `TAGS_IN_USE_ONLY=true` the engine cuts the desired pairs to this set before the diff. The
set comes from the DAG definitions on the device, cached per target in the snapshot table with a
digest of those definitions, and read again at most every few minutes and on every reconcile.

The cached set is the one the target was last synced with: a read that finds the same set is
recorded at once (only its time and digest move), but a read that finds another set is recorded
only once a sync has applied it to the whole estate (`TagsInUse.record`). So a run that cannot
apply it (a quiet feed run, a targeted update, a dry run, a run that fails or is blocked) leaves
the old set cached, and the next run to read the definitions finds the change again.

Which tags a filter names is decided lexically, not by evaluating it: every quoted string counts,
and so does a bare word outside quotes that starts with TAG_PREFIX. A filter that cannot be
evaluated (a `not`, an unknown word) therefore still brings in every tag it mentions, which is
the safe direction: a tag registered that no DAG needs costs capacity only, while a tag left out
empties a DAG a policy may rely on. Only a filter whose quotes do not close is unreadable.
"""

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from dagsync.core.device import DagDefinition
from dagsync.core.errors import DagSyncError, PanosAuthError, PanosError, SnapshotError
from dagsync.core.records import CachedTags
from dagsync.sync.ports import DagReader, TagsCache

# Quote characters that delimit a tag in a filter. PAN-OS documents single quotes
# (docs/protocols.md#pan-os-address-groups); whether it also accepts double quotes is unverified,
# so they delimit a tag too: reading one more tag than the device would is harmless.
_QUOTES = "'\""
_SEPARATORS = frozenset("() \t\r\n")
PERMISSION_HINT = "give the admin role XML API Configuration read permission"


class UnreadableFilter(ValueError):
    """A filter whose tags cannot be told apart (a quote that never closes)."""


class TagsInUseUnavailable(DagSyncError):
    """TAGS_IN_USE_ONLY is on and no set of tags in use was ever read for the target."""


@dataclass(frozen=True)
class TagsInUsePolicy:
    """How long a set read from the device stands before it is read again.

    Five minutes keeps a quiet estate at one small config read and one small write per target
    every five minutes, and brings a new DAG's tags in within a few scheduled runs.
    """

    refresh_seconds: float = 300.0

    def due(self, read_at: float, now: float) -> bool:
        """True once the set is old enough to read again; a time ahead of `now` is not trusted."""
        age = now - read_at
        return age < 0 or age >= self.refresh_seconds


@dataclass(frozen=True)
class TagsInUseAnswer:
    """The tags in use for one target, and how far to trust them.

    `fresh` is False when the definitions could not be read now and the last set read is used
    instead; `warning` then says why (it may also report a cache that could not be saved).
    `definitions` holds what this call read from the device, or None when it read nothing, so a
    membership plan in the same run need not read them again. `synced` is the set the target was
    last synced with (None: none yet); when `tags` differs from it, only a sync of the whole
    estate can apply the answer, and `record` then caches it under `digest`.
    """

    tags: frozenset[str]
    fresh: bool
    read_at: float
    warning: str | None = None
    definitions: tuple[DagDefinition, ...] | None = None
    synced: frozenset[str] | None = None
    digest: str = ""

    @property
    def changed(self) -> bool:
        """Whether the DAGs now name another set of tags than the one the target was synced with."""
        return self.synced != self.tags

    def change(self) -> str:
        """The change in words, for the operator."""
        if self.synced is None:
            return "no set of tags in use has been synced to this target yet"
        added, removed = len(self.tags - self.synced), len(self.synced - self.tags)
        return f"the DAGs on the device now name other tags ({added} in use added, {removed} removed)"


def tags_named(filter_text: str, prefix: str) -> frozenset[str]:
    """The tags starting with `prefix` that a filter names: quoted strings, and bare words with the prefix.

    Raises UnreadableFilter when a quote does not close.
    """
    named: set[str] = set()
    word: list[str] = []
    position = 0
    while position < len(filter_text):
        char = filter_text[position]
        if char in _QUOTES:
            end = filter_text.find(char, position + 1)
            if end < 0:
                raise UnreadableFilter(f"the quote at character {position + 1} does not close")
            named.add(filter_text[position + 1 : end])
            _take_word(word, named)
            position = end + 1
            continue
        if char in _SEPARATORS:
            _take_word(word, named)
        else:
            word.append(char)
        position += 1
    _take_word(word, named)
    return frozenset(tag for tag in named if tag.startswith(prefix))


def _take_word(word: list[str], named: set[str]) -> None:
    """A bare word may be an unquoted tag [unverified that PAN-OS accepts one]: keep it as a candidate."""
    if word:
        named.add("".join(word))
        word.clear()


def definitions_digest(definitions: Iterable[DagDefinition], prefix: str) -> str:
    """SHA-256 of the definitions in a canonical order, and of the prefix the tags were cut to."""
    canonical = sorted([d.location, d.name, d.filter] for d in definitions)
    text = json.dumps({"prefix": prefix, "definitions": canonical}, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class TagsInUse:
    """The set of our tags that some DAG on the target names, cached per target.

    A read that fails (a 403, a filter that cannot be read) keeps the last set and warns; with no
    set ever read, the target fails rather than have every pair cut away. A set other than the
    cached one is cached by `record`, once a sync has applied it.
    """

    def __init__(self, cache: TagsCache, *, prefix: str, policy: TagsInUsePolicy = TagsInUsePolicy()) -> None:
        self._cache = cache
        self._prefix = prefix
        self._policy = policy

    def for_target(
        self, target_name: str, device: DagReader, *, reconcile: bool, now: float
    ) -> TagsInUseAnswer:
        """The tags in use for `target_name`; `now` is wall-clock time (epoch seconds), as the cache keeps it."""
        cached = self._usable(self._cache.load_tags_in_use(target_name))
        if cached is not None and not reconcile and not self._policy.due(cached.read_at, now):
            return TagsInUseAnswer(
                tags=cached.tags, fresh=True, read_at=cached.read_at, synced=cached.tags, digest=cached.digest
            )
        try:
            definitions = tuple(device.address_groups())
            tags = self._tags_of(definitions)
        except PanosError as exc:
            return self._last_known(
                target_name, cached, str(exc), now, refused=isinstance(exc, PanosAuthError)
            )
        except UnreadableFilter as exc:
            return self._last_known(target_name, cached, str(exc), now, refused=False)
        answer = TagsInUseAnswer(
            tags=tags,
            fresh=True,
            read_at=now,
            definitions=definitions,
            synced=None if cached is None else cached.tags,
            digest=definitions_digest(definitions, self._prefix),
        )
        if self._refreshes(cached, answer):
            answer = replace(answer, warning=self.record(target_name, answer))
        return answer

    def _refreshes(self, cached: CachedTags | None, answer: TagsInUseAnswer) -> bool:
        """A read of the same set is recorded at once when it says something new (other
        definitions, or a refresh due), so the next runs need not read again; another set waits
        for a sync that applies it (`record`)."""
        if cached is None or answer.changed:
            return False
        return cached.digest != answer.digest or self._policy.due(cached.read_at, answer.read_at)

    def record(self, target_name: str, answer: TagsInUseAnswer) -> str | None:
        """Cache `answer` as the set `target_name` is synced with, once a sync of the whole estate
        applied it; returns a warning when the table refused the write (the next run reads again)."""
        try:
            self._cache.save_tags_in_use(target_name, answer.tags, answer.digest, answer.read_at)
        except SnapshotError as exc:
            return (
                f"the tags in use of {target_name} could not be cached ({exc}); the next run reads them again"
            )
        return None

    def _usable(self, cached: CachedTags | None) -> CachedTags | None:
        """A cached set holding a tag outside TAG_PREFIX was cut under another prefix: it must be read again."""
        if cached is None or any(not tag.startswith(self._prefix) for tag in cached.tags):
            return None
        return cached

    def _tags_of(self, definitions: Sequence[DagDefinition]) -> frozenset[str]:
        tags: set[str] = set()
        for definition in definitions:
            try:
                tags |= tags_named(definition.filter, self._prefix)
            except UnreadableFilter as exc:
                raise UnreadableFilter(
                    f"the filter of DAG {definition.name!r} ({definition.location}) cannot be read: {exc}"
                ) from None
        return frozenset(tags)

    def _last_known(
        self, target_name: str, cached: CachedTags | None, reason: str, now: float, *, refused: bool
    ) -> TagsInUseAnswer:
        hint = f"; {PERMISSION_HINT}" if refused else ""
        if cached is None:
            ending = hint or "; nothing is sent to this target until they can be read"
            raise TagsInUseUnavailable(
                f"TAGS_IN_USE_ONLY is on but the DAG definitions of {target_name} could not be read "
                f"({reason}){ending}"
            )
        age_minutes = max(now - cached.read_at, 0.0) / 60
        warning = (
            f"the DAG definitions of {target_name} could not be read ({reason}){hint}; using the "
            f"{len(cached.tags)} tags in use read {age_minutes:.0f} minutes ago"
        )
        return TagsInUseAnswer(
            tags=cached.tags,
            fresh=False,
            read_at=cached.read_at,
            warning=warning,
            synced=cached.tags,
            digest=cached.digest,
        )
