// One look at the whole system — each service's health, the teacher's model, the labeler's
// counts, the trainer's phase — for `nsctl status` and the demo's live view.
import {
  connectLabeler,
  connectTeacher,
  connectTrainer,
  type LabelerStats,
  type ModelInfo,
  type TrainerStatus,
} from '@noisystudent/client';

import { target, type Addresses } from './context.js';
import { count, duration, percent, table } from './view/format.js';

export interface ServiceState<T> {
  address: string;
  /** 'SERVING', 'NOT_SERVING', … or 'UNREACHABLE'. */
  health: string;
  /** Why it is unreachable, or why the detail could not be read. */
  problem?: string;
  detail?: T;
}

export interface Snapshot {
  at: string;
  teacher: ServiceState<ModelInfo>;
  labeler: ServiceState<LabelerStats>;
  trainer: ServiceState<TrainerStatus>;
}

const QUICK = { deadlineMs: 3_000, retry: false } as const;

async function look<T>(
  address: string,
  health: () => Promise<string>,
  detail: () => Promise<T>,
  wantDetail: (health: string) => boolean,
): Promise<ServiceState<T>> {
  let state: string;
  try {
    state = await health();
  } catch (error) {
    return { address, health: 'UNREACHABLE', problem: error instanceof Error ? error.message : String(error) };
  }
  if (!wantDetail(state)) return { address, health: state };
  try {
    return { address, health: state, detail: await detail() };
  } catch (error) {
    return { address, health: state, problem: error instanceof Error ? error.message : String(error) };
  }
}

export async function takeSnapshot(addresses: Addresses): Promise<Snapshot> {
  const teacher = connectTeacher({ ...target(addresses, 'teacher'), ...QUICK });
  const labeler = connectLabeler({ ...target(addresses, 'labeler'), ...QUICK });
  const trainer = connectTrainer({ ...target(addresses, 'trainer'), ...QUICK });
  try {
    const [teacherState, labelerState, trainerState] = await Promise.all([
      look(
        addresses.teacher,
        () => teacher.health(),
        () => teacher.modelInfo(),
        (h) => h === 'SERVING',
      ),
      look(
        addresses.labeler,
        () => labeler.health(),
        () => labeler.stats(),
        () => true,
      ),
      look(
        addresses.trainer,
        () => trainer.health(),
        () => trainer.status(),
        () => true,
      ),
    ]);
    return { at: new Date().toISOString(), teacher: teacherState, labeler: labelerState, trainer: trainerState };
  } finally {
    teacher.close();
    labeler.close();
    trainer.close();
  }
}

export function describeTeacher(state: ServiceState<ModelInfo>): string {
  if (state.health === 'UNREACHABLE') return 'not reachable';
  const model = state.detail;
  if (model === undefined) return state.health === 'SERVING' ? (state.problem ?? '') : 'waiting for a teacher model';
  const accuracy =
    model.metrics === undefined ? '' : `, ${percent(model.metrics.top1Accuracy)} on ${model.metrics.dataset}`;
  return `serving ${model.version}${model.parentVersion === '' ? '' : ` (from ${model.parentVersion})`}${accuracy}`;
}

export function describeLabeler(state: ServiceState<LabelerStats>): string {
  if (state.health === 'UNREACHABLE') return 'not reachable';
  const stats = state.detail;
  if (stats === undefined) return state.problem ?? '';
  const current = stats.versions.find((v) => v.teacherVersion === stats.teacherVersion);
  const parts = [
    `ingested ${count(stats.ingested)} (${count(stats.ingestDuplicates)} duplicates, ${count(stats.ingestRejected)} rejected)`,
  ];
  if (current !== undefined) {
    parts.push(
      `${current.teacherVersion}: ${count(current.labeled)} labeled, ${count(current.copies)} copies in ${count(current.shards)} shards`,
    );
  } else if (stats.teacherVersion === '') parts.push('waiting for a teacher');
  if (stats.unlabeledPending > 0) parts.push(`${count(stats.unlabeledPending)} waiting`);
  if (stats.labeledPerSecond > 0) parts.push(`${count(stats.labeledPerSecond)} images/s`);
  return parts.join(', ');
}

export function describeTrainer(state: ServiceState<TrainerStatus>): string {
  if (state.health === 'UNREACHABLE') return 'not reachable';
  const status = state.detail;
  if (status === undefined) return state.problem ?? '';
  const round = status.round > 0 ? `round ${status.round}` : '';
  switch (status.phase) {
    case 'bootstrapping':
    case 'training': {
      const what =
        status.phase === 'bootstrapping' ? 'bootstrapping the first teacher' : `training the student of ${round}`;
      if (status.steps === 0) return what;
      return `${what}: step ${count(status.step)}/${count(status.steps)}, loss ${status.loss.toFixed(3)}, ${count(status.imagesPerSecond)} images/s, ETA ${duration(status.etaSeconds)}`;
    }
    case 'collecting': {
      const waiting = [
        status.imagesNeeded > 0 ? `${count(status.imagesWaiting)}/${count(status.imagesNeeded)} images labeled` : '',
        status.examplesNeeded > 0
          ? `${count(status.examplesWaiting)}/${count(status.examplesNeeded)} pseudo-labeled examples`
          : '',
      ].filter((part) => part !== '');
      return waiting.length > 0
        ? `collecting for ${status.teacherVersion}: ${waiting.join(', ')}`
        : `following ${status.teacherVersion} (no more rounds to run)`;
    }
    case 'evaluating':
      return `evaluating ${round}`;
    case 'promoting':
      return `promoting the student of ${round}`;
    default:
      return status.phase;
  }
}

export function snapshotTable(snapshot: Snapshot): string {
  return table([
    ['service', 'address', 'health', ''],
    ['teacher', snapshot.teacher.address, snapshot.teacher.health, describeTeacher(snapshot.teacher)],
    ['labeler', snapshot.labeler.address, snapshot.labeler.health, describeLabeler(snapshot.labeler)],
    ['trainer', snapshot.trainer.address, snapshot.trainer.health, describeTrainer(snapshot.trainer)],
  ]);
}

export function unreachable(snapshot: Snapshot): string[] {
  return (['teacher', 'labeler', 'trainer'] as const).filter((name) => snapshot[name].health === 'UNREACHABLE');
}
