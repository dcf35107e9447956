"""`make local`: stand-ins on the host for `sam local invoke DagSyncFunction`.

Starts the PCE emulator (a small synthetic estate), the PAN-OS emulator (Panorama, with a few
Dynamic Address Groups) and a moto server (the snapshot table, both secrets and the alarm topic),
writes `env.local.json` with every variable the template gives the function, pointed at them
through the host name the function's container reaches the host by, prints one `sam local invoke`
line per file in events/, and serves until Ctrl-C.

`sam local invoke --env-vars` only overrides variables the template declares, which is why the
template declares AWS_ENDPOINT_URL (empty, so boto3 uses the real endpoints in Lambda). The
credentials and region are the shell's, as SAM CLI passes them into the container.
"""

import argparse
import json
import logging
import shlex
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

from emulators.estate import generate_estate
from emulators.local import PANOS_API_KEY, PANOS_SECRET, PCE_SECRET, REGION, TABLE, provision
from emulators.panos import PanosEmulator
from emulators.pce import PceEmulator
from emulators.server import LoopbackServer

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
ENV_FILE = ROOT / "env.local.json"
FUNCTION = "DagSyncFunction"  # the template's logical id, the key SAM CLI reads the env file by
# Docker Desktop's name for the host; on Linux use --host-name 127.0.0.1 and --docker-network host.
CONTAINER_HOST = "host.docker.internal"
ALARM_TOPIC = "dagsync-local-alarms"
ESTATE_SIZE = 40
ESTATE_SEED = 7
DAGS = {
    "production": "'illumio.env.Production'",
    "quarantine": "'illumio.env.Quarantine'",
    "web": "'illumio.role.Web' or 'illumio.role.FTP'",
}
# What the shell running `sam local invoke` exports: moto's dummy credentials and the region.
SHELL_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


class LocalServices:
    """The emulators and a moto server on loopback, provisioned as a deployment would be."""

    def __init__(self) -> None:
        self.pce = PceEmulator()
        self.pce.load_estate(generate_estate(ESTATE_SIZE, ESTATE_SEED))
        self.pce.retry_after, self.pce.running_polls = 0, 0  # the export job is ready at once
        self.panos = PanosEmulator("panorama", api_keys=(PANOS_API_KEY,))
        for name, dag_filter in DAGS.items():
            self.panos.define_dag(name, dag_filter)
        self._servers = [LoopbackServer(self.pce), LoopbackServer(self.panos)]
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.alarm_topic_arn = ""

    def __enter__(self) -> "LocalServices":
        for server in self._servers:
            server.start()
        self._moto.start()
        self._provision()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self._servers:
            server.stop()
        self._moto.stop()

    @property
    def aws_url(self) -> str:
        host, port = self._moto.get_host_and_port()
        return f"http://{host}:{port}"

    def _client(self, service: str) -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            region_name=REGION,
            endpoint_url=self.aws_url,
            aws_access_key_id=SHELL_ENVIRONMENT["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=SHELL_ENVIRONMENT["AWS_SECRET_ACCESS_KEY"],
        )

    def _provision(self) -> None:
        provision(self._client("dynamodb"), self._client("secretsmanager"), self.pce)
        self.alarm_topic_arn = self._client("sns").create_topic(Name=ALARM_TOPIC)["TopicArn"]

    def function_environment(self, host: str) -> dict[str, str]:
        """Every variable template.yaml gives the function, with each endpoint reached through `host`."""
        pce_url, panos_url = (_through(server.url, host) for server in self._servers)
        return {
            "PCE_URL": pce_url,
            "PCE_ORG_ID": str(self.pce.org_id),
            "PCE_SECRET_ID": PCE_SECRET,
            "PANOS_URL": panos_url,
            "PANOS_SECRET_ID": PANOS_SECRET,
            "PANOS_VSYS": "",
            "PANOS_TARGET_SERIALS": "",
            "SNAPSHOT_TABLE": TABLE,
            "TAG_PREFIX": "illumio.",
            "LABEL_KEYS": "role,app,env,loc",
            "INCLUDE_IPV6": "true",
            "MAX_REMOVAL_RATIO": "0.25",
            "BATCH_SIZE": "500",
            "DRY_RUN": "false",
            "PCE_VERIFY_TLS": "true",
            "PANOS_VERIFY_TLS": "true",
            "EXCLUDE_CIDRS": "",
            "SHARED_IP_POLICY": "union",
            "PCE_MAX_REQUESTS_PER_MINUTE": "100",
            "CHANGE_FEED": "events",
            "FULL_EXPORT_MINUTES": "60",
            "MAX_TARGETED_WORKLOADS": "50",
            "PANOS_MAX_CONCURRENCY": "5",
            "TAGS_IN_USE_ONLY": "false",
            "STATE_TAGS": "",
            "LABEL_GROUP_TAGS": "false",
            "DEPLOYMENT_ID": "dagsync-local",
            "FUNCTION_TIMEOUT_SECONDS": "900",
            "ALARM_TOPIC_ARN": self.alarm_topic_arn,
            "AWS_ENDPOINT_URL": _through(self.aws_url, host),
            "POWERTOOLS_SERVICE_NAME": "dagsync",
            "POWERTOOLS_METRICS_NAMESPACE": "DagSync",
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }


def _through(url: str, host: str) -> str:
    """`url` with its host replaced by `host`, the port kept."""
    parts = urlsplit(url)
    return parts._replace(netloc=f"{host}:{parts.port}").geturl()


def write_env_file(path: Path, environment: Mapping[str, str]) -> None:
    """The `--env-vars` file SAM CLI reads: variables keyed by the function's logical id."""
    path.write_text(json.dumps({FUNCTION: dict(environment)}, indent=2) + "\n", encoding="utf-8")


def invoke_lines(env_file: Path, *, network_host: bool) -> list[str]:
    """One `sam local invoke` command per ready event in events/."""
    shell = " ".join(f"{name}={value}" for name, value in SHELL_ENVIRONMENT.items())
    network = " --docker-network host" if network_host else ""
    return [
        f"{shell} sam local invoke {FUNCTION} -e {shlex.quote(str(event.relative_to(ROOT)))}"
        f" --env-vars {shlex.quote(str(env_file))}{network}"
        for event in sorted(EVENTS.glob("*.json"))
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--host-name",
        default=CONTAINER_HOST,
        help="how the function's container reaches this host (default %(default)s; 127.0.0.1 on Linux)",
    )
    parser.add_argument("--env-file", type=Path, default=ENV_FILE, help="where to write the --env-vars file")
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request
    with LocalServices() as services:
        write_env_file(args.env_file, services.function_environment(args.host_name))
        print(f"PCE emulator     {ESTATE_SIZE} workloads")
        print(f"PAN-OS emulator  Panorama with DAGs {', '.join(DAGS)}")
        print(f"moto             {services.aws_url} (table {TABLE}, two secrets, topic {ALARM_TOPIC})")
        print(f"wrote {args.env_file}; in another shell, from {ROOT}, after `sam build`:\n")
        for line in invoke_lines(args.env_file, network_host=args.host_name == "127.0.0.1"):
            print(f"  {line}")
        print("\nserving until Ctrl-C")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
