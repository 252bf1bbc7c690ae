"""A real Apache Kafka (KRaft) on this host, from the Maven Central jars, without Docker.

`LocalCluster` is what `hookstream kafka …` and the test fixtures drive: it resolves the
jars once into a cache, formats each node's storage once (a restart never reformats), starts
every node as its own JVM in its own session, and tracks each one by a pid file. One node is
a combined broker+controller (`--standalone`); three nodes are three combined nodes with
static voters, each of which can be SIGKILLed and started again on its own.

Ports: node i (1-based) of an n-node cluster listens for clients on base_port + i - 1 and
for the controller quorum on base_port + n + i - 1. One node on 9092 uses 9092 and 9093.

`secure=True` (`hookstream kafka start --secure`) makes the same cluster one an operator would
run: clients connect with SASL/SCRAM-SHA-512 over TLS (the client port), or with a client
certificate (mTLS, on base_port + 2n + i - 1); there is no plaintext listener at all. The
controller quorum and replication between nodes use mTLS with the broker's own certificate,
the one principal (besides `admin`) that is a super user. KRaft's StandardAuthorizer denies
whatever no ACL allows. `provision()` then creates one SCRAM user and one client certificate
per role and the role's ACLs (`hookstream.acls`), as the `admin` super user (over mTLS).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from hookstream_dev.errors import LocalKafkaError, MissingToolError
from hookstream_dev.process import CACHE, java_binary, port_open
from hookstream_dev.secure_files import new_password
from hookstream_dev.tls import CertificateAuthority, Identity

if TYPE_CHECKING:
    from hookstream.acls import Grant
    from hookstream.settings import KafkaConf

KAFKA_VERSION = "4.1.1"
DEFAULT_HOME = Path.home() / ".local" / "share" / "hookstream" / "kafka"
DEFAULT_JAR_CACHE = CACHE / f"kafka-{KAFKA_VERSION}"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
# The secured cluster's super users: the nodes themselves (their certificate's CN) and the
# user that provisions roles. Every other principal gets only what an ACL grants it.
BROKER_PRINCIPAL = "broker"
ADMIN_USER = "admin"
SCRAM_MECHANISM = "SCRAM-SHA-512"


def _resource(name: str) -> Path:
    return Path(str(resources.files("hookstream_dev") / "resources" / name))


def resolve_jars(cache: Path = DEFAULT_JAR_CACHE) -> Path:
    """The folder of broker jars, resolved with Maven on first use and cached after."""
    libs = cache / "libs"
    if (cache / "RESOLVED").exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise MissingToolError(
            "mvn not found: install Maven to fetch the Kafka jars (Debian: apt-get install maven)"
        )
    cache.mkdir(parents=True, exist_ok=True)
    staging = cache / "libs.partial"
    shutil.rmtree(staging, ignore_errors=True)
    cmd = [
        mvn, "-q", "-B", "-f", str(_resource("local-kafka-pom.xml")),
        "dependency:copy-dependencies", f"-DoutputDirectory={staging}", "-DincludeScope=runtime",
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
        raise LocalKafkaError(
            "Maven could not resolve the Kafka jars from Maven Central: " + " | ".join(tail)
        )
    # Swap in whole: a half-copied folder is never mistaken for the jars.
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    (cache / "RESOLVED").write_text(KAFKA_VERSION + "\n")
    return libs


def _new_cluster_id() -> str:
    while True:  # Kafka's own ids never start with "-" (it would read as a flag)
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


@dataclass(frozen=True)
class NodeStatus:
    node_id: int
    port: int
    pid: int | None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def describe(self) -> str:
        state = f"running (pid {self.pid})" if self.pid else "stopped"
        return f"node {self.node_id}: localhost:{self.port} {state}"


class LocalCluster:
    """One or three local KRaft nodes under `home`, which outlives stop and start."""

    def __init__(
        self,
        home: Path = DEFAULT_HOME,
        nodes: int | None = None,
        base_port: int | None = None,
        heap_mb: int = 512,
        jar_cache: Path = DEFAULT_JAR_CACHE,
        secure: bool | None = None,
    ) -> None:
        self.home = home
        self.heap_mb = heap_mb
        self.jar_cache = jar_cache
        self.nodes, self.base_port, self.secure = self._layout(nodes, base_port, secure)
        if self.nodes not in (1, 3):
            raise LocalKafkaError(f"--nodes {self.nodes}: choose 1 (one node) or 3 (a KRaft quorum)")
        # Children this object launched, so their exit is reaped rather than left as zombies.
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    # -- layout -----------------------------------------------------------------------------

    def _layout(self, nodes: int | None, base_port: int | None, secure: bool | None) -> tuple[int, int, bool]:
        """The cluster's shape (and whether it is secured) is fixed when it is first formatted;
        later calls must match (or leave it out, and get the saved one)."""
        meta = self.home / "cluster.json"
        if not meta.exists():
            return nodes or 1, base_port or 9092, bool(secure)
        saved = json.loads(meta.read_text())
        saved_secure = saved.get("secure", False)
        nodes, base_port = nodes or saved["nodes"], base_port or saved["base_port"]
        if (saved["nodes"], saved["base_port"]) != (nodes, base_port):
            raise LocalKafkaError(
                f"{self.home} holds a {saved['nodes']}-node cluster on port {saved['base_port']}; "
                "run `hookstream kafka reset` to start over, or pass the same --nodes/--port"
            )
        if secure is not None and secure != saved_secure:
            kind = "secured" if saved_secure else "plaintext"
            raise LocalKafkaError(
                f"{self.home} holds a {kind} cluster; run `hookstream kafka reset` to start over, "
                f"or use another --home for the {'plaintext' if saved_secure else 'secured'} one"
            )
        return nodes, base_port, saved_secure

    @property
    def node_ids(self) -> range:
        return range(1, self.nodes + 1)

    def port(self, node_id: int) -> int:
        return self.base_port + node_id - 1

    def controller_port(self, node_id: int) -> int:
        return self.base_port + self.nodes + node_id - 1

    def mtls_port(self, node_id: int) -> int:
        """The client-certificate listener of a secured node."""
        return self.base_port + 2 * self.nodes + node_id - 1

    def _ports(self, node_id: int) -> list[int]:
        ports = [self.port(node_id), self.controller_port(node_id)]
        return [*ports, self.mtls_port(node_id)] if self.secure else ports

    @property
    def bootstrap_servers(self) -> str:
        """Where clients connect (SASL/SCRAM over TLS on a secured cluster)."""
        return ",".join(f"localhost:{self.port(n)}" for n in self.node_ids)

    @property
    def mtls_bootstrap_servers(self) -> str:
        return ",".join(f"localhost:{self.mtls_port(n)}" for n in self.node_ids)

    def node_dir(self, node_id: int) -> Path:
        return self.home / f"node-{node_id}"

    def _pid_file(self, node_id: int) -> Path:
        return self.node_dir(node_id) / "kafka.pid"

    def _properties(self, node_id: int) -> Path:
        return self.node_dir(node_id) / "server.properties"

    def log_file(self, node_id: int) -> Path:
        return self.node_dir(node_id) / "logs" / "server.log"

    def _write_properties(self, node_id: int) -> None:
        replicas = min(3, self.nodes)
        quorum = (
            f"controller.quorum.bootstrap.servers=localhost:{self.controller_port(node_id)}"
            if self.nodes == 1
            else "controller.quorum.voters="
            + ",".join(f"{n}@localhost:{self.controller_port(n)}" for n in self.node_ids)
        )
        lines = [
            "process.roles=broker,controller",
            f"node.id={node_id}",
            quorum,
            *(self._secure_listeners(node_id) if self.secure else self._plain_listeners(node_id)),
            "controller.listener.names=CONTROLLER",
            f"log.dirs={self.node_dir(node_id) / 'data'}",
            # Topics are created on purpose (`hookstream topics create`), never by a typo.
            "auto.create.topics.enable=false",
            "num.partitions=1",
            f"default.replication.factor={replicas}",
            f"offsets.topic.replication.factor={replicas}",
            "offsets.topic.num.partitions=10",
            f"transaction.state.log.replication.factor={replicas}",
            f"transaction.state.log.min.isr={min(2, replicas)}",
            "group.initial.rebalance.delay.ms=0",
            "unclean.leader.election.enable=false",
        ]
        self._properties(node_id).write_text("\n".join(lines) + "\n")

    def _plain_listeners(self, node_id: int) -> list[str]:
        return [
            f"listeners=PLAINTEXT://localhost:{self.port(node_id)},"
            f"CONTROLLER://localhost:{self.controller_port(node_id)}",
            f"advertised.listeners=PLAINTEXT://localhost:{self.port(node_id)}",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        ]

    def _secure_listeners(self, node_id: int) -> list[str]:
        """SASL_SSL (SCRAM) and MTLS for clients; CONTROLLER on TLS with client certificates.

        The quorum and replication cannot use SCRAM: KRaft keeps SCRAM credentials in the
        metadata log the controllers serve, so they authenticate each other before any exist.
        They use the node's certificate instead, on loopback, never a plaintext port: a
        plaintext listener's ANONYMOUS principal would have to be a super user.
        """
        keystore = self._broker_identity().keystore()
        sasl, mtls, controller = self.port(node_id), self.mtls_port(node_id), self.controller_port(node_id)
        return [
            f"listeners=SASL_SSL://localhost:{sasl},MTLS://localhost:{mtls},CONTROLLER://localhost:{controller}",
            f"advertised.listeners=SASL_SSL://localhost:{sasl},MTLS://localhost:{mtls}",
            "listener.security.protocol.map=SASL_SSL:SASL_SSL,MTLS:SSL,CONTROLLER:SSL",
            "inter.broker.listener.name=MTLS",
            f"sasl.enabled.mechanisms={SCRAM_MECHANISM}",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={keystore}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={self._ca().cert_file}",
            "listener.name.sasl_ssl.ssl.client.auth=none",
            "listener.name.mtls.ssl.client.auth=required",
            "listener.name.controller.ssl.client.auth=required",
            # A certificate's principal is its CN, so User:producer is the same principal
            # whether it signs in with SCRAM or with a client certificate.
            "ssl.principal.mapping.rules=RULE:^CN=([^,]+)$/$1/,DEFAULT",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found=false",
            f"super.users=User:{BROKER_PRINCIPAL};User:{ADMIN_USER}",
        ]

    # -- the secured cluster's CA, users and ACLs ------------------------------------------------

    @property
    def tls_dir(self) -> Path:
        return self.home / "tls"

    @property
    def secrets_dir(self) -> Path:
        return self.home / "secrets"

    def _ca(self) -> CertificateAuthority:
        return CertificateAuthority(self.tls_dir)

    @property
    def ca_file(self) -> Path:
        return self._ca().cert_file

    def _broker_identity(self) -> Identity:
        identity = Identity(self.tls_dir / "broker.pem", self.tls_dir / "broker.key")
        if identity.keystore().exists():
            return identity
        return self._ca().issue(BROKER_PRINCIPAL, hosts=("localhost", "127.0.0.1"))

    def client_identity(self, user: str) -> Identity:
        """The client certificate (CN=user) of a role, issued by the cluster's CA on first use."""
        folder = self.tls_dir / "clients"
        identity = Identity(folder / f"{user}.pem", folder / f"{user}.key")
        if identity.cert.exists():
            return identity
        return self._ca().issue(user, folder=folder)

    def password_file(self, user: str) -> Path:
        """The SCRAM password of a role, made on first use (owner-readable only)."""
        return new_password(self.secrets_dir / f"{user}.password")

    def client_env(self, user: str, mtls: bool = False) -> dict[str, str]:
        """The environment a Hookstream client needs to connect as `user`: the pass-through
        HOOKSTREAM_LIBRDKAFKA_* variables, with the secret (password or key) named by file."""
        self._require_secure()
        prefix = "HOOKSTREAM_LIBRDKAFKA_"
        env = {f"{prefix}SSL_CA_LOCATION": str(self.ca_file)}
        if mtls:
            identity = self.client_identity(user)
            return {
                "KAFKA_BOOTSTRAP_SERVERS": self.mtls_bootstrap_servers,
                f"{prefix}SECURITY_PROTOCOL": "SSL",
                **env,
                f"{prefix}SSL_CERTIFICATE_LOCATION": str(identity.cert),
                f"{prefix}SSL_KEY_LOCATION": str(identity.key),
            }
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            f"{prefix}SECURITY_PROTOCOL": "SASL_SSL",
            f"{prefix}SASL_MECHANISM": SCRAM_MECHANISM,
            f"{prefix}SASL_USERNAME": user,
            f"{prefix}SASL_PASSWORD_FILE": str(self.password_file(user)),
            **env,
        }

    def admin_config(self) -> KafkaConf:
        """librdkafka settings of the `admin` super user (its certificate, on the mTLS port)."""
        if not self.secure:
            return {"bootstrap.servers": self.bootstrap_servers}
        identity = self.client_identity(ADMIN_USER)
        return {
            "bootstrap.servers": self.mtls_bootstrap_servers,
            "security.protocol": "SSL",
            "ssl.ca.location": str(self.ca_file),
            "ssl.certificate.location": str(identity.cert),
            "ssl.key.location": str(identity.key),
        }

    def _require_secure(self) -> None:
        if not self.secure:
            raise LocalKafkaError(
                f"{self.home} holds a plaintext cluster: roles need `hookstream kafka start --secure`"
            )

    def provision(self, grants: Mapping[str, Iterable[Grant]], timeout_s: float = 30.0) -> None:
        """One SCRAM user (and client certificate) per role, and the role's ACLs; idempotent.
        Kafka keeps only a salted hash of each password; the files under `secrets/` are the
        only copy, and running this again re-sets each user to its file's password."""
        from confluent_kafka.admin import AdminClient

        from hookstream.acls import apply_grants, set_scram_passwords

        self._require_secure()
        admin = AdminClient(self.admin_config())
        set_scram_passwords(admin, {user: self.password_file(user).read_text().strip() for user in grants})
        for user in grants:
            self.client_identity(user)
        apply_grants(admin, grants, timeout_s)

    def _format(self, java: str, libs: Path) -> None:
        meta = self.home / "cluster.json"
        if self.secure:
            # The broker certificate before the properties that name it.
            self._broker_identity()
        cluster_id = json.loads(meta.read_text())["cluster_id"] if meta.exists() else _new_cluster_id()
        for node_id in self.node_ids:
            (self.node_dir(node_id) / "logs").mkdir(parents=True, exist_ok=True)
            self._write_properties(node_id)
            if (self.node_dir(node_id) / "data" / "meta.properties").exists():
                continue  # formatted before: the data it holds is kept
            cmd = [java, "-Xmx256m", "-cp", f"{libs}/*", "kafka.tools.StorageTool", "format",
                   "-t", cluster_id, "-c", str(self._properties(node_id))]  # fmt: skip
            if self.nodes == 1:
                cmd.append("--standalone")
            result = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise LocalKafkaError(
                    f"formatting node {node_id} failed: {(result.stdout + result.stderr).strip()}"
                )
        shape = {"nodes": self.nodes, "base_port": self.base_port, "secure": self.secure}
        meta.write_text(json.dumps({**shape, "cluster_id": cluster_id}))

    # -- processes --------------------------------------------------------------------------

    def pid(self, node_id: int) -> int | None:
        """The pid of this node's JVM, if the pid file names one of ours that still runs."""
        child = self._children.get(node_id)
        if child is not None:
            # Our own child: ask the kernel. Its cmdline can read empty for a moment while
            # the java launcher re-executes itself, which the check below would misread.
            if child.poll() is None:
                return child.pid
            del self._children[node_id]
        pid_file = self._pid_file(node_id)
        try:
            pid = int(pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        # A reused pid belongs to someone else: only a JVM running our properties is ours.
        if str(self._properties(node_id)).encode() not in cmdline:
            return None
        return pid

    def status(self) -> list[NodeStatus]:
        return [NodeStatus(n, self.port(n), self.pid(n)) for n in self.node_ids]

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start every node that is not running, and wait until the cluster answers."""
        java = java_binary(17, f"Kafka {KAFKA_VERSION}")
        libs = resolve_jars(self.jar_cache)
        self.home.mkdir(parents=True, exist_ok=True)
        self._format(java, libs)
        started = [n for n in self.node_ids if self.pid(n) is None]
        for node_id in started:
            self._launch(node_id, java, libs)
        self._wait_ready(started, timeout_s)

    def start_node(self, node_id: int, timeout_s: float = START_TIMEOUT_S) -> None:
        self._check_node(node_id)
        if self.pid(node_id) is not None:
            return
        self._launch(node_id, java_binary(17, f"Kafka {KAFKA_VERSION}"), resolve_jars(self.jar_cache))
        self._wait_ready([node_id], timeout_s)

    def _check_node(self, node_id: int) -> None:
        if node_id not in self.node_ids:
            raise LocalKafkaError(f"node {node_id} does not exist: nodes are 1..{self.nodes}")
        if not self._properties(node_id).exists():
            raise LocalKafkaError("the cluster was never started: run `hookstream kafka start`")

    def _launch(self, node_id: int, java: str, libs: Path) -> None:
        for port in self._ports(node_id):
            if port_open(port):
                raise LocalKafkaError(f"port {port} is taken by another process; stop it or use --port")
        logs = self.node_dir(node_id) / "logs"
        heap = f"{self.heap_mb}m"
        cmd = [
            java, f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={_resource('log4j2.properties')}",
            f"-Dkafka.logs.dir={logs}",
            "-cp", f"{libs}/*", "kafka.Kafka", str(self._properties(node_id)),
        ]  # fmt: skip
        with open(logs / "stdout.log", "ab") as out:
            # Its own session: Ctrl-C in the terminal that started it does not reach the JVM.
            process = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        self._children[node_id] = process
        self._pid_file(node_id).write_text(f"{process.pid}\n")

    def _wait_ready(self, node_ids: list[int], timeout_s: float) -> None:
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout_s
        pending = set(node_ids)
        admin: AdminClient | None = None
        while pending:
            for node_id in sorted(pending):
                if self.pid(node_id) is None:
                    raise LocalKafkaError(
                        f"node {node_id} exited during start-up; see {self.log_file(node_id)} "
                        f"and {self.log_file(node_id).with_name('stdout.log')}"
                    )
            # Ask for metadata only once every port listens: librdkafka logs each refusal.
            if all(port_open(port) for n in pending for port in self._ports(n)):
                admin = admin or AdminClient(self.admin_config())
                with contextlib.suppress(Exception):  # not answering yet: the deadline decides
                    pending -= set(admin.list_topics(timeout=2).brokers)
            if pending and time.monotonic() > deadline:
                raise LocalKafkaError(
                    f"node(s) {sorted(pending)} did not answer within {timeout_s:.0f}s; "
                    f"see {self.log_file(min(pending))}"
                )
            if pending:
                time.sleep(0.3)

    def kill(self, node_id: int) -> None:
        """SIGKILL one node, as a crash would; its data stays for `start_node`."""
        self._check_node(node_id)
        self._signal_and_wait([node_id], signal.SIGKILL, STOP_TIMEOUT_S)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop every node: SIGTERM all at once (a lone survivor cannot shut down cleanly
        without a quorum), then SIGKILL whatever is left after the timeout."""
        running = [n for n in self.node_ids if self.pid(n) is not None]
        left = self._signal_and_wait(running, signal.SIGTERM, timeout_s)
        self._signal_and_wait(left, signal.SIGKILL, timeout_s)

    def _signal_and_wait(self, node_ids: list[int], sig: int, timeout_s: float) -> list[int]:
        """Signal the nodes; return those still running when the timeout ran out."""
        pids = {n: self.pid(n) for n in node_ids}
        for pid in pids.values():
            if pid is not None:
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            alive = [n for n in node_ids if self.pid(n) is not None]
            if not alive:
                break
            time.sleep(0.2)
        for node_id in node_ids:
            if self.pid(node_id) is None:
                self._pid_file(node_id).unlink(missing_ok=True)
        return [n for n in node_ids if self.pid(n) is not None]

    def reset(self) -> None:
        """Stop the cluster and delete everything it held."""
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)


def fetch() -> str:
    """The broker jars, resolved into the cache (what `hookstream kafka fetch` does)."""
    libs = resolve_jars(DEFAULT_JAR_CACHE)
    return f"Kafka {KAFKA_VERSION}: {len(list(libs.glob('*.jar')))} jars in {libs}"
