"""Hostile label values and addresses (docs/mapping.md): markup, quotes, control characters, unicode,
500 characters; zoned, over-long, garbage and IPv4-mapped addresses.

Every uid-message on the wire is parsed back with defusedxml; the tags are checked against the
sanitising rules by hand, not by calling the mapping.
"""

import hashlib
from typing import ClassVar

import defusedxml.ElementTree as SafeET
import pytest

from dagsync.core.canary import CANARY_IP
from tests.faults.harness import CANARY, assert_exact
from tests.integration.conftest import workload

LONG = "&<" * 250


def cut(tag: str) -> str:
    return f"{tag[:118]}~{hashlib.sha256(tag.encode()).hexdigest()[:8]}"


HOSTILE = [
    workload("w1", {"app": "<script>alert(1)</script>", "env": "R&D & Ops"}, ["10.7.0.1"]),
    workload("w2", {"app": 'Bob\'s "Big" Tools', "env": "line1\nline2\r\n\tline3"}, ["10.7.0.2"]),
    workload("w3", {"app": "Zürich 東京 🔥", "loc": "  padded   value  "}, ["10.7.0.3"]),
    workload("w4", {"app": LONG}, ["10.7.0.4"]),
    workload("w5", {"env": "a  b"}, ["10.7.0.5"]),
    workload("w6", {"env": "a b"}, ["10.7.0.6"]),
    workload("w7", {"app": "]]><!-- x -->", "env": "bell\x07\x00end"}, ["10.7.0.7"]),
    workload("w8", {"app": "NoUsableAddress"}, ["10.7.0.8<evil/>", "' or 1=1"]),
]
EXPECTED = {
    "10.7.0.1": frozenset({"illumio.app.<script>alert(1)</script>", "illumio.env.R&D & Ops"}),
    "10.7.0.2": frozenset({"illumio.app.Bob_s _Big_ Tools", "illumio.env.line1 line2 line3"}),
    "10.7.0.3": frozenset({"illumio.app.Zürich 東京 🔥", "illumio.loc.padded value"}),
    "10.7.0.4": frozenset({cut(f"illumio.app.{LONG}")}),
    "10.7.0.5": frozenset({"illumio.env.a b"}),
    "10.7.0.6": frozenset({"illumio.env.a b"}),
    "10.7.0.7": frozenset({"illumio.app.]]><!-- x -->", "illumio.env.bell__end"}),
}


def wire_pairs(panos, verb: str) -> set[tuple[str, str]]:
    """(ip, tag) of every `verb` uid-message, each request's cmd parsed as XML on its own."""
    pairs: set[tuple[str, str]] = set()
    for request in panos.calls("user-id", verb=verb):
        root = SafeET.fromstring(request.params["cmd"])
        assert root.tag == "uid-message"
        for entry in root.iterfind(f"payload/{verb}/entry"):
            pairs.update((entry.get("ip"), member.text) for member in entry.iterfind("tag/member"))
    return {pair for pair in pairs if pair[0] != CANARY_IP}


def as_pairs(tag_map) -> set[tuple[str, str]]:
    return {(ip, tag) for ip, tags in tag_map.items() for tag in tags}


@pytest.fixture
def pce(pce):
    pce.set_workloads(HOSTILE)
    return pce


def test_hostile_labels_become_sanitised_tags_in_well_formed_xml(deployment, panos, clock):
    summary = deployment.invoke({})
    assert summary["status"] == "ok"
    assert wire_pairs(panos, "register") == as_pairs(EXPECTED)
    assert all(len(tag) <= 127 for tags in EXPECTED.values() for tag in tags)
    assert_exact(deployment, panos, EXPECTED, {}, now=clock.now)


def test_two_labels_that_sanitise_to_one_tag_are_reported(deployment):
    summary = deployment.invoke({})
    assert "labels env='a  b' and env='a b' both map to tag 'illumio.env.a b'" in summary["warnings"]


def test_markup_in_an_address_is_reported_and_never_sent(deployment, panos):
    odd = [w for w in deployment.invoke({})["warnings"] if "not an IP address" in w]
    assert len(odd) == 2
    assert all(w.startswith("workload /orgs/1/workloads/w8") for w in odd)
    assert "'10.7.0.8<evil/>'" in odd[0] and '"\' or 1=1"' in odd[1]
    assert not any(ip.startswith("10.7.0.8") for ip, _ in wire_pairs(panos, "register"))


def test_hostile_tags_are_unregistered_in_well_formed_xml(deployment, pce, panos, clock):
    deployment.invoke({})
    pce.set_workloads([HOSTILE[5]])
    panos.clear_log()
    assert deployment.invoke({"force": True})["status"] == "ok"
    assert wire_pairs(panos, "unregister") == as_pairs(EXPECTED) - {("10.7.0.6", "illumio.env.a b")}
    assert panos.table() == {"10.7.0.6": frozenset({"illumio.env.a b"}), **CANARY}
    assert_exact(deployment, panos, {"10.7.0.6": frozenset({"illumio.env.a b"})}, {}, now=clock.now)


class TestEveryLabelKey:
    @pytest.fixture
    def settings(self) -> dict[str, str]:
        return {"LABEL_KEYS": "*"}

    @pytest.fixture
    def pce(self, pce):
        pce.set_workloads(
            [
                workload("k1", {"a.b": "c", "a": "b.c"}, ["10.7.1.1"]),
                workload("k2", {"Data <Class>\n": "x&y"}, ["10.7.1.2"]),
            ]
        )
        return pce

    def test_hostile_custom_keys_become_sanitised_tags_and_collisions_are_reported(
        self, deployment, panos, clock
    ):
        summary = deployment.invoke({})
        assert summary["warnings"] == ["labels a.b='c' and a='b.c' both map to tag 'illumio.a.b.c'"]
        expected = {
            "10.7.1.1": frozenset({"illumio.a.b.c"}),
            "10.7.1.2": frozenset({"illumio.Data <Class>.x&y"}),
        }
        assert wire_pairs(panos, "register") == as_pairs(expected)
        assert_exact(deployment, panos, expected, {}, now=clock.now)


class TestOddAddresses:
    """Address text the PCE can hold that is no plain IP: dropped with a warning naming the
    workload; the run is ok and every other pair is exact."""

    ODD: ClassVar = {
        "zoned": ["2001:db8::1%x", "10.8.0.1"],
        "zoned-link-local": ["fe80::1%eth0", "10.8.0.2"],
        "over-long": ["10.8.0.3" * 2000, "10.8.0.3"],
        "garbage": ["\x00\x07 not an address", "10.8.0.4"],
        "ipv4-mapped": ["::ffff:10.8.0.9", "10.8.0.5"],
    }
    EXPECTED: ClassVar = {f"10.8.0.{n}": frozenset({"illumio.app.Odd"}) for n in range(1, 6)} | {
        "10.8.0.9": frozenset({"illumio.app.Plain"})
    }

    @pytest.fixture
    def pce(self, pce):
        pce.set_workloads(
            [workload(name, {"app": "Odd"}, addresses) for name, addresses in self.ODD.items()]
            + [workload("plain", {"app": "Plain"}, ["10.8.0.9"])]
        )
        return pce

    def test_odd_addresses_are_dropped_and_every_other_pair_is_exact(self, deployment, panos, clock):
        summary = deployment.invoke({})
        assert summary["status"] == "ok"
        assert wire_pairs(panos, "register") == as_pairs(self.EXPECTED)
        assert panos.calls("user-id", verb="unregister") == []
        assert_exact(deployment, panos, self.EXPECTED, {}, now=clock.now)

    def test_each_odd_address_is_a_warning_naming_its_workload(self, deployment):
        warnings = deployment.invoke({})["warnings"]
        assert len(warnings) == len(self.ODD)
        for name, warning in zip(self.ODD, warnings, strict=True):
            assert warning.startswith(f"workload /orgs/1/workloads/{name}")
        assert all(len(warning) < 300 for warning in warnings)

    def test_an_ipv4_mapped_address_does_not_join_the_ipv4_workloads_dags(self, deployment, panos):
        deployment.invoke({})
        assert panos.table()["10.8.0.9"] == frozenset({"illumio.app.Plain"})
