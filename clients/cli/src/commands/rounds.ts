// nsctl rounds: the trainer's round table.
import { connectTrainer, type Round, type TrainerConnection } from '@noisystudent/client';
import type { Command } from 'commander';

import { makeOutput, parseCount, resolveAddresses, target, type GlobalOptions } from '../context.js';
import { count, duration, percent, table } from '../view/format.js';

const accuracy = (metrics: { top1Accuracy: number } | undefined): string =>
  metrics === undefined ? '–' : percent(metrics.top1Accuracy);

/** Rounds oldest first (ListRounds answers newest first). */
export async function roundsOldestFirst(trainer: TrainerConnection, limit = 0): Promise<Round[]> {
  return (await trainer.rounds({ limit })).sort((a, b) => a.round - b.round);
}

/** The round table: accuracies on eval (decides) and test (reported), baselines, decision. */
export function roundsTable(rounds: Round[]): string {
  return table([
    [
      'round',
      'teacher → student',
      'teacher eval/test',
      'student eval/test',
      'baselines test (sup./+noise)',
      'examples',
      'decision',
      'time',
    ],
    ...rounds.map((round) => [
      String(round.round),
      `${round.teacherVersion} → ${round.studentVersion || '–'}`,
      `${accuracy(round.teacherEval)} / ${accuracy(round.teacherTest)}`,
      `${accuracy(round.studentEval)} / ${accuracy(round.studentTest)}`,
      `${accuracy(round.supervisedTest)} / ${accuracy(round.supervisedNoisedTest)}`,
      `${count(round.pseudoLabeledExamples)} in ${count(round.shards)} shards`,
      round.decision,
      round.startedAt !== undefined && round.finishedAt !== undefined
        ? duration((round.finishedAt.getTime() - round.startedAt.getTime()) / 1000)
        : '–',
    ]),
  ]);
}

export function registerRounds(program: Command): void {
  program
    .command('rounds')
    .description(
      "the trainer's rounds: teacher and student accuracy (eval decides, test is reported), baselines, decision",
    )
    .option('--limit <n>', 'the last n rounds (0: all)', '0')
    .action(async (flags: { limit: string }, command: Command) => {
      const global = command.optsWithGlobals<GlobalOptions>();
      const out = makeOutput(global.json);
      const trainer = connectTrainer(target(await resolveAddresses(global), 'trainer'));
      try {
        const rounds = await roundsOldestFirst(trainer, parseCount('--limit', flags.limit));
        out.result(rounds, () => {
          if (rounds.length === 0) out.line('no rounds yet (`nsctl status` shows what the trainer does)');
          else {
            out.line(roundsTable(rounds));
            for (const round of rounds) out.line(`round ${round.round}: ${round.reason}`);
          }
        });
      } finally {
        trainer.close();
      }
    });
}
