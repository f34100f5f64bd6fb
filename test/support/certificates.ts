// Throwaway certificates made by `openssl` for TLS tests: a CA, a server certificate for
// localhost / 127.0.0.1 and a client certificate signed by it, and a second CA with a client
// certificate of its own. Every key lives in the folder given (tests remove it afterwards).
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

// Only the sections named on each command line apply: the system's openssl.cnf plays no part.
const OPENSSL_CONFIG = `
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
`;

export interface Pems {
  key: Buffer;
  cert: Buffer;
}

/** A CA with its server and client certificates, and an unrelated CA with a client certificate, made in `directory`. */
export async function makeCertificates(
  directory: string,
): Promise<Record<'ca' | 'otherCa' | 'server' | 'client' | 'stranger', Pems>> {
  const config = join(directory, 'openssl.cnf');
  await writeFile(config, OPENSSL_CONFIG);
  const file = (name: string): string => join(directory, name);
  const openssl = (...args: string[]): Promise<unknown> => run('openssl', args);
  /** A new P-256 key in `name`.key and the request or certificate openssl req makes with it. */
  const req = (name: string, commonName: string, ...args: string[]): Promise<unknown> =>
    openssl(
      'req',
      ...args,
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-subj',
      `/CN=${commonName}`,
      '-config',
      config,
      '-keyout',
      file(`${name}.key`),
    );

  await Promise.all(
    ['ca', 'other-ca'].map((name) =>
      req(name, `noisystudent ${name}`, '-x509', '-days', '1', '-extensions', 'ca', '-out', file(`${name}.pem`)),
    ),
  );
  await Promise.all(
    [
      { name: 'server', commonName: 'localhost', issuer: 'ca', extensions: 'server' },
      { name: 'client', commonName: 'tls-test-client', issuer: 'ca', extensions: 'client' },
      { name: 'stranger', commonName: 'tls-test-stranger', issuer: 'other-ca', extensions: 'client' },
    ].map(async ({ name, commonName, issuer, extensions }, index) => {
      await req(name, commonName, '-new', '-out', file(`${name}.csr`));
      await openssl(
        'x509',
        '-req',
        '-in',
        file(`${name}.csr`),
        '-CA',
        file(`${issuer}.pem`),
        '-CAkey',
        file(`${issuer}.key`),
        '-set_serial',
        String(index + 2),
        '-days',
        '1',
        '-extfile',
        config,
        '-extensions',
        extensions,
        '-out',
        file(`${name}.pem`),
      );
    }),
  );
  const pems = async (name: string): Promise<Pems> => ({
    key: await readFile(file(`${name}.key`)),
    cert: await readFile(file(`${name}.pem`)),
  });
  return {
    ca: await pems('ca'),
    otherCa: await pems('other-ca'),
    server: await pems('server'),
    client: await pems('client'),
    stranger: await pems('stranger'),
  };
}
