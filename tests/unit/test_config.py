"""SPEC §1: configuration is validated once, with one clear error naming the bad variable."""

import pytest

from dagsync.config import DEFAULT_LABEL_KEYS, load_settings
from dagsync.errors import ConfigError

REQUIRED = {
    "PCE_URL": "https://pce.example.com:8443",
    "PCE_ORG_ID": "1",
    "PCE_SECRET_ID": "dagsync/pce",
    "PANOS_URL": "https://panorama.example.com",
    "PANOS_SECRET_ID": "dagsync/panos",
    "SNAPSHOT_TABLE": "dagsync-snapshots",
}


def settings(**overrides: str):
    return load_settings({**REQUIRED, **overrides})


def test_defaults_follow_the_spec():
    s = settings()
    assert s.tag_prefix == "illumio."
    assert s.label_keys == frozenset(DEFAULT_LABEL_KEYS)
    assert (s.include_ipv6, s.max_removal_ratio, s.batch_size, s.dry_run) == (True, 0.25, 500, False)
    assert (s.pce_verify_tls, s.panos_verify_tls) == (True, True)
    assert s.panos_vsys is None and s.panos_target_serials == ()


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_missing_required_variable_is_named(name):
    env = dict(REQUIRED)
    del env[name]
    with pytest.raises(ConfigError, match=name):
        load_settings(env)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PCE_URL", "pce.example.com"),
        ("PCE_URL", "ftp://pce.example.com"),
        ("PANOS_URL", "https://panorama.example.com/api/"),
        ("PCE_ORG_ID", "one"),
        ("PCE_ORG_ID", "0"),
        ("BATCH_SIZE", "0"),
        ("BATCH_SIZE", "1001"),
        ("MAX_REMOVAL_RATIO", "1.5"),
        ("MAX_REMOVAL_RATIO", "lots"),
        ("DRY_RUN", "maybe"),
        ("INCLUDE_IPV6", "2"),
        ("PANOS_VSYS", "vsys one"),
        ("PANOS_TARGET_SERIALS", "0070,bad serial"),
        ("PANOS_TARGET_SERIALS", "0070,0070"),
        ("TAG_PREFIX", ""),
        ("TAG_PREFIX", "it's."),
        ("LABEL_KEYS", "env,,app"),
        ("SNAPSHOT_TABLE", "a"),
        ("PCE_VERIFY_TLS", "nope"),
    ],
)
def test_invalid_value_is_rejected_naming_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        settings(**{name: value})


def test_star_means_every_label_key():
    assert settings(LABEL_KEYS="*").label_keys is None


def test_label_keys_list_is_parsed():
    assert settings(LABEL_KEYS="env, app,Quarantine").label_keys == frozenset({"env", "app", "Quarantine"})


def test_single_target_is_the_device_itself():
    (target,) = settings(PANOS_VSYS="vsys2").targets
    assert (target.name, target.serial, target.vsys) == ("panorama.example.com/vsys2", None, "vsys2")


def test_each_serial_is_a_target_through_panorama():
    targets = settings(PANOS_TARGET_SERIALS="007051000123456, 007051000654321", PANOS_VSYS="vsys1").targets
    assert [t.name for t in targets] == [
        "panorama.example.com/007051000123456/vsys1",
        "panorama.example.com/007051000654321/vsys1",
    ]


def test_plain_http_and_disabled_tls_are_reported():
    s = settings(PCE_URL="http://127.0.0.1:9000", PANOS_VERIFY_TLS="false")
    notes = s.insecure_settings()
    assert any("PCE_URL" in n and "http://" in n for n in notes)
    assert any("PANOS_URL" in n and "verification is off" in n for n in notes)


def test_secure_settings_report_nothing():
    assert settings().insecure_settings() == []
