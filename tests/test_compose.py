"""docker-compose.yml, the promml image and the demo exporter config, checked without a Docker engine.

`docker-compose config` is the reference for validity; the rest checks that the services agree with each
other (paths, ports, users, commands) the way they would have to at run time.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from promml import cli
from promml.demo import receiver
from promml.exporter.config import ExporterConfig, parse_config

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
REPLICAS = ("a", "b")
PROMML_SERVICES = (
    "baseline", *(f"{role}-{replica}" for role in ("model-server", "exporter", "traffic") for replica in REPLICAS),
    "receiver",
)
ONE_SHOT_SERVICES = {"baseline", "grafana-password"}
GRAFANA_PASSWORD_FILE = "/var/lib/grafana/admin-password"
PAGERDUTY_URL = "http://receiver:9096/pagerduty/v2/enqueue"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def docker_compose(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`docker-compose config -q` on the repository's file, with `env` and an empty .env file."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is not installed: run `make install-system`")
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    return subprocess.run(
        [binary, "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )


def environment_without_password() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key != "GRAFANA_ADMIN_PASSWORD"}


def published_ports(service: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(host ip, host port, container port) of each published port, short or long syntax."""
    ports = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            ports.append((entry.get("host_ip", ""), int(entry["published"]), int(entry["target"])))
            continue
        *host, container = str(entry).split("/")[0].rsplit(":", 2)
        ip, port = (host if len(host) == 2 else ["", *host]) if host else ["", container]
        ports.append((ip, int(port), int(container)))
    return ports


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source in the repository, target in the container) of each bind mount; named volumes are skipped."""
    mounts = []
    for entry in service.get("volumes", []):
        source, target = (entry["source"], entry["target"]) if isinstance(entry, dict) else entry.split(":")[:2]
        if source.startswith((".", "/")):
            mounts.append((source, target))
    return mounts


def volume_target(service: dict[str, Any], name: str) -> str:
    """Where a named volume is mounted in a service."""
    targets = [entry.split(":")[1] for entry in service.get("volumes", []) if entry.split(":")[0] == name]
    assert len(targets) == 1, f"volume {name} is mounted {len(targets)} times"
    return targets[0]


def promml_commands(service: dict[str, Any]) -> list[list[str]]:
    """The promml command lines a service runs: its command, or each `promml ...` step of a `sh -c` script."""
    if service.get("entrypoint") == ["/bin/sh", "-c"]:
        (script,) = service["command"]
        steps = [shlex.split(step) for step in script.split("&&")]
        assert all(step[0] == "promml" for step in steps), script
        return [step[1:] for step in steps]
    return [list(service["command"])]


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_config_is_valid_with_the_admin_password(tmp_path: Path) -> None:
    result = docker_compose(tmp_path, {**environment_without_password(), "GRAFANA_ADMIN_PASSWORD": "s3cret"})
    assert (result.returncode, result.stderr) == (0, "")


def test_config_is_valid_with_no_environment_at_all(tmp_path: Path) -> None:
    result = docker_compose(tmp_path, {"PATH": os.environ["PATH"]})
    assert (result.returncode, result.stderr) == (0, "")


def test_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    version = metadata.version("promml")
    images = {name: service["image"] for name, service in services.items()}
    assert images == {
        **{name: f"promml:{version}" for name in PROMML_SERVICES},
        "prometheus": "prom/prometheus:v2.42.0",
        "alertmanager": "prom/alertmanager:v0.25.0",
        "grafana": images["grafana"],
        "grafana-password": images["grafana"],  # Grafana's image and user, so the password file is Grafana's
    }
    assert re.fullmatch(r"grafana/grafana:\d+\.\d+\.\d+", images["grafana"])
    assert all(services[name]["build"] == "./exporter" for name in PROMML_SERVICES)


def test_published_ports_bind_loopback_only(services: dict[str, dict[str, Any]]) -> None:
    published = {name: published_ports(service) for name, service in services.items() if "ports" in service}
    assert published == {
        "model-server-a": [("127.0.0.1", 8000, 8000)],
        "model-server-b": [("127.0.0.1", 8001, 8000)],
        "exporter-a": [("127.0.0.1", 9102, 9102)],
        "exporter-b": [("127.0.0.1", 9103, 9102)],
        "receiver": [("127.0.0.1", 9096, 9096)],
        "prometheus": [("127.0.0.1", 9090, 9090)],
        "alertmanager": [("127.0.0.1", 9093, 9093)],
        "grafana": [("127.0.0.1", 3000, 3000)],
    }


def test_long_running_services_restart_and_have_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if name in ONE_SHOT_SERVICES:
            assert service["restart"] == "no", name
            assert "healthcheck" not in service, name
        else:
            assert service["restart"] == "unless-stopped", name
            assert service["healthcheck"]["test"][0] == "CMD", name


def test_one_shot_services_are_awaited_to_completion(services: dict[str, dict[str, Any]]) -> None:
    awaited = {
        dependency
        for service in services.values()
        for dependency, condition in service.get("depends_on", {}).items()
        if condition["condition"] == "service_completed_successfully"
    }
    assert awaited == ONE_SHOT_SERVICES


def test_every_service_runs_as_a_non_root_user(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        uid = str(service["user"]).split(":")[0]
        assert uid not in ("", "0", "root"), name
    # The third-party images' own users, made explicit: nobody for Prometheus and Alertmanager, grafana (472).
    assert {name: services[name]["user"] for name in ("prometheus", "alertmanager", "grafana")} == {
        "prometheus": "65534:65534", "alertmanager": "65534:65534", "grafana": "472:0",
    }


def test_grafana_admin_password_comes_from_the_one_shot_and_visitors_only_view(
    services: dict[str, dict[str, Any]]
) -> None:
    grafana, password = services["grafana"], services["grafana-password"]
    environment = grafana["environment"]
    assert "GF_SECURITY_ADMIN_PASSWORD" not in environment  # the image refuses it next to the _FILE variable
    assert environment["GF_SECURITY_ADMIN_PASSWORD__FILE"] == GRAFANA_PASSWORD_FILE
    assert (environment["GF_AUTH_ANONYMOUS_ENABLED"], environment["GF_AUTH_ANONYMOUS_ORG_ROLE"]) == ("true", "Viewer")
    assert environment["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert grafana["depends_on"]["grafana-password"] == {"condition": "service_completed_successfully"}
    # the one-shot writes the file into the very volume Grafana reads it from, as Grafana's user
    data_dir = volume_target(grafana, "grafana-data")
    assert volume_target(password, "grafana-data") == data_dir == str(Path(GRAFANA_PASSWORD_FILE).parent)
    assert password["user"] == grafana["user"]
    assert password["environment"] == {"GRAFANA_ADMIN_PASSWORD": "${GRAFANA_ADMIN_PASSWORD:-}"}
    (script,) = password["command"]
    assert GRAFANA_PASSWORD_FILE in script


def run_password_script(services: dict[str, dict[str, Any]], file: Path, password: str | None) -> str:
    """The grafana-password service's script, run here with its file at `file`; returns what it printed."""
    (script,) = services["grafana-password"]["command"]
    local = script.replace("$$", "$").replace(GRAFANA_PASSWORD_FILE, str(file))
    env = {"PATH": os.environ["PATH"], **({"GRAFANA_ADMIN_PASSWORD": password} if password is not None else {})}
    result = subprocess.run(["/bin/sh", "-c", local], env=env, capture_output=True, text=True, timeout=30)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return result.stdout


def test_grafana_password_is_generated_once_and_kept(services: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    file = tmp_path / "admin-password"
    printed = run_password_script(services, file, None)
    generated = file.read_text()
    assert re.fullmatch(r"[A-Za-z0-9]{24}", generated)
    assert file.stat().st_mode & 0o777 == 0o600
    assert printed.splitlines() == [
        "Grafana admin password: generated",
        f"log in to http://127.0.0.1:3000 as admin; the password: docker compose exec grafana cat {file}",
    ]
    assert generated not in printed  # the logs say where the password is, not what it is
    assert run_password_script(services, file, "").startswith("Grafana admin password: kept from an earlier start")
    assert file.read_text() == generated
    other = tmp_path / "other"
    run_password_script(services, other, None)
    assert other.read_text() != generated


def test_a_set_grafana_admin_password_wins(services: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    file = tmp_path / "admin-password"
    run_password_script(services, file, None)
    printed = run_password_script(services, file, "s3cret with spaces & 'quotes'")
    assert printed.startswith("Grafana admin password: taken from GRAFANA_ADMIN_PASSWORD\n")
    assert file.read_text() == "s3cret with spaces & 'quotes'"
    assert file.stat().st_mode & 0o777 == 0o600


def test_every_mounted_path_exists(services: dict[str, dict[str, Any]]) -> None:
    mounts = [(name, source) for name, service in services.items() for source, _ in bind_mounts(service)]
    assert mounts
    missing = [f"{name}: {source}" for name, source in mounts if not (REPO_ROOT / source).exists()]
    assert missing == []


def test_promml_commands_parse(services: dict[str, dict[str, Any]]) -> None:
    for name in PROMML_SERVICES:
        for argv in promml_commands(services[name]):
            assert argv[0] in cli.COMMANDS, f"{name}: unknown promml command {argv[0]!r}"
            try:
                cli.build_parser(argv).parse_args(argv)
            except SystemExit:
                pytest.fail(f"{name}: `promml {shlex.join(argv)}` does not parse")


def demo_exporter_config() -> ExporterConfig:
    path = REPO_ROOT / "exporter/demo/exporter.yml"
    return parse_config(yaml.safe_load(path.read_text()), path.parent)


def test_demo_exporter_config_parses() -> None:
    config = demo_exporter_config()
    assert config == ExporterConfig(
        model_name="credit-risk", model_version="1.0.0", baseline=Path("/data/baseline.json"),
        prediction_logs=("/logs/predictions*.jsonl",), feedback_logs=("/logs/feedback*.jsonl",),
        listen_host="0.0.0.0", listen_port=9102, window_seconds=300.0, slot_seconds=10.0,
        recompute_interval_seconds=10.0, poll_interval_seconds=1.0, segments=("region",),
    )


@pytest.mark.parametrize("replica", REPLICAS)
def test_exporter_reads_what_the_other_services_write(services: dict[str, dict[str, Any]], replica: str) -> None:
    config = demo_exporter_config()
    exporter, model_server = services[f"exporter-{replica}"], services[f"model-server-{replica}"]
    assert ("./exporter/demo/exporter.yml", option(exporter["command"], "--config")) in bind_mounts(exporter)
    data_dir, baseline_out = "/data", None
    for argv in promml_commands(services["baseline"]):
        if argv[0] == "baseline":
            baseline_out = option(argv, "--out")
            assert (option(argv, "--model-name"), option(argv, "--model-version")) == (
                config.model_name, config.model_version)
    assert baseline_out == str(config.baseline)
    assert volume_target(services["baseline"], "data") == data_dir
    assert volume_target(exporter, "data") == data_dir
    log_dir = option(model_server["command"], "--log-dir")
    assert volume_target(model_server, f"logs-{replica}") == log_dir
    assert volume_target(exporter, f"logs-{replica}") == log_dir
    assert {str(Path(pattern).parent) for pattern in config.prediction_logs + config.feedback_logs} == {log_dir}
    assert published_ports(exporter)[0][2] == config.listen_port
    assert {name: condition["condition"] for name, condition in exporter["depends_on"].items()} == {
        "baseline": "service_completed_successfully", f"model-server-{replica}": "service_started",
    }


def named_volumes(service: dict[str, Any]) -> set[str]:
    return {entry.split(":")[0] for entry in service.get("volumes", []) if not entry.startswith((".", "/"))}


def test_each_replica_has_its_own_logs_and_exporter(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    """Each replica's logs live in a volume of their own, written by that replica only and read by its exporter
    only (read-only): an exporter reading both would count every prediction of the fleet twice."""
    logs = {name for name in compose["volumes"] if name.startswith("logs")}
    assert logs == {f"logs-{replica}" for replica in REPLICAS}
    users = {volume: sorted(name for name, service in services.items() if volume in named_volumes(service))
             for volume in logs}
    assert users == {f"logs-{r}": [f"exporter-{r}", f"model-server-{r}"] for r in REPLICAS}
    for replica in REPLICAS:
        assert f"logs-{replica}:/logs:ro" in services[f"exporter-{replica}"]["volumes"]
        assert f"logs-{replica}:/logs" in services[f"model-server-{replica}"]["volumes"]


@pytest.mark.parametrize("replica", REPLICAS)
def test_traffic_is_split_across_the_replicas(services: dict[str, dict[str, Any]], replica: str) -> None:
    traffic = services[f"traffic-{replica}"]
    url = urlsplit(option(traffic["command"], "--url"))
    assert (url.hostname, url.port) == (f"model-server-{replica}", 8000)
    assert float(option(traffic["command"], "--rps")) == 5.0  # half of the single generator's default 10
    assert traffic["depends_on"] == {f"model-server-{replica}": {"condition": "service_healthy"}}
    assert f"http://model-server-{replica}:8000/healthz" in traffic["healthcheck"]["test"][-1]


def test_prometheus_scrapes_every_replica_and_its_exporter(services: dict[str, dict[str, Any]]) -> None:
    prometheus = yaml.safe_load((REPO_ROOT / "prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: [t for static in job["static_configs"] for t in static["targets"]]
            for job in prometheus["scrape_configs"]}
    assert jobs["model-server"] == [f"model-server-{replica}:8000" for replica in REPLICAS]
    assert jobs["promml-exporter"] == [f"exporter-{replica}:9102" for replica in REPLICAS]
    scraped = {target.rsplit(":", 1)[0] for targets in jobs.values() for target in targets}
    serving = {name for name in services if name.startswith(("model-server", "exporter"))}
    assert serving <= scraped


def test_prometheus_targets_are_compose_services(services: dict[str, dict[str, Any]]) -> None:
    prometheus = yaml.safe_load((REPO_ROOT / "prometheus/prometheus.yml").read_text())
    targets = [
        target
        for job in prometheus["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    ] + [
        target
        for alertmanagers in prometheus["alerting"]["alertmanagers"]
        for static in alertmanagers["static_configs"]
        for target in static["targets"]
    ]
    assert targets
    for target in targets:
        host, port = target.rsplit(":", 1)
        service = "prometheus" if host == "localhost" else host
        assert service in services, f"{target}: no compose service {service!r}"
        assert int(port) in [container for _, _, container in published_ports(services[service])], target


def test_alertmanager_sends_pagerduty_events_to_the_receiver(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    alertmanager = services["alertmanager"]
    assert alertmanager["entrypoint"] == ["/bin/sh", "-c"]
    (script,) = alertmanager["command"]
    prepare, run = script.split("&&")
    assert shlex.split(run)[:2] == ["exec", "/bin/alertmanager"]
    config_in_container = dict(bind_mounts(alertmanager))["./alertmanager/alertmanager.yml"]
    rendered_in_container = option([arg for part in shlex.split(run) for arg in part.split("=", 1)], "--config.file")
    rendered = tmp_path / "alertmanager.yml"
    local = prepare.replace(config_in_container, str(REPO_ROOT / "alertmanager/alertmanager.yml"))
    local = local.replace(rendered_in_container, str(rendered))
    subprocess.run(["/bin/sh", "-c", local], check=True, timeout=30)

    shipped = yaml.safe_load((REPO_ROOT / "alertmanager/alertmanager.yml").read_text())
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.fail("amtool is not installed: run `make install-system`")
    check = subprocess.run([amtool, "check-config", str(rendered)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    patched = yaml.safe_load(rendered.read_text())
    assert patched["global"].pop("pagerduty_url") == PAGERDUTY_URL
    assert patched == shipped
    url = urlsplit(PAGERDUTY_URL)
    assert url.hostname == "receiver"
    assert url.port in [container for _, _, container in published_ports(services["receiver"])]
    receiver.create_app().url_map.bind("receiver").match(url.path, method="POST")


def test_notification_links_open_on_the_receiver(services: dict[str, dict[str, Any]]) -> None:
    """The links base of the templates is the receiver as a browser on the host reaches it; the receiver serves the
    runbooks from the mounted docs/runbooks and sends dashboard links on to Grafana's published port."""
    templates = "".join(path.read_text() for path in (REPO_ROOT / "alertmanager/templates").glob("*.tmpl"))
    (base,) = re.findall(r'\{\{ define "promml\.links\.base" \}\}([^{]*)\{\{ end \}\}', templates)
    receiver_service = services["receiver"]
    [(host, port, _)] = published_ports(receiver_service)
    assert base == f"http://{host}:{port}"
    argv = receiver_service["command"]
    assert ("./docs/runbooks", option(argv, "--runbooks-dir")) in bind_mounts(receiver_service)
    [(grafana_host, grafana_port, _)] = published_ports(services["grafana"])
    assert option(argv, "--grafana-url") == f"http://{grafana_host}:{grafana_port}"


def test_demo_slack_webhook_is_the_receiver(services: dict[str, dict[str, Any]]) -> None:
    secrets = dict(bind_mounts(services["alertmanager"]))
    assert secrets["./alertmanager/demo-secrets"] == "/etc/alertmanager/secrets"
    url = urlsplit((REPO_ROOT / "alertmanager/demo-secrets/slack_webhook_url").read_text().strip())
    assert (url.hostname, url.port) == ("receiver", 9096)
    receiver.create_app().url_map.bind("receiver").match(url.path, method="POST")


def dockerignored(path: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, f"{pattern}/*") for pattern in patterns)


def test_image_installs_the_package_and_runs_it_as_the_compose_user(services: dict[str, dict[str, Any]]) -> None:
    context = REPO_ROOT / "exporter"
    instructions = [
        line.split(None, 1)
        for line in (context / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    ignored = [
        line.strip() for line in (context / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    stages = [args for verb, args in instructions if verb == "FROM"]
    assert stages == ["python:3.11-bookworm AS build", "python:3.11-slim-bookworm"]  # a compiler only to build
    copied = [args.split()[:-1] for verb, args in instructions if verb == "COPY"]
    assert copied == [["pyproject.toml", "setup.py"], ["src"], ["--from=build", "/wheels"]]
    for source in ["pyproject.toml", "setup.py", "src"]:
        assert (context / source).exists() and not dockerignored(source, ignored), source
    assert dockerignored("src/promml/__pycache__", ignored) and dockerignored("src/promml.egg-info", ignored)
    # a scanner compiled on the host must not reach the image, which compiles its own
    assert dockerignored("src/promml/exporter/_fastscan.cpython-311-x86_64-linux-gnu.so", ignored)
    (user,) = [args for verb, args in instructions if verb == "USER"]
    assert {services[name]["user"] for name in PROMML_SERVICES} == {user} == {"10001:10001"}
    (entrypoint,) = [args for verb, args in instructions if verb == "ENTRYPOINT"]
    (script,) = metadata.entry_points(group="console_scripts", name="promml")
    assert entrypoint == '["promml"]' and script.value == "promml.cli:main"
