#!/usr/bin/env python3
"""Assemble, start, stop and inspect a local Kafka (KRaft) and Elasticsearch.

Both servers come from Maven Central: Kafka 3.9.1 with its runtime classpath,
and Elasticsearch 7.10.2 through elasticsearch-cluster-runner. Artifacts, data
and logs live under ``$YUQING_HOME`` (default ``~/.cache/yuqing``), outside
the clone. Standard library only, so it runs before any virtualenv exists.

    python3 deploy/local/infra.py fetch|up|down|status [kafka|es]

Settings (environment):
    YUQING_HOME                   cache and state root (default ~/.cache/yuqing)
    YUQING_KAFKA_PORT             broker port (default 19092)
    YUQING_KAFKA_CONTROLLER_PORT  KRaft controller port (default 19093)
    YUQING_KAFKA_HEAP             broker heap (default 512m)
    YUQING_ES_PORT                HTTP port, 9201-9299 (default 9201)
    YUQING_ES_HEAP                Elasticsearch heap (default 1g)
    YUQING_INFRA_TIMEOUT          seconds to wait for health (default 120)
    JAVA                          java executable (default: java on PATH)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
KAFKA_VERSION = "3.9.1"
ES_VERSION = "7.10.2"


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


HOME = Path(_env("YUQING_HOME", str(Path.home() / ".cache" / "yuqing"))).expanduser()
KAFKA_PORT = int(_env("YUQING_KAFKA_PORT", "19092"))
CONTROLLER_PORT = int(_env("YUQING_KAFKA_CONTROLLER_PORT", "19093"))
ES_PORT = int(_env("YUQING_ES_PORT", "9201"))
TIMEOUT = float(_env("YUQING_INFRA_TIMEOUT", "120"))
JAVA = _env("JAVA", shutil.which("java") or "java")


class InfraError(RuntimeError):
    pass


@dataclass(frozen=True)
class Server:
    name: str
    libs: Path
    state: Path

    @property
    def pid_file(self) -> Path:
        return self.state / "server.pid"

    @property
    def log_file(self) -> Path:
        return self.state / "server.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid


KAFKA = Server("kafka", HOME / f"kafka-{KAFKA_VERSION}" / "libs", HOME / "run" / "kafka")
ES = Server("es", HOME / f"es-{ES_VERSION}" / "libs", HOME / "run" / "es")


def _log(message: str) -> None:
    print(f"[infra] {message}", flush=True)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _log_since(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def fetch(server: Server) -> None:
    """Resolve the server's jars from Maven Central into the cache (idempotent)."""
    marker = server.libs / ".complete"
    if marker.exists():
        return
    pom = HERE / ("kafka-pom.xml" if server is KAFKA else "es-pom.xml")
    _log(f"resolving {server.name} from Maven Central into {server.libs}")
    server.libs.mkdir(parents=True, exist_ok=True)
    cmd = [
        "mvn", "-q", "-B", f"-Dmaven.repo.local={HOME / 'm2'}", "-f", str(pom),
        "dependency:copy-dependencies", f"-DoutputDirectory={server.libs}",
    ]
    if subprocess.run(cmd, check=False).returncode != 0:
        raise InfraError(f"maven could not resolve {server.name}; see the output above")
    marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%S"))


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


_CHILDREN: dict[str, subprocess.Popen[bytes]] = {}


def _alive(server: Server) -> bool:
    child = _CHILDREN.get(server.name)
    if child is not None:  # our own child: a zombie still answers kill(pid, 0)
        return child.poll() is None
    return server.pid() is not None


def _spawn(server: Server, cmd: list[str]) -> None:
    server.state.mkdir(parents=True, exist_ok=True)
    with server.log_file.open("ab") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, cwd=server.state,
            start_new_session=True,
        )
    server.pid_file.write_text(str(proc.pid))
    _CHILDREN[server.name] = proc


def _wait(server: Server, healthy: callable, what: str) -> float:  # type: ignore[valid-type]
    start = time.monotonic()
    while time.monotonic() - start < TIMEOUT:
        if healthy():
            return time.monotonic() - start
        if not _alive(server):
            break
        time.sleep(0.5)
    raise InfraError(
        f"{server.name} did not become healthy ({what}) within {TIMEOUT:.0f}s.\n"
        f"--- last lines of {server.log_file} ---\n{_tail(server.log_file)}"
    )


def _kafka_properties() -> Path:
    data = KAFKA.state / "data"
    props = KAFKA.state / "server.properties"
    props.write_text("\n".join([
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@127.0.0.1:{CONTROLLER_PORT}",
        f"listeners=PLAINTEXT://127.0.0.1:{KAFKA_PORT},CONTROLLER://127.0.0.1:{CONTROLLER_PORT}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{KAFKA_PORT}",
        "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name=PLAINTEXT",
        f"log.dirs={data}",
        "num.partitions=1",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=10",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        # Topics are created by the project from schemas/, never implicitly.
        "auto.create.topics.enable=false",
        "group.initial.rebalance.delay.ms=0",
        "log.retention.hours=168",
        "",
    ]))
    (KAFKA.state / "log4j.properties").write_text("\n".join([
        "log4j.rootLogger=INFO, stdout",
        "log4j.appender.stdout=org.apache.log4j.ConsoleAppender",
        "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout",
        "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n",
        "log4j.logger.kafka=INFO",
        "log4j.logger.org.apache.kafka=WARN",
        "",
    ]))
    if not (data / "meta.properties").exists():
        cp = f"{KAFKA.libs}/*"
        cluster_id = subprocess.run(
            [JAVA, "-cp", cp, "kafka.tools.StorageTool", "random-uuid"],
            check=True, capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1]
        subprocess.run(
            [JAVA, "-cp", cp, "kafka.tools.StorageTool", "format", "-t", cluster_id,
             "-c", str(props)],
            check=True, capture_output=True, text=True,
        )
    return props


def up_kafka() -> None:
    if KAFKA.pid() is not None and _port_open(KAFKA_PORT):
        _log(f"kafka already running on 127.0.0.1:{KAFKA_PORT}")
        return
    if _port_open(KAFKA_PORT):
        raise InfraError(f"port {KAFKA_PORT} is taken by another process; set YUQING_KAFKA_PORT")
    fetch(KAFKA)
    KAFKA.state.mkdir(parents=True, exist_ok=True)
    props = _kafka_properties()
    heap = _env("YUQING_KAFKA_HEAP", "512m")
    # Read only what this start wrote: the log is appended across restarts, and a broker
    # with many partitions logs hundreds of lines right after the start line.
    since = KAFKA.log_file.stat().st_size if KAFKA.log_file.exists() else 0
    _spawn(KAFKA, [
        JAVA, f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC",
        f"-Dlog4j.configuration=file:{KAFKA.state / 'log4j.properties'}",
        "-cp", f"{KAFKA.libs}/*", "kafka.Kafka", str(props),
    ])
    took = _wait(KAFKA, lambda: "Kafka Server started" in _log_since(KAFKA.log_file, since)
                 and _port_open(KAFKA_PORT), "broker start")
    _log(f"kafka up on 127.0.0.1:{KAFKA_PORT} in {took:.1f}s")


def _es_root() -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ES_PORT}/", timeout=2) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError):
        return None


def _es_healthy() -> bool:
    try:
        url = f"http://127.0.0.1:{ES_PORT}/_cluster/health?wait_for_status=yellow&timeout=1s"
        with urllib.request.urlopen(url, timeout=3) as resp:
            return json.loads(resp.read()).get("status") in ("yellow", "green")
    except (OSError, ValueError):
        return False


def up_es() -> None:
    if not 9201 <= ES_PORT <= 9299:
        raise InfraError("YUQING_ES_PORT must be within 9201-9299 (cluster-runner limit)")
    if ES.pid() is not None and _es_healthy():
        _log(f"elasticsearch already running on 127.0.0.1:{ES_PORT}")
        return
    if _port_open(ES_PORT):
        raise InfraError(f"port {ES_PORT} is taken by another process; set YUQING_ES_PORT")
    fetch(ES)
    conf = ES.state / "data" / "node_1" / "config"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "elasticsearch.yml").write_text("\n".join([
        "network.host: 127.0.0.1",
        "discovery.type: single-node",
        # a laptop's nearly full disk must not turn the index read-only mid-test
        "cluster.routing.allocation.disk.threshold_enabled: false",
        "",
    ]))
    heap = _env("YUQING_ES_HEAP", "1g")
    _spawn(ES, [
        JAVA, f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC",
        # The python client's product check accepts only the 'default' flavour.
        "-Des.distribution.flavor=default",
        "-Dlog4j2.disable.jmx=true",
        "-cp", f"{ES.libs}/*", "org.codelibs.elasticsearch.runner.ElasticsearchClusterRunner",
        "-basePath", str(ES.state / "data"), "-numOfNode", "1",
        "-baseHttpPort", str(ES_PORT - 1), "-clusterName", "yuqing-local",
    ])
    took = _wait(ES, _es_healthy, "cluster health yellow")
    root = _es_root() or {}
    flavor = root.get("version", {}).get("build_flavor")
    if flavor != "default":
        raise InfraError(f"elasticsearch reports build_flavor={flavor!r}, expected 'default'")
    _log(f"elasticsearch {root['version']['number']} up on 127.0.0.1:{ES_PORT} in {took:.1f}s")


def down(server: Server) -> None:
    pid = server.pid()
    if pid is None:
        _log(f"{server.name} not running")
        return
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while server.pid() is not None and time.monotonic() < deadline:
        time.sleep(0.3)
    if server.pid() is not None:
        os.killpg(pid, signal.SIGKILL)
    server.pid_file.unlink(missing_ok=True)
    _log(f"{server.name} stopped")


def status() -> int:
    kafka_ok = KAFKA.pid() is not None and _port_open(KAFKA_PORT)
    es_ok = ES.pid() is not None and _es_healthy()
    _log(f"kafka  127.0.0.1:{KAFKA_PORT}  {'up' if kafka_ok else 'down'}  log: {KAFKA.log_file}")
    _log(f"es     127.0.0.1:{ES_PORT}  {'up' if es_ok else 'down'}  log: {ES.log_file}")
    return 0 if kafka_ok and es_ok else 1


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"fetch", "up", "down", "status", "reset"}:
        print(__doc__)
        return 2
    action, which = argv[0], (argv[1] if len(argv) > 1 else "all")
    servers = {"kafka": [KAFKA], "es": [ES], "all": [KAFKA, ES]}[which]
    try:
        if action == "fetch":
            for server in servers:
                fetch(server)
        elif action == "up":
            for server in servers:
                up_kafka() if server is KAFKA else up_es()
        elif action == "down":
            for server in servers:
                down(server)
        elif action == "reset":
            for server in servers:
                down(server)
                shutil.rmtree(server.state, ignore_errors=True)
        else:
            return status()
    except InfraError as exc:
        print(f"[infra] ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
