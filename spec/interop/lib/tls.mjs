// A throw-away certificate authority for the TLS tests, made with the `openssl` command in a
// temporary directory (removed by cleanup()): a CA the clients trust (`ca`), and server
// certificates for localhost / 127.0.0.1 / ::1 signed by it (`issue`). Nothing is installed
// anywhere: the clients get the CA explicitly (neffos.js and ws: the `ca` option; Node's https: `ca`).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

function openssl(args, cwd) {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A new CA in a temporary directory. `issue(name)` writes <name>.pem and <name>.key (a server
 *  certificate with CN=name); `cleanup()` removes the directory. */
export function makeTestCA() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'neffos-tls-'));
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=neffos test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign'], dir);
  writeFileSync(path.join(dir, 'server.ext'),
    'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
  const ca = {
    dir,
    caFile: path.join(dir, 'ca.pem'),
    ca: readFileSync(path.join(dir, 'ca.pem')),
    /** Issues a server certificate: returns {cert, key} (file paths). */
    issue(name) {
      openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir);
      openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
        '-days', '2', '-extfile', 'server.ext', '-out', `${name}.pem`], dir);
      return { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
    },
    cleanup() { rmSync(dir, { recursive: true, force: true }); },
  };
  return ca;
}
