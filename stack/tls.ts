import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** The stack's private CA and the certificate its TLS servers (the fake AWS, s3rver) present. */
export interface Certificates {
  /** PEM of the CA: what a job is given as AWS_CA_BUNDLE. */
  caFile: string;
  keyFile: string;
  certFile: string;
}

/**
 * Makes a private CA and a server certificate for 127.0.0.1 and localhost (P-256, 30 days) under `<dir>/tls`,
 * new on every start, so no key outlives its stack. openssl, not node:crypto: Node can make keys but not
 * certificates.
 */
export function makeCertificates(dir: string): Certificates {
  const tls = path.join(dir, 'tls');
  fs.rmSync(tls, { recursive: true, force: true });
  fs.mkdirSync(tls, { recursive: true, mode: 0o700 });
  const file = (name: string) => path.join(tls, name);
  const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(['req', '-x509', ...ecKey, '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '30', '-subj', '/CN=codebuild-image local stack CA']);
  openssl(['req', '-new', ...ecKey, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=localhost']);
  fs.writeFileSync(file('server.ext'), 'subjectAltName = IP:127.0.0.1, DNS:localhost\nextendedKeyUsage = serverAuth\n');
  openssl(['x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-days', '30', '-extfile', file('server.ext'), '-out', file('server.pem')]);
  return { caFile: file('ca.pem'), keyFile: file('server.key'), certFile: file('server.pem') };
}
