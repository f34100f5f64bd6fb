import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';

import { EvaluationMetrics, RoundRecord } from '@noisystudent/proto';

import { writeFileDurably } from './durable-file.js';

/** A round from its start until its record: what a restarted trainer resumes from. */
export interface RoundState {
  round: number;
  teacherVersion: string;
  /** The registry revision of the teacher pointer the round started from (the CAS's expected revision). */
  teacherRevision: number;
  /** The shards the round trains on, frozen at its start: ids and files (relative to the state folder). */
  shardIds: string[];
  shardFiles: string[];
  /** The version the student is named, used if it is promoted. */
  studentVersion: string;
  width: number;
  startedAt: string;
  /** Set once the student is trained and evaluated: its artifact is `student.nsmodel` in the round's folder. */
  trained?: {
    steps: number;
    /** The student's TrainingConfig as JSON (absent in a state written before it was kept). */
    training?: unknown;
    shards: number;
    examples: number;
    perClass: number[];
    eval: unknown;
    test: unknown;
    supervisedTest?: unknown;
    supervisedNoisedTest?: unknown;
  };
}

/** A teacher's evaluation on this trainer's eval and test splits, kept per version. */
export interface TeacherEvaluation {
  eval: EvaluationMetrics;
  test: EvaluationMetrics;
  params: number;
}

/**
 * The trainer's state folder: one folder per round (`rounds/<n>/state.json`, its checkpoint and
 * the student's artifact), the finished rounds' records (`rounds.json`), and each teacher's
 * evaluation (`teachers/<version>.json`). Every write is durable (fsync'd, then renamed).
 */
export class RoundStore {
  private constructor(
    readonly directory: string,
    private readonly records: RoundRecord[],
    private readonly states: Map<number, RoundState>,
  ) {}

  static async open(directory: string): Promise<RoundStore> {
    await mkdir(join(directory, 'rounds'), { recursive: true });
    await mkdir(join(directory, 'teachers'), { recursive: true });
    let records: RoundRecord[] = [];
    try {
      const json = JSON.parse(await readFile(join(directory, 'rounds.json'), 'utf8')) as unknown[];
      records = json.map((entry) => RoundRecord.fromJSON(entry));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new Error(`${join(directory, 'rounds.json')}: unreadable round records (${String(error)})`, {
          cause: error,
        });
      }
    }
    const states = new Map<number, RoundState>();
    for (const name of await readdir(join(directory, 'rounds'))) {
      if (!/^\d+$/.test(name)) continue;
      try {
        const state = JSON.parse(await readFile(join(directory, 'rounds', name, 'state.json'), 'utf8')) as RoundState;
        states.set(state.round, state);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
    return new RoundStore(directory, records, states);
  }

  /** Finished rounds, oldest first. */
  get finished(): RoundRecord[] {
    return [...this.records];
  }

  /** The round started and not recorded yet, if any. */
  get unfinished(): RoundState | undefined {
    const recorded = new Set(this.records.map((record) => record.round));
    return [...this.states.values()].find((state) => !recorded.has(state.round));
  }

  get lastRound(): number {
    return Math.max(0, ...this.states.keys(), ...this.records.map((record) => record.round));
  }

  /** Shard ids some round of `teacherVersion` trained on. */
  usedShards(teacherVersion: string): Set<string> {
    const used = new Set<string>();
    for (const state of this.states.values()) {
      if (state.teacherVersion === teacherVersion) for (const id of state.shardIds) used.add(id);
    }
    return used;
  }

  /** The last finished round of `teacherVersion`, if any. */
  lastRecordOf(teacherVersion: string): RoundRecord | undefined {
    return this.records.filter((record) => record.teacherVersion === teacherVersion).at(-1);
  }

  roundDirectory(round: number): string {
    return join(this.directory, 'rounds', String(round));
  }

  async save(state: RoundState): Promise<void> {
    await mkdir(this.roundDirectory(state.round), { recursive: true });
    await writeFileDurably(join(this.roundDirectory(state.round), 'state.json'), JSON.stringify(state));
    this.states.set(state.round, state);
  }

  /** Records a finished round; its checkpoint is no longer needed. */
  async finish(record: RoundRecord): Promise<void> {
    this.records.push(record);
    await writeFileDurably(
      join(this.directory, 'rounds.json'),
      JSON.stringify(this.records.map((entry) => RoundRecord.toJSON(entry))),
    );
    await rm(join(this.roundDirectory(record.round), 'student.ckpt'), { force: true });
  }

  async teacherEvaluation(version: string): Promise<TeacherEvaluation | undefined> {
    try {
      const json = JSON.parse(await readFile(join(this.directory, 'teachers', `${version}.json`), 'utf8')) as {
        eval: unknown;
        test: unknown;
        params: number;
      };
      return {
        eval: EvaluationMetrics.fromJSON(json.eval),
        test: EvaluationMetrics.fromJSON(json.test),
        params: json.params,
      };
    } catch {
      return undefined;
    }
  }

  async saveTeacherEvaluation(version: string, evaluation: TeacherEvaluation): Promise<void> {
    await writeFileDurably(
      join(this.directory, 'teachers', `${version}.json`),
      JSON.stringify({
        eval: EvaluationMetrics.toJSON(evaluation.eval),
        test: EvaluationMetrics.toJSON(evaluation.test),
        params: evaluation.params,
      }),
    );
  }
}
