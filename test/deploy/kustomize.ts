// A kustomize renderer for exactly what deploy/k8s uses, so the manifests test needs no kubectl:
// `resources` (files and kustomization folders), `patches` (strategic merge of a whole document,
// matched by kind and name), `namespace`, `labels` (metadata labels, and with includeTemplates the
// pod and volume-claim templates) and `images`. Anything else in a kustomization is refused, so a
// feature added to the manifests cannot be silently ignored here. When kubectl is on the PATH,
// manifests.test.ts checks that `kubectl kustomize` renders the same objects.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { parseAllDocuments } from 'yaml';

export type KubeObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> } & Record<string, unknown>;
} & Record<string, unknown>;

interface LabelSet {
  pairs: Record<string, string>;
  includeTemplates?: boolean;
  includeSelectors?: boolean;
}

interface Kustomization {
  apiVersion?: string;
  kind?: string;
  namespace?: string;
  resources?: string[];
  patches?: Array<{ path: string }>;
  labels?: LabelSet[];
  images?: Array<{ name: string; newName?: string; newTag?: string }>;
}

const SUPPORTED = new Set(['apiVersion', 'kind', 'namespace', 'resources', 'patches', 'labels', 'images']);
const CLUSTER_SCOPED = new Set(['Namespace', 'PersistentVolume', 'StorageClass', 'ClusterRole', 'ClusterRoleBinding']);

export function readYamlDocuments(file: string): unknown[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).map((document) => {
    if (document.errors.length > 0) throw new Error(`${file}: ${document.errors[0]?.message ?? ''}`);
    return document.toJS() as unknown;
  });
}

function asObject(value: unknown, where: string): KubeObject {
  const object = value as Partial<KubeObject> | null;
  if (object === null || typeof object !== 'object' || typeof object.kind !== 'string') {
    throw new Error(`${where}: expected a Kubernetes object with kind and metadata.name`);
  }
  if (typeof object.metadata?.name !== 'string') throw new Error(`${where}: ${object.kind} without metadata.name`);
  return object as KubeObject;
}

/** Renders the kustomization in `dir` like `kubectl kustomize dir` (for the features above). */
export function renderKustomization(dir: string): KubeObject[] {
  const [raw] = readYamlDocuments(join(dir, 'kustomization.yaml'));
  const kustomization = raw as Kustomization;
  const unsupported = Object.keys(kustomization).filter((key) => !SUPPORTED.has(key));
  if (unsupported.length > 0) throw new Error(`${dir}/kustomization.yaml: unsupported here: ${unsupported.join(', ')}`);

  const objects: KubeObject[] = [];
  for (const resource of kustomization.resources ?? []) {
    const path = join(dir, resource);
    if (statSync(path).isDirectory()) objects.push(...renderKustomization(path));
    else objects.push(...readYamlDocuments(path).map((document) => asObject(document, path)));
  }
  for (const { path } of kustomization.patches ?? []) {
    for (const document of readYamlDocuments(join(dir, path))) {
      const patch = asObject(document, join(dir, path));
      const index = objects.findIndex(
        (object) => object.kind === patch.kind && object.metadata.name === patch.metadata.name,
      );
      if (index < 0) throw new Error(`${dir}/${path}: no ${patch.kind} ${patch.metadata.name} to patch`);
      objects[index] = strategicMerge(objects[index], patch) as KubeObject;
    }
  }
  if (kustomization.namespace !== undefined) {
    for (const object of objects) {
      if (!CLUSTER_SCOPED.has(object.kind)) object.metadata.namespace = kustomization.namespace;
    }
  }
  for (const labelSet of kustomization.labels ?? []) applyLabels(objects, labelSet);
  for (const image of kustomization.images ?? []) applyImage(objects, image);
  return objects;
}

/**
 * Kubernetes' strategic merge patch, as far as these manifests need it: maps merge key by key,
 * lists of objects with a `name` (containers, env, volumes, ports) merge by name, other lists
 * and scalars are replaced.
 */
export function strategicMerge(target: unknown, patch: unknown): unknown {
  if (Array.isArray(target) && Array.isArray(patch) && [...target, ...patch].every(hasName)) {
    const merged = [...target];
    for (const item of patch) {
      const index = merged.findIndex((existing) => existing.name === item.name);
      if (index < 0) merged.push(item);
      else merged[index] = strategicMerge(merged[index], item);
    }
    return merged;
  }
  if (isMap(target) && isMap(patch)) {
    const merged: Record<string, unknown> = { ...target };
    for (const [key, value] of Object.entries(patch)) {
      if (value === null) delete merged[key];
      else merged[key] = key in merged ? strategicMerge(merged[key], value) : value;
    }
    return merged;
  }
  return patch;
}

function isMap(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function hasName(value: unknown): value is { name: string } {
  return isMap(value) && typeof value['name'] === 'string';
}

interface PodOwnerSpec {
  selector?: { matchLabels?: Record<string, string> } & Record<string, unknown>;
  template?: { metadata?: { labels?: Record<string, string> } };
  volumeClaimTemplates?: Array<{ metadata?: { labels?: Record<string, string> } }>;
}

function applyLabels(objects: KubeObject[], { pairs, includeTemplates, includeSelectors }: LabelSet): void {
  if (includeSelectors === true) throw new Error('labels.includeSelectors is not supported here');
  for (const object of objects) {
    object.metadata.labels = { ...object.metadata.labels, ...pairs };
    const spec = object['spec'] as PodOwnerSpec | undefined;
    if (includeTemplates !== true || spec === undefined) continue;
    if (spec.template !== undefined) {
      spec.template.metadata = { ...spec.template.metadata, labels: { ...spec.template.metadata?.labels, ...pairs } };
    }
    for (const claim of spec.volumeClaimTemplates ?? []) {
      claim.metadata = { ...claim.metadata, labels: { ...claim.metadata?.labels, ...pairs } };
    }
  }
}

/** Containers of a pod-owning object, init containers included. */
export function containersOf(object: KubeObject): Array<Record<string, unknown>> {
  const podSpec = (object['spec'] as { template?: { spec?: Record<string, unknown> } } | undefined)?.template?.spec;
  if (podSpec === undefined) return [];
  return [podSpec['initContainers'], podSpec['containers']].flatMap((list) =>
    Array.isArray(list) ? (list as Array<Record<string, unknown>>) : [],
  );
}

function applyImage(
  objects: KubeObject[],
  { name, newName, newTag }: { name: string; newName?: string; newTag?: string },
): void {
  for (const container of objects.flatMap(containersOf)) {
    const image = container['image'];
    if (typeof image !== 'string') continue;
    const [imageName = '', tag] = image.split(':');
    if (imageName !== name) continue;
    const finalTag = newTag ?? tag;
    container['image'] = `${newName ?? imageName}${finalTag === undefined ? '' : `:${finalTag}`}`;
  }
}
