"""docs/configuration.md#validation: configuration is validated once, with one clear error naming the bad variable."""

import ipaddress

import pytest

from dagsync.core.errors import ConfigError
from dagsync.core.settings import DEFAULT_LABEL_KEYS, LEASE_MARGIN_SECONDS, load_settings
from tests.support.settings import REQUIRED_ENVIRONMENT


def settings(**overrides: str):
    return load_settings({**REQUIRED_ENVIRONMENT, **overrides})


def test_defaults_follow_the_spec():
    s = settings()
    assert s.tag_prefix == "illumio."
    assert s.label_keys == frozenset(DEFAULT_LABEL_KEYS)
    assert (s.include_ipv6, s.max_removal_ratio, s.batch_size, s.dry_run) == (True, 0.25, 500, False)
    assert (s.pce_verify_tls, s.panos_verify_tls) == (True, True)
    assert s.panos_vsys is None and s.panos_target_serials == ()


def test_defaults_of_the_address_feed_fan_out_and_dag_variables():
    s = settings()
    assert (s.exclude_cidrs, s.shared_ip_policy, s.pce_max_requests_per_minute) == ((), "union", 100)
    assert (s.change_feed, s.full_export_minutes, s.max_targeted_workloads) == ("events", 60, 50)
    assert (s.panos_max_concurrency, s.tags_in_use_only) == (5, False)
    assert (s.deployment_id, s.function_timeout_seconds) == ("", 900)


@pytest.mark.parametrize(
    ("name", "value", "field", "expected"),
    [
        ("SHARED_IP_POLICY", "skip", "shared_ip_policy", "skip"),
        ("PCE_MAX_REQUESTS_PER_MINUTE", "30", "pce_max_requests_per_minute", 30),
        ("CHANGE_FEED", "off", "change_feed", "off"),
        ("FULL_EXPORT_MINUTES", "15", "full_export_minutes", 15),
        ("MAX_TARGETED_WORKLOADS", "200", "max_targeted_workloads", 200),
        ("PANOS_MAX_CONCURRENCY", "1", "panos_max_concurrency", 1),
        ("TAGS_IN_USE_ONLY", "TRUE", "tags_in_use_only", True),
        ("DEPLOYMENT_ID", "dagsync-prod", "deployment_id", "dagsync-prod"),
        ("FUNCTION_TIMEOUT_SECONDS", "300", "function_timeout_seconds", 300),
    ],
)
def test_each_variable_sets_its_field(name, value, field, expected):
    assert getattr(settings(**{name: value}), field) == expected


def test_a_blank_variable_means_its_default():
    assert settings(BATCH_SIZE="  ", CHANGE_FEED="").batch_size == 500


@pytest.mark.parametrize("name", sorted(REQUIRED_ENVIRONMENT))
def test_missing_required_variable_is_named(name):
    env = dict(REQUIRED_ENVIRONMENT)
    del env[name]
    with pytest.raises(ConfigError, match=f"^{name} is required and is not set$"):
        load_settings(env)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PCE_URL", "pce.example.com"),
        ("PCE_URL", "ftp://pce.example.com"),
        ("PCE_URL", "https://pce.example.com:http"),
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
        ("TAG_PREFIX", " illumio."),
        ("LABEL_KEYS", "env,,app"),
        ("SNAPSHOT_TABLE", "a"),
        ("PCE_VERIFY_TLS", "nope"),
        ("EXCLUDE_CIDRS", "172.17.0.0/16,docker"),
        ("EXCLUDE_CIDRS", "10.0.0.0/8,"),
        ("EXCLUDE_CIDRS", "fe80::%eth0/64"),
        ("SHARED_IP_POLICY", "first"),
        ("PCE_MAX_REQUESTS_PER_MINUTE", "0"),
        ("CHANGE_FEED", "on"),
        ("FULL_EXPORT_MINUTES", "0"),
        ("MAX_TARGETED_WORKLOADS", "-1"),
        ("PANOS_MAX_CONCURRENCY", "0"),
        ("PANOS_MAX_CONCURRENCY", "6"),
        ("TAGS_IN_USE_ONLY", "sometimes"),
        ("DEPLOYMENT_ID", "my stack"),
        ("DEPLOYMENT_ID", "-leading-hyphen"),
        ("DEPLOYMENT_ID", "x" * 129),
        ("FUNCTION_TIMEOUT_SECONDS", "901"),
    ],
)
def test_invalid_value_is_rejected_naming_the_variable(name, value):
    with pytest.raises(ConfigError, match=f"^{name} "):
        settings(**{name: value})


def test_the_message_names_the_variable_its_rule_and_the_value():
    with pytest.raises(ConfigError) as error:
        settings(BATCH_SIZE="0")
    assert str(error.value) == "BATCH_SIZE must be between 1 and 1000, got 0"


def test_the_first_bad_variable_is_the_one_reported():
    with pytest.raises(ConfigError, match=r"^PCE_ORG_ID "):
        settings(BATCH_SIZE="0", PCE_ORG_ID="zero")


def test_unknown_variables_are_ignored():
    assert settings(AWS_REGION="eu-west-1", POWERTOOLS_SERVICE_NAME="dagsync").batch_size == 500


@pytest.mark.parametrize("name", ["PCE_URL", "PANOS_URL"])
@pytest.mark.parametrize(
    "url", ["https://admin:hunter2-pw@host.example.com", "https://hunter2-pw@host.example.com:8443"]
)
def test_a_url_with_credentials_is_rejected_without_echoing_them(name, url):
    with pytest.raises(ConfigError, match=f"^{name} must not carry a username or password") as error:
        settings(**{name: url})
    assert "hunter2-pw" not in str(error.value)
    assert "admin" not in str(error.value)
    assert error.value.__cause__ is None and error.value.__suppress_context__


def test_exclude_cidrs_take_v4_and_v6_networks():
    s = settings(EXCLUDE_CIDRS="172.17.0.0/16, 100.64.0.0/10,2001:db8:ff::/48,192.0.2.7")
    assert s.exclude_cidrs == (
        ipaddress.ip_network("172.17.0.0/16"),
        ipaddress.ip_network("100.64.0.0/10"),
        ipaddress.ip_network("2001:db8:ff::/48"),
        ipaddress.ip_network("192.0.2.7/32"),
    )


@pytest.mark.parametrize(
    ("value", "suggestion"), [("10.1.2.3/8", "10.0.0.0/8"), ("2001:db8::1/32", "2001:db8::/32")]
)
def test_an_exclusion_with_host_bits_set_is_rejected_with_the_network_it_may_mean(value, suggestion):
    with pytest.raises(ConfigError, match=f"^EXCLUDE_CIDRS has host bits set in '{value}'") as error:
        settings(EXCLUDE_CIDRS=value)
    assert str(error.value).endswith(f"did you mean {suggestion}?")


def test_settings_are_frozen_and_hashable():
    s = settings(EXCLUDE_CIDRS="10.0.0.0/8")
    assert hash(s) == hash(settings(EXCLUDE_CIDRS="10.0.0.0/8"))
    with pytest.raises(ValueError, match="frozen"):
        s.batch_size = 10  # type: ignore[misc]


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


def test_a_lease_covers_the_run_plus_the_margin_and_never_outlasts_the_function_timeout():
    s = settings(FUNCTION_TIMEOUT_SECONDS="600")
    assert s.lease_seconds(120.0) == 120.0 + LEASE_MARGIN_SECONDS
    assert s.lease_seconds(None) == s.lease_seconds(3600.0) == 600 + LEASE_MARGIN_SECONDS
    assert s.longest_lease_seconds == 600 + LEASE_MARGIN_SECONDS


def test_a_conflict_is_stuck_after_twice_the_function_timeout():
    assert settings(FUNCTION_TIMEOUT_SECONDS="300").stuck_conflict_seconds == 600.0
