"""Talking to the PAN-OS emulator the way a client does: plain requests calls over loopback HTTP."""

import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import defusedxml.ElementTree as SafeET
import requests

from emulators.panos import PanosEmulator
from emulators.server import LoopbackServer

KEY = "test-api-key"
SHOW_ALL = "<show><object><registered-ip><all/></registered-ip></object></show>"
TIMEOUT = 10.0


def uid_message(
    verb: str,
    entries: Mapping[str, list[str]],
    *,
    persistent: str | None = "1",
    timeout: str | None = None,
) -> str:
    """A uid-message with one `verb` section: ip -> tags."""
    root = ET.Element("uid-message")
    ET.SubElement(root, "type").text = "update"
    section = ET.SubElement(ET.SubElement(root, "payload"), verb)
    for ip, tags in entries.items():
        entry = ET.SubElement(section, "entry", {"ip": ip})
        if persistent is not None and verb == "register":
            entry.set("persistent", persistent)
        tag = ET.SubElement(entry, "tag")
        for name in tags:
            member = ET.SubElement(tag, "member", {"timeout": timeout} if timeout else {})
            member.text = name
    return ET.tostring(root, encoding="unicode")


def parse(response: requests.Response) -> ET.Element:
    root: ET.Element = SafeET.fromstring(response.content)
    return root


def failed_messages(root: ET.Element) -> dict[str, str]:
    """ip -> message of every failing entry in a uid-message answer."""
    return {
        e.get("ip") or "": e.get("message") or ""
        for e in root.iterfind("msg/line/uid-response/payload/*/entry")
    }


def listed_ips(root: ET.Element) -> list[str]:
    return [entry.get("ip") or "" for entry in root.iterfind("result/entry")]


@dataclass
class Api:
    """The emulator's `/api/` endpoint; the key goes in X-PAN-KEY unless a call says otherwise."""

    url: str
    session: requests.Session

    def post(
        self,
        data: Mapping[str, str] | None = None,
        *,
        key: str | None = KEY,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        sent = ({"X-PAN-KEY": key} if key else {}) | dict(headers or {})
        return self.session.post(
            self.url, data=data, headers=sent, timeout=TIMEOUT, allow_redirects=False, **kwargs
        )

    def post_alone(self, data: Mapping[str, str], *, key: str = KEY) -> requests.Response:
        """A POST on a connection of its own, for requests sent from several threads at once."""
        return requests.post(
            self.url, data=data, headers={"X-PAN-KEY": key}, timeout=TIMEOUT, allow_redirects=False
        )

    def user_id(self, verb: str, entries: Mapping[str, list[str]], **params: str) -> requests.Response:
        return self.post({"type": "user-id", "cmd": uid_message(verb, entries), **params})

    def register(
        self,
        entries: Mapping[str, list[str]],
        *,
        persistent: str | None = "1",
        timeout: str | None = None,
        **params: str,
    ) -> ET.Element:
        cmd = uid_message("register", entries, persistent=persistent, timeout=timeout)
        return parse(self.post({"type": "user-id", "cmd": cmd, **params}))

    def unregister(self, entries: Mapping[str, list[str]], **params: str) -> ET.Element:
        return parse(self.user_id("unregister", entries, **params))

    def show(self, inner: str, **params: str) -> ET.Element:
        cmd = f"<show><object><registered-ip>{inner}</registered-ip></object></show>"
        return parse(self.post({"type": "op", "cmd": cmd, **params}))

    def config(self, xpath: str, *, action: str = "show", **params: str) -> requests.Response:
        return self.post({"type": "config", "action": action, "xpath": xpath, **params})


@contextmanager
def serve(emulator: PanosEmulator) -> Iterator[Api]:
    """The emulator on a loopback port for the duration of the block."""
    with LoopbackServer(emulator) as server, requests.Session() as session:
        yield Api(f"{server.url}/api/", session)


class Gate:
    """A `sleep` for the emulator that records each wait and blocks until the test opens it.

    Device time becomes something the test controls: nothing sleeps for real, and a request can
    be held inside the device while the test looks at what else is going on.
    """

    def __init__(self, *, hold: bool = True) -> None:
        self.asked: list[float] = []
        self._open = threading.Event()
        self._asked = threading.Condition()
        if not hold:
            self._open.set()

    def __call__(self, seconds: float) -> None:
        with self._asked:
            self.asked.append(seconds)
            self._asked.notify_all()
        self._open.wait(TIMEOUT)

    def wait_for_waits(self, count: int) -> bool:
        """Block until `count` sleeps have started (False after the timeout)."""
        with self._asked:
            return self._asked.wait_for(lambda: len(self.asked) >= count, TIMEOUT)

    def open(self) -> None:
        self._open.set()


def in_threads(*calls: Any) -> list[threading.Thread]:
    """Start each zero-argument callable in its own thread (own connection); the caller joins them."""
    threads = [threading.Thread(target=call, daemon=True) for call in calls]
    for thread in threads:
        thread.start()
    return threads


def join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "a request never finished"
