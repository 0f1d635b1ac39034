"""Issue 5: the docker compose deployment, tested without a Docker engine.

- compose.yaml parses with every real compose implementation on the machine
  (the docker CLI's `docker compose`, Debian's `docker-compose`), and the
  resolved file has the shape the README promises;
- every environment variable compose sets for a backfill service is one
  the binary it runs documents in --help (and so reads);
- the Dockerfile builds with the same scripts/build.sh the test suite
  uses, and its runtime stage installs exactly the shared libraries the
  binaries link."""
import json
import os
import re
import shutil
import subprocess

import pytest

from harness import ROOT, binary

COMPOSE = os.path.join(ROOT, "compose.yaml")
DOCKERFILE = os.path.join(ROOT, "Dockerfile")
OUR_BINARIES = {"backfill-producer", "backfill-consumer", "backfill-sink", "backfill-tail",
                "backfill-status", "backfill-web"}
# Variables compose itself interpolates must not leak in from the test run.
CLEAN_ENV = {k: v for k, v in os.environ.items()
             if not (k.startswith("BACKFILL_") or k.startswith("GITHUB_") or k.startswith("KAFKA_")
                     or k in ("DATABASE_URL", "POSTGRES_PASSWORD", "COMPOSE_FILE",
                              "COMPOSE_PROFILES", "COMPOSE_PROJECT_NAME"))}


def implementations():
    """(name, argv prefix) of each compose implementation that runs here."""
    found = []
    if shutil.which("docker"):
        v = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if v.returncode == 0:
            found.append(("docker compose", ["docker", "compose"]))
    if shutil.which("docker-compose"):
        found.append(("docker-compose", ["docker-compose"]))
    return found


def resolved(prefix):
    """compose.yaml as the implementation resolves it (anchors, merges,
    interpolation), with the tools profile, as a dict."""
    args = [*prefix, "-f", COMPOSE, "--profile", "tools", "config"]
    if prefix == ["docker", "compose"]:
        out = subprocess.run([*args, "--format", "json"], capture_output=True, text=True,
                             cwd=ROOT, env=CLEAN_ENV, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)
    out = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=CLEAN_ENV, timeout=60)
    assert out.returncode == 0, out.stderr
    # Debian's docker-compose prints YAML; it depends on python3-yaml, so the
    # system interpreter it runs on can turn that into JSON.
    conv = subprocess.run(["/usr/bin/python3", "-c",
                           "import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"],
                          input=out.stdout, capture_output=True, text=True, timeout=60)
    assert conv.returncode == 0, conv.stderr
    return json.loads(conv.stdout)


def configs():
    impls = implementations()
    if not impls:
        pytest.skip("no compose implementation on this machine (neither `docker compose` nor "
                    "Debian's docker-compose, which scripts/install-deps.sh installs)")
    return [(name, resolved(prefix)) for name, prefix in impls]


def entry(svc):
    """The service's command line, without the image's secret-copying
    wrapper (backfill-as-user COMMAND...)."""
    ep = svc.get("entrypoint") or []
    ep = ep if isinstance(ep, list) else ep.split()
    return ep[1:] if ep[:1] == ["backfill-as-user"] else ep


def ours(cfg):
    return {name: svc for name, svc in cfg["services"].items()
            if entry(svc) and entry(svc)[0] in OUR_BINARIES}


def test_compose_file_parses_and_has_the_promised_shape():
    for impl, cfg in configs():
        s = cfg["services"]
        assert set(s) == {"kafka", "kafka-init", "postgres", "sink", "consumer", "producer",
                          "tail", "status", "web", "prometheus"}, impl
        # Prometheus only on demand, scraping what deploy/prometheus.yml names
        assert s["prometheus"]["profiles"] == ["prometheus"], impl
        assert any("deploy/prometheus.yml" in (v if isinstance(v, str) else v.get("source", ""))
                   for v in s["prometheus"]["volumes"]), impl
        assert re.fullmatch(r"apache/kafka:3\.9\.\d+", s["kafka"]["image"]), impl
        assert re.fullmatch(r"postgres:\d+\.\d+.*", s["postgres"]["image"]), impl
        for svc in ("kafka", "postgres"):
            assert s[svc]["healthcheck"]["test"], f"{impl}: {svc} has no healthcheck"
            assert s[svc]["restart"] == "unless-stopped"
            assert s[svc].get("volumes"), f"{impl}: {svc} keeps no data"
        assert s["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert s["kafka-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert s["consumer"]["deploy"]["replicas"] == 5, impl
        for svc in ("sink", "consumer"):
            assert s[svc]["restart"] == "unless-stopped"
            assert s[svc]["depends_on"]["kafka-init"]["condition"] == \
                "service_completed_successfully"
        assert s["sink"]["depends_on"]["postgres"]["condition"] == "service_healthy"
        # the web: on the host's loopback only; it, the sink and every consumer
        # are checked through their own /healthz (PROGRAM --healthcheck)
        web = s["web"]
        assert web["restart"] == "unless-stopped"
        for svc in ("sink", "consumer", "web"):
            assert s[svc]["healthcheck"]["test"][-2:] == [f"backfill-{svc}", "--healthcheck"], \
                f"{impl}: {svc}: {s[svc]['healthcheck']['test']}"
            assert s[svc]["environment"]["BACKFILL_METRICS_LISTEN"] == "0.0.0.0:9100", impl
        ports = [(p.get("host_ip"), str(p.get("target"))) if isinstance(p, dict)
                 else (p.split(":")[0], p.split(":")[-1].split("/")[0]) for p in web["ports"]]
        assert ports == [("127.0.0.1", "8080")], f"{impl}: {web['ports']}"
        for svc in ("producer", "tail", "status"):
            assert s[svc]["profiles"] == ["tools"], f"{impl}: {svc} must be run on demand"
        assert entry(s["producer"]) == ["backfill-producer"]  # `run --rm producer owner/name`
        assert entry(s["tail"]) == ["backfill-tail"]
        # the token: a secret file, never a value in the environment
        env = s["consumer"]["environment"]
        assert "GITHUB_TOKEN" not in env
        secret = env["GITHUB_TOKEN_FILE"]
        names = [x["source"] if isinstance(x, dict) else x for x in s["consumer"]["secrets"]]
        # read where backfill-as-user copies it for uid 10001 (works with a 0600 file)
        assert secret == f"/run/backfill-secrets/{names[0]}" and names[0] in cfg["secrets"]
        assert s["consumer"]["entrypoint"][0] == "backfill-as-user"
        assert any("/run/backfill-secrets" in t for t in s["consumer"]["tmpfs"])
        # Postgres through libpq's variables (any password), never a URI
        for svc in ("sink", "status", "web"):
            assert "DATABASE_URL" not in s[svc]["environment"], f"{impl}: {svc}"
            assert s[svc]["environment"]["PGHOST"] == "postgres"
        # the tools start at once: they never wait for (and so re-run) kafka-init
        for svc in ("producer", "tail", "status"):
            assert "kafka-init" not in (s[svc].get("depends_on") or {}), f"{impl}: {svc}"
        # every topic is made in one place, the control topic included
        init = " ".join(s["kafka-init"]["command"] if isinstance(s["kafka-init"]["command"], list)
                        else [s["kafka-init"]["command"]])
        assert "backfill.control" in init and \
            s["consumer"]["environment"]["BACKFILL_CONTROL_TOPIC"] == "backfill.control"
        # the broker's health check starts no JVM
        assert "kafka-" not in " ".join(s["kafka"]["healthcheck"]["test"])
        # every backfill service runs the image the Dockerfile builds
        for name, svc in ours(cfg).items():
            assert svc["image"].startswith("backfill:") and svc.get("build"), f"{impl}: {name}"


def test_compose_sets_only_variables_the_binaries_read():
    checked = 0
    for impl, cfg in configs():
        for name, svc in ours(cfg).items():
            exe = entry(svc)[0]
            help_text = subprocess.run([binary(exe), "--help"], capture_output=True, text=True,
                                       timeout=30).stdout
            assert help_text, f"{exe} --help printed nothing"
            for var in svc.get("environment") or {}:
                assert re.search(rf"\b{re.escape(var)}\b", help_text), \
                    f"{impl}: service {name} sets {var}, which {exe} --help does not mention"
                checked += 1
    assert checked >= 10


def test_dockerfile_builds_with_the_test_build_script():
    with open(DOCKERFILE) as f:
        text = f.read()
    stages = re.split(r"(?m)^FROM\s+", text)[1:]
    assert len(stages) >= 2, "multi-stage: build, then runtime"
    build, runtime = stages[0], stages[-1]
    assert re.search(r"(?m)^RUN\s.*\bscripts/build\.sh\b", build), "build stage must run scripts/build.sh"
    with open(os.path.join(ROOT, "scripts", "test.sh")) as f:
        assert re.search(r"(?m)^[^#\n]*\bscripts/build\.sh\b", f.read()), \
            "scripts/test.sh must build with scripts/build.sh too"
    with open(os.path.join(ROOT, "scripts", "build.sh")) as f:
        assert "-DBACKFILL_WERROR=ON" in f.read()
    # runtime: slim base, not root, no compiler
    assert runtime.split()[0].endswith("-slim")
    user = re.findall(r"(?m)^USER\s+(\S+)", runtime)
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert "build-essential" not in runtime and "-dev" not in runtime

    # The runtime stage installs the package of every library the binaries
    # link directly (libc is in the base image), and copies the librdkafka
    # the build stage built, with the packages of what that one links.
    installed = set(re.findall(r"\b(lib[a-z0-9.+-]+|zlib1g|ca-certificates)\b", runtime))

    def needed(path):
        out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True,
                             check=True).stdout
        return [lib for lib in re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out)
                if not re.match(r"(lib(c|m|pthread|dl|rt|asan|ubsan|tsan|gcc_s)|ld-linux.*)\.so", lib)]

    def packaged(lib, who):
        found = subprocess.run(["dpkg", "-S", f"*/{lib}"], capture_output=True, text=True)
        owners = {line.split(":")[0] for line in found.stdout.splitlines() if ":" in line}
        assert owners, f"{who}: no Debian package holds {lib}"
        assert owners & installed, \
            f"{who} links {lib} ({', '.join(sorted(owners))}), not installed in the image"

    for exe in OUR_BINARIES:
        for lib in needed(binary(exe)):
            if lib != "librdkafka.so.1":
                packaged(lib, exe)
                continue
            assert re.search(r"(?m)^COPY --from=build \S*/librdkafka\.so\.1 ", runtime), \
                "the runtime stage must copy the librdkafka the build stage built"
            ldd = subprocess.run(["ldd", binary(exe)], capture_output=True, text=True,
                                 check=True).stdout
            path = re.search(r"librdkafka\.so\.1 => (\S+)", ldd).group(1)
            for dep in needed(path):
                packaged(dep, path)