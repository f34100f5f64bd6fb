// deploy/: the kustomize overlays render, every object passes the Kubernetes schema, and the
// manifests and Dockerfiles agree with the services' own settings (names, ports, flags, mains).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  AllowedRoots,
  NATS_USERS,
  natsPermissions,
  parseAllowedRoots,
  SYSTEM_DATASETS_ROOT,
  type NatsUser,
} from '@noisystudent/core';
import { LABELER_ENV_PREFIX, labelerConfig, labelerConfigSchema } from '@noisystudent/labeler';
import { configOptions, envName, flagName } from '@noisystudent/runtime';
import { TEACHER_ENV_PREFIX, teacherConfig, teacherConfigSchema } from '@noisystudent/teacher';
import { TRAINER_ENV_PREFIX, trainerConfig, trainerConfigSchema } from '@noisystudent/trainer';
import { ConfigMap, Namespace, Service } from 'kubernetes-models/v1';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

import { containersOf, readYamlDocuments, renderKustomization, type KubeObject } from './kustomize.js';

const ROOT = join(import.meta.dirname, '..', '..');
const K8S = join(ROOT, 'deploy', 'k8s');
const OVERLAYS = ['cpu', 'gpu'] as const;

interface ServiceSpec {
  prefix: string;
  envNames: Set<string>;
  flags: Set<string>;
  main: string;
  /** The config a container would start with, from its flags and environment (throws on a bad value). */
  parse(
    flags: Record<string, unknown>,
    env: NodeJS.ProcessEnv,
  ): { port: number; metricsPort: number; healthPort?: number };
}

function serviceSpec(
  name: string,
  schema: Parameters<typeof configOptions>[0],
  prefix: string,
  parse: ServiceSpec['parse'],
): ServiceSpec {
  const keys = configOptions(schema, prefix).map((option) => option.key);
  return {
    prefix,
    envNames: new Set(keys.map((key) => envName(key, prefix))),
    flags: new Set(keys.map(flagName)),
    main: `services/${name}/dist/main.js`,
    parse,
  };
}

const SERVICES: Record<string, ServiceSpec> = {
  teacher: serviceSpec('teacher', teacherConfigSchema, TEACHER_ENV_PREFIX, teacherConfig),
  labeler: serviceSpec('labeler', labelerConfigSchema, LABELER_ENV_PREFIX, labelerConfig),
  trainer: serviceSpec('trainer', trainerConfigSchema, TRAINER_ENV_PREFIX, trainerConfig),
};

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

const rendered = Object.fromEntries(
  OVERLAYS.map((overlay) => [overlay, renderKustomization(join(K8S, 'overlays', overlay))]),
);

function find(objects: KubeObject[], kind: string, name: string): KubeObject {
  const object = objects.find((candidate) => candidate.kind === kind && candidate.metadata.name === name);
  if (object === undefined) throw new Error(`no ${kind} ${name}`);
  return object;
}

/** Which service a container runs: the main of its command. */
function serviceOf(container: Record<string, unknown>): [string, ServiceSpec] {
  const command = [
    ...((container['command'] as string[] | undefined) ?? []),
    ...((container['args'] as string[] | undefined) ?? []),
  ];
  const entry = Object.entries(SERVICES).find(([, spec]) => command.includes(spec.main));
  if (entry === undefined)
    throw new Error(`container ${String(container['name'])}: command ${JSON.stringify(command)} runs no service main`);
  return entry;
}

/** `--max-batch-size 64` pairs after the main, as commander would hand them to the config. */
function flagsOf(container: Record<string, unknown>, spec: ServiceSpec): Record<string, unknown> {
  const command = [
    ...((container['command'] as string[] | undefined) ?? []),
    ...((container['args'] as string[] | undefined) ?? []),
  ];
  const rest = command.slice(command.indexOf(spec.main) + 1);
  const flags: Record<string, unknown> = {};
  for (let index = 0; index < rest.length; index += 2) {
    const flag = rest[index] ?? '';
    expect(spec.flags, `flag ${flag}`).toContain(flag);
    flags[flag.slice(2).replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase())] = rest[index + 1];
  }
  return flags;
}

/** The environment a container gets: its ConfigMaps (envFrom), then its own `env`. */
function envOf(container: Record<string, unknown>, objects: KubeObject[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const source of (container['envFrom'] as Array<{ configMapRef?: { name: string } }> | undefined) ?? []) {
    if (source.configMapRef === undefined) throw new Error('envFrom: only configMapRef is expected');
    Object.assign(env, find(objects, 'ConfigMap', source.configMapRef.name)['data']);
  }
  for (const variable of (container['env'] as Array<{ name: string; value?: string }> | undefined) ?? []) {
    env[variable.name] = variable.value ?? '';
  }
  return env;
}

function portNumber(container: Record<string, unknown>, port: unknown): number {
  if (typeof port === 'number') return port;
  const named = (container['ports'] as Array<{ name?: string; containerPort: number }>).find(
    (entry) => entry.name === port,
  );
  if (named === undefined) throw new Error(`container ${String(container['name'])}: no port named ${String(port)}`);
  return named.containerPort;
}

describe.each(OVERLAYS)('deploy/k8s/overlays/%s', (overlay) => {
  const objects = rendered[overlay] ?? [];
  const workloads = objects.filter((object) => containersOf(object).length > 0);

  it('renders the objects of the three services, each valid against the Kubernetes schema', () => {
    expect(objects.map((object) => `${object.kind}/${object.metadata.name}`).sort()).toEqual(
      [
        'ConfigMap/ns-config',
        'Deployment/ns-labeler',
        'Deployment/ns-teacher',
        'HorizontalPodAutoscaler/ns-teacher',
        'Namespace/noisystudent',
        'PodDisruptionBudget/ns-teacher',
        'Service/ns-labeler',
        'Service/ns-teacher',
        'Service/ns-trainer',
        'StatefulSet/ns-trainer',
      ].sort(),
    );
    for (const object of objects) {
      const Model = MODELS[`${object.apiVersion}/${object.kind}`];
      expect(Model, `a schema for ${object.apiVersion} ${object.kind}`).toBeDefined();
      if (Model === undefined) continue;
      expect(() => new Model(object as never).validate(), `${object.kind} ${object.metadata.name}`).not.toThrow();
      if (object.kind !== 'Namespace') expect(object.metadata.namespace).toBe('noisystudent');
    }
  });

  it('renders what kubectl kustomize renders', (context) => {
    let output: string;
    try {
      output = execFileSync('kubectl', ['kustomize', join(K8S, 'overlays', overlay)], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      });
    } catch {
      context.skip();
      return;
    }
    const key = (object: KubeObject) => `${object.kind}/${object.metadata.name}`;
    const byKey = (list: KubeObject[]) => Object.fromEntries(list.map((object) => [key(object), object]));
    const kubectl = parseAllDocuments(output).map((document) => document.toJS() as KubeObject);
    expect(byKey(objects)).toEqual(byKey(kubectl));
  });

  it('names only settings the services have, in variables and flags, with values they accept', () => {
    const variables = objects
      .filter((object) => object.kind === 'ConfigMap')
      .flatMap((object) => Object.keys((object['data'] as Record<string, string> | undefined) ?? {}))
      .concat(
        workloads
          .flatMap(containersOf)
          .flatMap((container) =>
            ((container['env'] as Array<{ name: string }> | undefined) ?? []).map((variable) => variable.name),
          ),
      );
    for (const variable of variables.filter((name) => name.startsWith('NS_'))) {
      const owner = Object.values(SERVICES).find((spec) => variable.startsWith(spec.prefix));
      expect(owner, `${variable}: NS_TEACHER_*, NS_LABELER_* or NS_TRAINER_*`).toBeDefined();
      expect(owner?.envNames, variable).toContain(variable);
    }
    for (const container of workloads.flatMap(containersOf)) {
      const [, spec] = serviceOf(container);
      expect(() => spec.parse(flagsOf(container, spec), envOf(container, objects))).not.toThrow();
    }
  });

  it('opens the ports the services listen on, probes gRPC health on the health port and scrapes /metrics', () => {
    expect(workloads.map((object) => serviceOf(containersOf(object)[0] ?? {})[0]).sort()).toEqual([
      'labeler',
      'teacher',
      'trainer',
    ]);
    for (const workload of workloads) {
      const container = containersOf(workload)[0] ?? {};
      const [name, spec] = serviceOf(container);
      const config = spec.parse(flagsOf(container, spec), envOf(container, objects));
      const ports = container['ports'] as Array<{ name: string; containerPort: number }>;
      expect(ports, name).toEqual([
        { name: 'grpc', containerPort: config.port },
        { name: 'metrics', containerPort: config.metricsPort },
        { name: 'health', containerPort: config.healthPort },
      ]);
      // The gRPC port serves TLS, which Kubernetes' gRPC probes cannot speak: they ask the health port.
      expect(container['readinessProbe'], name).toMatchObject({ grpc: { port: config.healthPort } });
      const liveness = container['livenessProbe'] as { httpGet?: { path: string; port: unknown } };
      expect(liveness.httpGet?.path).toBe('/metrics');
      expect(portNumber(container, liveness.httpGet?.port)).toBe(config.metricsPort);
      const template = (workload['spec'] as { template: { metadata: { annotations: Record<string, string> } } })
        .template;
      expect(template.metadata.annotations).toEqual({
        'prometheus.io/scrape': 'true',
        'prometheus.io/port': String(config.metricsPort),
        'prometheus.io/path': '/metrics',
      });
      const service = find(objects, 'Service', workload.metadata.name);
      const servicePorts = (service['spec'] as { ports: Array<{ port: number; targetPort: unknown }> }).ports;
      for (const servicePort of servicePorts) {
        expect(servicePort.port, `${name} Service`).toBe(config.port);
        expect(portNumber(container, servicePort.targetPort)).toBe(config.port);
      }
      expect((service['spec'] as { selector: Record<string, string> }).selector).toEqual(
        (workload['spec'] as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels,
      );
    }
  });

  it('starts every service off loopback with TLS and tokens, every file it reads in a mounted Secret', () => {
    const volumes = (workload: KubeObject): Record<string, { secret?: { secretName: string } }> =>
      Object.fromEntries(
        (
          (
            workload['spec'] as {
              template: { spec: { volumes?: Array<{ name: string; secret?: { secretName: string } }> } };
            }
          ).template.spec.volumes ?? []
        ).map((volume) => [volume.name, volume]),
      );
    for (const workload of workloads) {
      const container = containersOf(workload)[0] ?? {};
      const [name, spec] = serviceOf(container);
      const config = spec.parse(flagsOf(container, spec), envOf(container, objects)) as Record<string, unknown>;
      expect(config['host'], name).toBe('0.0.0.0');
      expect(config['insecure'], name).toBe(false);
      const files = [
        'tlsCert',
        'tlsKey',
        'tokensFile',
        'teacherTlsCa',
        'teacherTokenFile',
        'natsPasswordFile',
        'natsTlsCa',
      ].flatMap((key) => (typeof config[key] === 'string' ? [[key, config[key] as string] as const] : []));
      expect(
        files.map(([key]) => key),
        name,
      ).toEqual(expect.arrayContaining(['tlsCert', 'tlsKey', 'tokensFile', 'natsPasswordFile', 'natsTlsCa']));
      const mounts = (container['volumeMounts'] as Array<{ name: string; mountPath: string }> | undefined) ?? [];
      for (const [key, path] of files) {
        const mount = mounts.find((entry) => path.startsWith(`${entry.mountPath}/`));
        expect(mount, `${name} ${key} ${path}: under a volume mount`).toBeDefined();
        expect(volumes(workload)[mount?.name ?? '']?.secret, `${name} ${key}: from a Secret`).toBeDefined();
      }
    }
  });

  it('wires the labeler to every teacher pod, NATS to the 3-node cluster and the trainer to its volume', () => {
    const teacherService = find(objects, 'Service', 'ns-teacher');
    expect((teacherService['spec'] as { clusterIP?: string }).clusterIP).toBe('None');
    const labeler = containersOf(find(objects, 'Deployment', 'ns-labeler'))[0] ?? {};
    const labelerSettings = labelerConfig({}, envOf(labeler, objects));
    const teacherContainer = containersOf(find(objects, 'Deployment', 'ns-teacher'))[0] ?? {};
    const teacherSettings = teacherConfig({}, envOf(teacherContainer, objects));
    expect(labelerSettings.teachers).toBe(
      `dns:///ns-teacher.${teacherService.metadata.namespace}.svc.cluster.local:${teacherSettings.port}`,
    );
    expect((find(objects, 'Deployment', 'ns-labeler')['spec'] as { replicas: number }).replicas).toBe(2);

    for (const workload of workloads) {
      const container = containersOf(workload)[0] ?? {};
      const [, spec] = serviceOf(container);
      const env = envOf(container, objects);
      expect(env[`${spec.prefix}NATS_REPLICAS`]).toBe('3');
      expect(env[`${spec.prefix}HOST`]).toBe('0.0.0.0');
      expect(env[`${spec.prefix}NATS_URL`]?.split(',')).toEqual(
        [0, 1, 2].map((node) => `nats://nats-${node}.nats-headless.noisystudent.svc.cluster.local:4222`),
      );
    }
    const [values] = readYamlDocuments(join(K8S, 'nats-values.yaml')) as Array<{
      fullnameOverride: string;
      config: {
        cluster: { enabled: boolean; replicas: number };
        jetstream: { enabled: boolean; fileStore: { enabled: boolean; pvc: { enabled: boolean } } };
      };
    }>;
    expect(values?.fullnameOverride).toBe('nats');
    expect(values?.config.cluster).toMatchObject({ enabled: true, replicas: 3 });
    expect(values?.config.jetstream).toMatchObject({
      enabled: true,
      fileStore: { enabled: true, pvc: { enabled: true } },
    });
    // The NATS users: each service's permissions exactly as the code defines them, passwords from the Secret.
    const users = values as unknown as {
      config: {
        merge: {
          authorization: {
            users: Array<{
              user: string;
              password: string;
              permissions: { publish: { allow: string[] }; subscribe: { allow: string[] } };
            }>;
          };
        };
      };
      container: { env: Record<string, { valueFrom: { secretKeyRef: { name: string; key: string } } }> };
    };
    const granted = natsPermissions('ns');
    expect(users.config.merge.authorization.users.map((entry) => entry.user)).toEqual([...NATS_USERS]);
    for (const entry of users.config.merge.authorization.users) {
      const user = entry.user as NatsUser;
      expect(entry.permissions, user).toEqual({
        publish: { allow: granted[user].publish },
        subscribe: { allow: granted[user].subscribe },
      });
      const variable = /^<< \$(\w+) >>$/.exec(entry.password)?.[1] ?? '';
      expect(users.container.env[variable]?.valueFrom.secretKeyRef, user).toEqual({
        name: 'ns-nats-logins',
        key: user,
      });
    }
    for (const workload of workloads) {
      const container = containersOf(workload)[0] ?? {};
      const [name, spec] = serviceOf(container);
      const config = spec.parse(flagsOf(container, spec), envOf(container, objects)) as Record<string, unknown>;
      expect(config['natsUser'], name).toBe(name);
      const podVolumes = (workload['spec'] as { template: { spec: { volumes: Array<Record<string, unknown>> } } })
        .template.spec.volumes;
      const login = podVolumes.find((volume) => volume['name'] === 'nats-login');
      // Each pod mounts its own password only.
      expect(login?.['secret'], name).toMatchObject({
        secretName: 'ns-nats-logins',
        items: [{ key: name, path: 'password' }],
      });
      expect(config['natsPasswordFile'], name).toBe('/etc/noisystudent/nats/password');
    }

    const trainer = find(objects, 'StatefulSet', 'ns-trainer');
    const trainerSpec = trainer['spec'] as {
      replicas: number;
      serviceName: string;
      volumeClaimTemplates: Array<{ metadata: { name: string } }>;
    };
    expect(trainerSpec.replicas).toBe(1);
    expect(trainerSpec.serviceName).toBe('ns-trainer');
    const trainerContainer = containersOf(trainer)[0] ?? {};
    const trainerSettings = trainerConfig({}, envOf(trainerContainer, objects));
    const stateDir = trainerSettings.stateDir;
    const mounts = trainerContainer['volumeMounts'] as Array<{ name: string; mountPath: string }>;
    expect(mounts).toContainEqual({ name: trainerSpec.volumeClaimTemplates[0]?.metadata.name, mountPath: stateDir });
    // The trainer refuses to start with its state folder or its data set outside --allowed-roots.
    const trainerRoots = new AllowedRoots(parseAllowedRoots(trainerSettings.allowedRoots) ?? []);
    expect(trainerRoots.contains(stateDir)).toBe(true);
    expect(trainerRoots.contains(SYSTEM_DATASETS_ROOT)).toBe(true);
  });

  it('scales and protects the teacher Deployment it names', () => {
    const teacher = find(objects, 'Deployment', 'ns-teacher');
    const podLabels = (teacher['spec'] as { template: { metadata: { labels: Record<string, string> } } }).template
      .metadata.labels;
    const autoscaler = find(objects, 'HorizontalPodAutoscaler', 'ns-teacher')['spec'] as {
      scaleTargetRef: { kind: string; name: string };
      minReplicas: number;
    };
    expect(autoscaler.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: 'ns-teacher' });
    const budget = find(objects, 'PodDisruptionBudget', 'ns-teacher')['spec'] as {
      minAvailable: number;
      selector: { matchLabels: Record<string, string> };
    };
    expect(podLabels).toMatchObject(budget.selector.matchLabels);
    expect(budget.minAvailable).toBeLessThan(autoscaler.minReplicas);
  });

  it(`runs the ${overlay} image, with one GPU for the teacher and the trainer on the gpu overlay`, () => {
    for (const workload of workloads) {
      const container = containersOf(workload)[0] ?? {};
      expect(container['image']).toBe(`registry.example.com/noisystudent:0.1.0-${overlay}`);
      const limits = (container['resources'] as { limits?: Record<string, unknown> }).limits ?? {};
      const podSpec = (workload['spec'] as { template: { spec: Record<string, unknown> } }).template.spec;
      const wantsGpu = overlay === 'gpu' && workload.metadata.name !== 'ns-labeler';
      expect(limits['nvidia.com/gpu'], workload.metadata.name).toBe(wantsGpu ? 1 : undefined);
      expect(podSpec['tolerations'], workload.metadata.name).toEqual(
        wantsGpu ? [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }] : undefined,
      );
      expect(podSpec['nodeSelector'], workload.metadata.name).toEqual(
        wantsGpu ? { 'nvidia.com/gpu.present': 'true' } : undefined,
      );
    }
  });
});

describe('deploy/docker', () => {
  it.each(['Dockerfile.cpu', 'Dockerfile.gpu'])(
    '%s runs a service main that the build makes, and checks gRPC health',
    (file) => {
      const dockerfile = readFileSync(join(ROOT, 'deploy', 'docker', file), 'utf8');
      const cmd = /^CMD (\[.*\])$/m.exec(dockerfile)?.[1];
      expect(cmd, 'CMD').toBeDefined();
      expect(JSON.parse(cmd ?? '[]')).toEqual(['node', SERVICES['teacher']?.main]);
      const mains = dockerfile.match(/services\/[a-z]+\/dist\/main\.js/g) ?? [];
      expect(new Set(mains)).toEqual(new Set(Object.values(SERVICES).map((spec) => spec.main)));
      for (const main of mains) expect(existsSync(join(ROOT, main)), `${main} (npm run build)`).toBe(true);
      expect(dockerfile).toMatch(/^HEALTHCHECK .*CMD \["node", "deploy\/docker\/healthcheck\.mjs"\]$/m);
      for (const [name, spec] of Object.entries(SERVICES)) {
        expect(dockerfile, `${name} listens on every interface`).toMatch(
          new RegExp(`${spec.prefix}HOST=0\\.0\\.0\\.0`),
        );
        const bin = (
          JSON.parse(readFileSync(join(ROOT, 'services', name, 'package.json'), 'utf8')) as {
            bin: Record<string, string>;
          }
        ).bin;
        expect(Object.values(bin).map((path) => `services/${name}/${path.replace(/^\.\//, '')}`)).toEqual([spec.main]);
      }
      // The image's trainer state folder lies in its allowed roots (else the trainer refuses to start).
      const envValue = (name: string): string | undefined => new RegExp(`\\b${name}=(\\S+)`).exec(dockerfile)?.[1];
      const imageRoots = new AllowedRoots(parseAllowedRoots(envValue('NS_TRAINER_ALLOWED_ROOTS')) ?? []);
      expect(imageRoots.contains(envValue('NS_TRAINER_STATE_DIR') ?? '')).toBe(true);
      expect(imageRoots.contains(SYSTEM_DATASETS_ROOT)).toBe(true);
      for (const variable of dockerfile.match(/\bNS_[A-Z_]+(?==)/g) ?? []) {
        const owner = Object.values(SERVICES).find((spec) => variable.startsWith(spec.prefix));
        expect(owner?.envNames, variable).toContain(variable);
      }
    },
  );
});
