import { credentials, type ChannelCredentials } from '@grpc/grpc-js';
import { ConfigError, firstLineOf, flagName, readSettingFile } from '@noisystudent/runtime';

import type { LabelerConfig } from './config.js';

/** How this labeler calls the teachers: TLS from the CA (and client certificate) given, and its token. */
export async function teacherCredentials(
  config: Pick<
    LabelerConfig,
    'teacherToken' | 'teacherTokenFile' | 'teacherTlsCa' | 'teacherTlsCert' | 'teacherTlsKey'
  >,
): Promise<{ credentials?: ChannelCredentials; token?: string }> {
  if (config.teacherToken !== undefined && config.teacherTokenFile !== undefined) {
    throw new ConfigError(`${flagName('teacherToken')} and ${flagName('teacherTokenFile')}: give one of them`);
  }
  if ((config.teacherTlsCert === undefined) !== (config.teacherTlsKey === undefined)) {
    throw new ConfigError(`${flagName('teacherTlsCert')} and ${flagName('teacherTlsKey')} go together`);
  }
  if (config.teacherTlsCert !== undefined && config.teacherTlsCa === undefined) {
    throw new ConfigError(`${flagName('teacherTlsCert')} needs ${flagName('teacherTlsCa')} (TLS towards the teachers)`);
  }
  let token = config.teacherToken;
  if (config.teacherTokenFile !== undefined) {
    token = await firstLineOf('teacherTokenFile', config.teacherTokenFile);
    if (!token)
      throw new ConfigError(
        `${flagName('teacherTokenFile')} ${config.teacherTokenFile}: expected the token on its first line`,
      );
  }
  if (config.teacherTlsCa === undefined) return token === undefined ? {} : { token };
  const [ca, cert, key] = await Promise.all([
    readSettingFile('teacherTlsCa', config.teacherTlsCa),
    config.teacherTlsCert === undefined ? undefined : readSettingFile('teacherTlsCert', config.teacherTlsCert),
    config.teacherTlsKey === undefined ? undefined : readSettingFile('teacherTlsKey', config.teacherTlsKey),
  ]);
  return {
    credentials: credentials.createSsl(ca, key ?? null, cert ?? null),
    ...(token === undefined ? {} : { token }),
  };
}
