import {
  RoundDecision,
  TrainerPhase,
  TrainerService,
  type GetStatusResponse,
  type RoundRecord,
} from '@noisystudent/proto';

import { ServiceConnection } from './connection.js';
import { InputError } from './errors.js';
import { checkHealth, type HealthOptions } from './health-check.js';
import type { HealthStatus } from './health.js';
import type { CallOptions, ConnectOptions } from './options.js';

export const TRAINER_ADDRESS = '127.0.0.1:50053';
export const TRAINER_SERVICE = 'noisystudent.v1.Trainer';

export type TrainerPhaseName =
  'unspecified' | 'bootstrapping' | 'collecting' | 'training' | 'evaluating' | 'promoting' | 'stopping';

export type RoundDecisionName = 'unspecified' | 'promoted' | 'rejected' | 'failed';

const PHASE_NAMES: Record<TrainerPhase, TrainerPhaseName> = {
  [TrainerPhase.UNSPECIFIED]: 'unspecified',
  [TrainerPhase.BOOTSTRAPPING]: 'bootstrapping',
  [TrainerPhase.COLLECTING]: 'collecting',
  [TrainerPhase.TRAINING]: 'training',
  [TrainerPhase.EVALUATING]: 'evaluating',
  [TrainerPhase.PROMOTING]: 'promoting',
  [TrainerPhase.STOPPING]: 'stopping',
  [TrainerPhase.UNRECOGNIZED]: 'unspecified',
};

const DECISION_NAMES: Record<RoundDecision, RoundDecisionName> = {
  [RoundDecision.UNSPECIFIED]: 'unspecified',
  [RoundDecision.PROMOTED]: 'promoted',
  [RoundDecision.REJECTED]: 'rejected',
  [RoundDecision.FAILED]: 'failed',
  [RoundDecision.UNRECOGNIZED]: 'unspecified',
};

/** GetStatus with the phase by name (a phase this client does not know reads as 'unspecified'). */
export interface TrainerStatus extends Omit<GetStatusResponse, 'phase'> {
  phase: TrainerPhaseName;
}

/** A finished round (RoundRecord) with its decision by name; startedAt and finishedAt are Dates. */
export interface Round extends Omit<RoundRecord, 'decision'> {
  decision: RoundDecisionName;
}

export interface RoundsOptions extends CallOptions {
  /** At most this many rounds, newest first; 0 for every round the trainer keeps. @default 0 */
  limit?: number;
}

/** A client of the Trainer service; `close()` when done. */
export class TrainerConnection {
  private readonly connection: ServiceConnection;

  constructor(options?: string | readonly string[] | ConnectOptions) {
    this.connection = new ServiceConnection('trainer', options, TRAINER_ADDRESS);
  }

  get address(): string {
    return this.connection.address;
  }

  /** GetStatus: what the trainer is doing now. Retried on UNAVAILABLE. @throws ClientError */
  async status(options: CallOptions = {}): Promise<TrainerStatus> {
    const response = await this.connection.unary(TrainerService.getStatus, {}, options);
    return { ...response, phase: phaseName(response.phase) };
  }

  /** ListRounds: finished rounds, newest first. Retried on UNAVAILABLE. @throws ClientError */
  async rounds(options: RoundsOptions = {}): Promise<Round[]> {
    const { limit = 0, ...callOptions } = options;
    if (!Number.isInteger(limit) || limit < 0 || limit > 0xffffffff) {
      throw new InputError('limit', `expected an integer ≥ 0 (0: every kept round), got ${limit}`);
    }
    const { rounds } = await this.connection.unary(TrainerService.listRounds, { limit }, callOptions);
    return rounds.map((round) => ({ ...round, decision: decisionName(round.decision) }));
  }

  /** grpc.health.v1 Check of the Trainer. @throws ClientError */
  health(options: HealthOptions = {}): Promise<HealthStatus> {
    return checkHealth(this.connection, TRAINER_SERVICE, options);
  }

  close(): void {
    this.connection.close();
  }
}

/** A client of the Trainer at `options` (an address, or ConnectOptions). Connects on the first call. */
export function connectTrainer(options?: string | readonly string[] | ConnectOptions): TrainerConnection {
  return new TrainerConnection(options);
}

export function phaseName(phase: TrainerPhase): TrainerPhaseName {
  return PHASE_NAMES[phase] ?? 'unspecified';
}

export function decisionName(decision: RoundDecision): RoundDecisionName {
  return DECISION_NAMES[decision] ?? 'unspecified';
}
