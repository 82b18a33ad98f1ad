/**
 * recipes/kubernetes: plain manifests (no kustomize), so nothing here needs kubectl or a
 * cluster. The manifests are parsed with `yaml` and checked to fit together: the headless
 * Service and the StatefulSet (selector, serviceName, named ports, probes on the admin port),
 * the ConfigMap that holds node.yaml and start.sh (the only copy of either), the Secrets that
 * make-certs.sh writes (run for real, with `macula` from source) and the volumes that mount
 * them. Each pod's entry point, run with the ConfigMap's and its Secrets' contents laid out
 * where the pod mounts them, passes `macula node up --check` with its own name, seeds and
 * certificate. The Kubernetes API schema is not checked (that needs an API server).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, parseAllDocuments } from "yaml";
import { execForm, instructions } from "./containerfile.ts";
import { FakeRoot, maculaShim, recipe, RECIPES, subjectAltName, tool } from "./helpers.ts";

// deno-lint-ignore no-explicit-any
type Obj = any;

const K8S = join(RECIPES, "kubernetes");
const NAMESPACE = "mesh";

/** The objects of a manifest file (every document; YAML errors fail the test). */
function objects(path: string): Obj[] {
  return parseAllDocuments(readFileSync(path, "utf8")).map((d) => {
    if (d.errors.length > 0) throw d.errors[0];
    return d.toJS();
  }).filter((o) => o !== null);
}

/** The manifests a user applies with `kubectl apply -f .`: the folder's *.yaml files. */
const manifests = readdirSync(K8S).filter((f) => /\.(ya?ml|json)$/.test(f)).sort();
const docs: Obj[] = manifests.flatMap((f) => objects(join(K8S, f)));
const oneOf = (kind: string): Obj => {
  const found = docs.filter((d) => d.kind === kind);
  if (found.length !== 1) throw new Error(`${kind}: expected one, got ${found.length}`);
  return found[0];
};
const sts = () => oneOf("StatefulSet");
const container = () => sts().spec.template.spec.containers[0];
const configMap = () => oneOf("ConfigMap");
const podConfig = () => parse(configMap().data["node.yaml"]) as Obj;
const volumes = (): Record<string, Obj> =>
  Object.fromEntries(sts().spec.template.spec.volumes.map((v: Obj) => [v.name, v]));
const mountedAt = (): Record<string, string> =>
  Object.fromEntries(container().volumeMounts.map((m: Obj) => [m.name, m.mountPath]));

let dir: string;
let work: string;
let secrets: Obj[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "macula-k8s-"));
  work = join(dir, "kubernetes");
  cpSync(K8S, work, { recursive: true });
  const made = await tool(["sh", join(work, "make-certs.sh")], {
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      MACULA: maculaShim(join(dir, "bin")),
      NAMESPACE,
    },
  });
  if (made.code !== 0) throw new Error(`make-certs.sh failed: ${made.stderr}`);
  secrets = objects(join(work, "certs", "secrets.yaml"));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("recipes/kubernetes: the manifests", () => {
  test("the folder applies as a Service, a StatefulSet and a ConfigMap; no kustomization", () => {
    expect(manifests).toEqual(["configmap.yaml", "service.yaml", "statefulset.yaml"]);
    expect(docs.map((d) => d.kind).sort()).toEqual(["ConfigMap", "Service", "StatefulSet"]);
    for (const d of docs) {
      expect(typeof d.apiVersion).toBe("string");
      expect(d.metadata.labels["app.kubernetes.io/part-of"]).toBe("macula");
      // Applied with `kubectl -n <namespace>`: no namespace is fixed in them.
      expect(d.metadata.namespace).toBeUndefined();
    }
  });

  test("the ConfigMap holds node.yaml and start.sh, and the pods mount it at /etc/macula", () => {
    expect(Object.keys(configMap().data).sort()).toEqual(["node.yaml", "start.sh"]);
    expect(configMap().data["start.sh"]).toStartWith("#!/bin/sh\n");
    expect(configMap().data["start.sh"]).toEndWith('exec macula node up --config "$config" "$@"\n');
    expect(volumes().config.configMap.name).toBe(configMap().metadata.name);
    expect(mountedAt().config).toBe("/etc/macula");
    expect(container().command).toEqual(["/bin/sh", "/etc/macula/start.sh"]);
    // start.sh reads the shared config from the mount, and the credentials from the creds mount.
    expect(configMap().data["start.sh"]).toContain("cp /etc/macula/node.yaml ");
    expect(configMap().data["start.sh"]).toContain(`creds="${mountedAt().creds}/$POD_NAME"`);
  });

  test("the Service is headless, selects the pods, and publishes them before they are ready", () => {
    const svc = oneOf("Service");
    expect(svc.spec.clusterIP).toBe("None");
    expect(svc.spec.publishNotReadyAddresses).toBe(true);
    expect(sts().spec.serviceName).toBe(svc.metadata.name);
    expect(sts().spec.selector.matchLabels).toEqual(svc.spec.selector);
    for (const [k, v] of Object.entries(svc.spec.selector)) {
      expect(sts().spec.template.metadata.labels[k]).toBe(v);
    }
    const ports = Object.fromEntries(
      container().ports.map((p: Obj) => [p.name, [p.containerPort, p.protocol]]),
    );
    expect(ports).toEqual({ quic: [4433, "UDP"], admin: [9433, "TCP"] });
    for (const p of svc.spec.ports) expect(ports[p.targetPort]).toEqual([p.port, p.protocol]);
    // start.sh's default Service name and the one the StatefulSet passes are this one.
    const env = Object.fromEntries(container().env.map((e: Obj) => [e.name, e.value]));
    expect(env.MACULA_SERVICE).toBe(svc.metadata.name);
    expect(configMap().data["start.sh"]).toContain(
      `service=\${MACULA_SERVICE:-${svc.metadata.name}}`,
    );
  });

  test("probes: liveness and startup on /healthz, readiness on /readyz, all on the admin port", () => {
    const c = container();
    expect(c.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "admin" });
    expect(c.startupProbe.httpGet).toEqual({ path: "/healthz", port: "admin" });
    expect(c.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "admin" });
    // The kubelet probes the pod's address: the admin listener is on all of the pod's.
    const admin = c.ports.find((p: Obj) => p.name === "admin").containerPort;
    expect(podConfig().admin.listen).toBe(`0.0.0.0:${admin}`);
    expect(podConfig().listen.port).toBe(c.ports.find((p: Obj) => p.name === "quic").containerPort);
    // Prometheus's pod annotations name the same port and the metrics path.
    const ann = sts().spec.template.metadata.annotations;
    expect(ann["prometheus.io/port"]).toBe(String(admin));
    expect(ann["prometheus.io/path"]).toBe("/metrics");
  });

  test("the pods run as the image's user, read-only, with no capabilities", () => {
    const user = instructions(recipe("container/Containerfile")).filter((i) => i.op === "USER")
      .at(-1)!.args;
    const pod = sts().spec.template.spec.securityContext;
    expect(`${pod.runAsUser}:${pod.runAsGroup}`).toBe(user);
    expect(pod.runAsNonRoot).toBe(true);
    expect(container().securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    });
    expect(sts().spec.template.spec.automountServiceAccountToken).toBe(false);
  });

  test("every volume is mounted, every mount has its volume; data is the claim template", () => {
    expect(mountedAt()).toEqual({
      config: "/etc/macula",
      creds: "/etc/macula-nodes",
      data: "/var/lib/macula",
      tmp: "/tmp",
    });
    const claims = sts().spec.volumeClaimTemplates.map((v: Obj) => v.metadata.name);
    expect(claims).toEqual(["data"]);
    expect(Object.keys(volumes()).sort()).toEqual(
      Object.keys(mountedAt()).filter((m) => !claims.includes(m)).sort(),
    );
    expect(podConfig().data_dir).toBe(mountedAt().data);
    // No mount inside another one (a volume under a ConfigMap's mount is fragile).
    const paths = Object.values(mountedAt());
    for (const a of paths) for (const b of paths) if (a !== b) expect(a).not.toStartWith(`${b}/`);
  });
});

describe("recipes/kubernetes: make-certs.sh and its Secrets", () => {
  test("one Secret per replica, named as the StatefulSet mounts them, in the namespace", () => {
    expect(secrets.length).toBe(sts().spec.replicas);
    const sources = volumes().creds.projected.sources.map((s: Obj) => s.secret);
    expect(sources.map((s: Obj) => s.name)).toEqual(secrets.map((s) => s.metadata.name));
    for (const [i, s] of secrets.entries()) {
      expect(s.apiVersion).toBe("v1");
      expect(s.kind).toBe("Secret");
      expect(s.type).toBe("Opaque");
      expect(s.metadata.name).toBe(`macula-${i}-tls`);
      expect(s.metadata.namespace).toBe(NAMESPACE);
      expect(s.metadata.labels).toEqual(configMap().metadata.labels);
      // Each pod's three files under its pod's name.
      expect(sources[i].items).toEqual(
        ["ca.pem", "cert.pem", "key.pem"].map((f) => ({ key: f, path: `macula-${i}/${f}` })),
      );
    }
  });

  test("each Secret holds its pod's files byte for byte; the pod's DNS name is in its certificate", async () => {
    for (const [i, s] of secrets.entries()) {
      const pod = `macula-${i}`;
      expect(Object.keys(s.data).sort()).toEqual(["ca.pem", "cert.pem", "key.pem"]);
      for (const [k, v] of Object.entries(s.data)) {
        const file = readFileSync(join(work, "certs", pod, k));
        expect(Buffer.from(v as string, "base64").equals(file)).toBe(true);
      }
      const san = await subjectAltName(join(work, "certs", pod, "cert.pem"));
      expect(san.code).toBe(0);
      expect(san.stdout).toContain(`DNS:${pod}.macula.${NAMESPACE}.svc.cluster.local`);
    }
    // The CA's key is not in any Secret, and the file of Secrets is not readable by others.
    const caKey = readFileSync(join(work, "certs", "ca", "ca.key")).toString("base64");
    expect(readFileSync(join(work, "certs", "secrets.yaml"), "utf8")).not.toContain(caKey);
    expect(statSync(join(work, "certs", "secrets.yaml")).mode & 0o077).toBe(0);
  });

  test("make-certs.sh refuses to overwrite certs/ (exit 1) and a REPLICAS that is not a number (exit 2)", async () => {
    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", MACULA: join(dir, "bin", "macula") };
    const again = await tool(["sh", join(work, "make-certs.sh")], { env });
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("certs/ exists already");
    const fresh = join(dir, "fresh");
    cpSync(K8S, fresh, { recursive: true });
    const bad = await tool(["sh", join(fresh, "make-certs.sh")], {
      env: { ...env, REPLICAS: "3; rm" },
    });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe("make-certs.sh: REPLICAS must be a number, not '3; rm'\n");
  });
});

describe("recipes/kubernetes: each pod's entry point", () => {
  /** Pod `pod`'s file system: the ConfigMap's and its Secrets' contents where the pod mounts them. */
  function podRoot(pod: string): FakeRoot {
    const at = mountedAt();
    const root = new FakeRoot(join(dir, pod), Object.values(at));
    for (const [k, v] of Object.entries(configMap().data)) {
      root.write(`${at.config}/${k}`, v as string);
    }
    for (const { secret } of volumes().creds.projected.sources) {
      const data = secrets.find((s) => s.metadata.name === secret.name).data;
      for (const it of secret.items) {
        root.write(`${at.creds}/${it.path}`, atob(data[it.key]), 0o600);
      }
    }
    root.mkdir(at.tmp!);
    root.mkdir(at.data!);
    return root;
  }

  /** The container's environment for `pod` (fieldRefs resolved as the kubelet would). */
  function podEnv(pod: string): Record<string, string> {
    const env: Record<string, string> = { PATH: `${join(dir, "bin")}:${process.env.PATH}` };
    for (const e of container().env) {
      const ref = e.valueFrom?.fieldRef?.fieldPath;
      env[e.name] = ref === "metadata.name"
        ? pod
        : ref === "metadata.namespace"
        ? NAMESPACE
        : e.value;
    }
    return env;
  }

  for (const pod of ["macula-0", "macula-1"]) {
    test(`${pod}: its entry point with its ConfigMap and Secret passes \`node up --check\``, async () => {
      const root = podRoot(pod);
      const cmd = container().command.map((a: string) => root.rewrite(a));
      expect(cmd[0]).toBe("/bin/sh");
      const r = await tool([...cmd, "--check"], { env: podEnv(pod) });
      expect(r.stderr).toContain(`(${pod}) of realm acme`);
      expect(r.stderr).toContain("configuration ok");
      expect(r.code).toBe(0);
      const effective = parse(r.stdout) as Obj;
      const domain = `macula.${NAMESPACE}.svc.cluster.local`;
      expect(effective.advertise).toBe(`quic://${pod}.${domain}:4433`);
      // Every seed but itself.
      expect(effective.join).toEqual(
        ["macula-0", "macula-1", "macula-2"].filter((p) => p !== pod)
          .map((p) => `quic://${p}.${domain}:4433`),
      );
      expect(effective.tls.cert).toBe(root.path(`/etc/macula-nodes/${pod}/cert.pem`));
      expect(effective.data_dir).toBe(root.path("/var/lib/macula"));
    });
  }

  test("a pod whose Secret is not there fails the check (exit 2), naming the file", async () => {
    const root = podRoot("macula-3");
    const cmd = container().command.map((a: string) => root.rewrite(a));
    const r = await tool([...cmd, "--check"], { env: podEnv("macula-3") });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("macula-nodes/macula-3/ca.pem");
  });

  test("the entry point refuses to start without the downward API's POD_NAME", async () => {
    const root = podRoot("macula-0");
    const cmd = container().command.map((a: string) => root.rewrite(a));
    const env = podEnv("macula-0");
    delete env.POD_NAME;
    const r = await tool([...cmd, "--check"], { env });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("POD_NAME is not set (downward API)");
  });
});

// The image runs start.sh with /bin/sh; the Containerfile's runtime image must have one.
test("the image's entry point is the macula binary; the pods run start.sh with /bin/sh", () => {
  const file = instructions(recipe("container/Containerfile"));
  expect(execForm(file.find((i) => i.op === "ENTRYPOINT")!)).toEqual(["/usr/local/bin/macula"]);
  expect(file.filter((i) => i.op === "FROM").at(-1)!.args).toBe("${RUNTIME_IMAGE}");
  expect(recipe("container/Containerfile")).toContain("ARG RUNTIME_IMAGE=debian:bookworm-slim");
  expect(container().command).toEqual(["/bin/sh", "/etc/macula/start.sh"]);
});
