#!/usr/bin/python3
"""examples/kubernetes: the manifest parses and carries what the deployment
needs (SPEC §0, §0.1, §7); the init container's arguments are accepted by
dnsproxy-init; the Dockerfile builds and ships both binaries.

The image itself cannot be built here (no registry access), so the
Dockerfile gets a static check only.
"""
import os
import subprocess
import sys
import tempfile
import unittest

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
EXAMPLE = os.path.join(ROOT, "examples", "kubernetes")
INIT = os.environ.get("DNSPROXY_INIT_BIN",
                      os.path.join(ROOT, "build", "dnsproxy-init"))


def load_pod():
    with open(os.path.join(EXAMPLE, "dnsproxy-pod.yaml")) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    pods = [d for d in docs if d.get("kind") == "Pod"]
    assert len(pods) == 1, "expected one Pod, got %r" % [d.get("kind")
                                                          for d in docs]
    return pods[0]


def by_name(items, name):
    found = [i for i in items or [] if i.get("name") == name]
    assert len(found) == 1, "no single %r in %r" % (
        name, [i.get("name") for i in items or []])
    return found[0]


def flag_value(args, flag):
    assert flag in args, "%s missing from %r" % (flag, args)
    return args[args.index(flag) + 1]


class PodManifest(unittest.TestCase):
    def setUp(self):
        self.pod = load_pod()
        self.spec = self.pod["spec"]

    def test_init_container_runs_dnsproxy_init_with_net_admin_and_raw(self):
        init = by_name(self.spec["initContainers"], "dnsproxy-init")
        self.assertEqual(init["command"], ["dnsproxy-init"])
        sc = init["securityContext"]
        self.assertEqual(sc["runAsUser"], 0)
        self.assertFalse(sc.get("privileged", False))
        self.assertLessEqual({"NET_ADMIN", "NET_RAW"},
                             set(sc["capabilities"]["add"]))
        self.assertEqual(sc["capabilities"]["drop"], ["ALL"])

    def test_init_container_exempts_uid_and_gid_1337(self):
        args = by_name(self.spec["initContainers"], "dnsproxy-init")["args"]
        self.assertEqual(flag_value(args, "--proxy-uid"), "1337")
        self.assertEqual(flag_value(args, "--proxy-gid"), "1337")
        self.assertEqual(flag_value(args, "--dns-port"), "15053")

    def test_sidecar_runs_as_1337_without_privileges(self):
        proxy = by_name(self.spec["containers"], "dnsproxy")
        self.assertEqual(proxy["command"], ["dnsproxy"])
        sc = proxy["securityContext"]
        self.assertEqual(sc["runAsUser"], 1337)
        self.assertEqual(sc["runAsGroup"], 1337)
        self.assertTrue(sc["runAsNonRoot"])
        self.assertFalse(sc["allowPrivilegeEscalation"])
        self.assertNotIn("add", sc.get("capabilities", {}))

    def test_sidecar_talks_to_istiod_and_binds_admin_on_pod_ip(self):
        args = by_name(self.spec["containers"], "dnsproxy")["args"]
        self.assertEqual(flag_value(args, "--xds"),
                         "istiod.istio-system.svc:15012")
        self.assertEqual(flag_value(args, "--admin"), "0.0.0.0:15020")
        self.assertEqual(flag_value(args, "--xds-root-cert"),
                         "/var/run/secrets/istio/root-cert.pem")
        self.assertEqual(flag_value(args, "--xds-token"),
                         "/var/run/secrets/tokens/istio-token")

    def test_readiness_probe_is_healthz_ready_on_15020(self):
        probe = by_name(self.spec["containers"],
                        "dnsproxy")["readinessProbe"]["httpGet"]
        self.assertEqual(probe["path"], "/healthz/ready")
        self.assertEqual(probe["port"], 15020)

    def test_sidecar_comes_before_the_application(self):
        names = [c["name"] for c in self.spec["containers"]]
        self.assertEqual(names[0], "dnsproxy")

    def test_root_cert_and_token_volumes_as_istio_mounts_them(self):
        mounts = {m["name"]: m for m in by_name(
            self.spec["containers"], "dnsproxy")["volumeMounts"]}
        self.assertEqual(mounts["istiod-ca-cert"]["mountPath"],
                         "/var/run/secrets/istio")
        self.assertEqual(mounts["istio-token"]["mountPath"],
                         "/var/run/secrets/tokens")
        ca = by_name(self.spec["volumes"], "istiod-ca-cert")
        self.assertEqual(ca["configMap"]["name"], "istio-ca-root-cert")
        self.assertIn("root-cert.pem",
                      [i["path"] for i in ca["configMap"]["items"]])
        token = by_name(self.spec["volumes"], "istio-token")
        sat = token["projected"]["sources"][0]["serviceAccountToken"]
        self.assertEqual(sat, {"audience": "istio-ca",
                               "expirationSeconds": 43200,
                               "path": "istio-token"})

    def test_node_identity_comes_from_the_downward_api(self):
        env = {e["name"]: e for e in by_name(self.spec["containers"],
                                             "dnsproxy")["env"]}
        for name, path in (("POD_NAME", "metadata.name"),
                           ("POD_NAMESPACE", "metadata.namespace"),
                           ("INSTANCE_IP", "status.podIP")):
            self.assertEqual(env[name]["valueFrom"]["fieldRef"]["fieldPath"],
                             path)

    @unittest.skipUnless(os.access(INIT, os.X_OK), "dnsproxy-init not built")
    def test_dnsproxy_init_accepts_the_init_container_args(self):
        args = by_name(self.spec["initContainers"], "dnsproxy-init")["args"]
        with tempfile.NamedTemporaryFile("w", suffix=".conf") as rc:
            rc.write("nameserver 10.96.0.10\n")
            rc.flush()
            p = subprocess.run([INIT] + args + ["--dry-run", "--resolv-conf",
                                                rc.name],
                               capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("--to-port 15053", p.stdout)
        self.assertIn("--uid-owner 1337", p.stdout)


class Dockerfile(unittest.TestCase):
    def setUp(self):
        with open(os.path.join(EXAMPLE, "Dockerfile")) as f:
            self.text = f.read()
        self.lines = [l.strip() for l in self.text.splitlines()
                      if l.strip() and not l.lstrip().startswith("#")]

    def test_builds_on_debian_12_and_runs_on_slim(self):
        froms = [l for l in self.lines if l.startswith("FROM ")]
        self.assertEqual(len(froms), 2, froms)
        self.assertTrue(froms[0].startswith("FROM debian:12 AS "), froms[0])
        self.assertEqual(froms[1], "FROM debian:12-slim")

    def test_ships_both_binaries_and_runs_as_1337(self):
        copy = [l for l in self.lines if l.startswith("COPY --from=")]
        self.assertEqual(len(copy), 1, copy)
        self.assertIn("/dnsproxy ", copy[0])
        self.assertIn("/dnsproxy-init ", copy[0])
        self.assertIn("USER 1337:1337", self.lines)
        for pkg in ("ca-certificates", "iptables", "nftables",
                    "libc-ares-dev", "libssl-dev", "cmake"):
            self.assertIn(pkg, self.text)
        # The default build is static but for libc (DNSPROXY_STATIC_DEPS):
        # the runtime stage installs no shared library of ours.
        runtime = self.text.split("FROM debian:12-slim", 1)[1]
        for lib in ("libc-ares2", "libevent-2.1-7", "libssl3",
                    "libjansson4"):
            self.assertNotIn(lib, runtime)
        self.assertNotIn("DNSPROXY_STATIC_DEPS=OFF", self.text)


if __name__ == "__main__":
    unittest.main(verbosity=2)
