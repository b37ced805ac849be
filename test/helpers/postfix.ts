// A throw-away Postfix instance as a real remote MTA for tests: its own config, queue, data and
// mail directories under one temp directory, started with `postfix -c DIR start`. The system
// instance (/etc/postfix, /var/spool/postfix, which a benchmark may be running on 127.0.0.1) is
// left alone: nothing of it is written, and it need not be configured for this either. Postfix
// takes a non-default config directory from root without alternate_config_directories or
// postmulti (which would edit /etc/postfix/main.cf), and this instance's daemons find each other
// through sockets in its own queue directory. Shared with the system: the binaries and the
// read-only meta files in /etc/postfix (postfix-files, dynamicmaps.cf).
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { chmod, chown, mkdir, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PostfixOptions {
  host: string;
  port: number;
  /** Domains it takes mail for, any local part; every other domain is refused (relay). */
  domains: string[];
  /** When set, every recipient needs SMTP AUTH (PLAIN or LOGIN, Cyrus SASL + sasldb) with these
   *  credentials; a user "name@realm" is stored as name in realm, which is how Cyrus splits it. */
  auth?: { user: string; password: string };
  /** 'starttls' offers STARTTLS (and, with auth, AUTH only after it); 'implicit' is TLS from
   *  the first byte, as on port 465. Self-signed certificate: see certFile. Default 'none'. */
  tls?: 'none' | 'starttls' | 'implicit';
  /** myhostname: the greeting, EHLO reply and Received: header name. Default mx.<domains[0]>. */
  hostname?: string;
  /** smtputf8_enable: whether it offers SMTPUTF8 (RFC 6531). Default yes (compatibility level 3.6). */
  smtputf8?: boolean;
}

export interface DeliveredMessage {
  /** The Maildir file. */
  path: string;
  /** The envelope recipient, from the Delivered-To: header the virtual agent prepends. */
  rcpt: string;
  /** The file as delivered: Postfix's Return-Path/Delivered-To/Received headers, then the
   *  message as received, with LF line ends. */
  raw: Buffer;
}

const ROOT_PREFIX = 'mlsd-postfix-';
// The uid/gid that owns delivered mail: the virtual agent refuses root, and nobody exists on
// every Debian machine.
const VMAIL_UID = 65534;
const VMAIL_GID = 65534;

/** Instances of this process not yet stopped, killed synchronously on exit (a failed assertion
 *  that skips stop(), an uncaught exception): `postfix start` daemonizes, so its master does not
 *  die with us. A run killed by SIGKILL is handled on the next start instead (sweepStale). */
const live = new Set<string>();
process.once('exit', () => {
  for (const dir of live) {
    killInstanceSync(dir);
    rmSync(dir, { recursive: true, force: true });
  }
});

export class PostfixPeer {
  private stopped = false;
  /** Tells this instance from a later one started on the same address (same directory). */
  private readonly id = randomUUID();

  private constructor(
    readonly host: string,
    readonly port: number,
    /** The instance's root: etc/ (main.cf, master.cf, cert), queue/, data/, mail/, maillog. */
    readonly dir: string,
    /** PEM certificate the peer presents with TLS (self-signed), for a client that pins it. */
    readonly certFile: string | null,
  ) {}

  static async start(opts: PostfixOptions): Promise<PostfixPeer> {
    await sweepStale();
    // Named after the address, not random, so that an instance left by a crashed run on the
    // same address:port is found (and killed) by the next start on it.
    const dir = join(tmpdir(), `${ROOT_PREFIX}${opts.host}-${opts.port}`);
    killInstanceSync(dir);
    await rm(dir, { recursive: true, force: true });
    live.add(dir);
    try {
      const certFile = await writeInstance(dir, opts);
      const peer = new PostfixPeer(opts.host, opts.port, dir, certFile);
      await writeFile(join(dir, 'instance'), peer.id);
      const r = await run('/usr/sbin/postfix', ['-c', join(dir, 'etc'), 'start']);
      if (r.code !== 0) throw new Error(`postfix start failed (${r.code}): ${r.out}\n${await readLog(dir)}`);
      await waitForListener(opts.host, opts.port, 10000);
      return peer;
    } catch (err) {
      killInstanceSync(dir);
      await rm(dir, { recursive: true, force: true });
      live.delete(dir);
      throw err;
    }
  }

  /** Every message delivered so far, oldest first. */
  async messages(): Promise<DeliveredMessage[]> {
    const base = join(this.dir, 'mail');
    const found: { path: string; mtime: number }[] = [];
    for (const domain of await readdir(base).catch(() => [] as string[])) {
      for (const sub of ['new', 'cur']) {
        const d = join(base, domain, 'Maildir', sub);
        for (const name of await readdir(d).catch(() => [] as string[])) {
          const path = join(d, name);
          found.push({ path, mtime: (await stat(path)).mtimeMs });
        }
      }
    }
    found.sort((x, y) => x.mtime - y.mtime || x.path.localeCompare(y.path));
    return Promise.all(
      found.map(async ({ path }) => {
        const raw = await readFile(path);
        const m = /^Delivered-To: *(.*)$/im.exec(raw.subarray(0, 4096).toString('utf8'));
        return { path, rcpt: m?.[1]?.trim() ?? '', raw };
      }),
    );
  }

  /** Resolves with the messages once at least n were delivered; rejects with the log after timeoutMs. */
  async waitForMessages(n: number, timeoutMs = 10000): Promise<DeliveredMessage[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const msgs = await this.messages();
      if (msgs.length >= n) return msgs;
      if (Date.now() > deadline)
        throw new Error(`postfix peer: ${msgs.length} of ${n} messages after ${timeoutMs} ms; log:\n${await this.log()}`);
      await new Promise((res) => setTimeout(res, 50));
    }
  }

  /** The instance's maillog (written by its postlogd, so it lags a log call by a few ms). */
  log(): Promise<string> {
    return readLog(this.dir);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // A later start on the same address:port has already killed this instance and now owns
    // the directory: leave it alone.
    if ((await readFile(join(this.dir, 'instance'), 'utf8').catch(() => '')) !== this.id) return;
    // The orderly way first (master SIGTERMs its process group), then make sure: a test that
    // starts the next peer on the same port must not find a child still holding it.
    await run('/usr/sbin/postfix', ['-c', join(this.dir, 'etc'), 'stop']);
    const deadline = Date.now() + 5000;
    while (instancePids(this.dir).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    killInstanceSync(this.dir);
    await rm(this.dir, { recursive: true, force: true });
    live.delete(this.dir);
  }
}

async function writeInstance(root: string, opts: PostfixOptions): Promise<string | null> {
  const etc = join(root, 'etc');
  const hostname = opts.hostname ?? `mx.${opts.domains[0] ?? 'peer.test'}`;
  const tls = opts.tls ?? 'none';
  await mkdir(etc, { recursive: true });
  // First, so that a concurrent start's sweepStale() sees whose instance this is.
  await writeFile(join(root, 'owner'), ownerStamp(process.pid) ?? '');
  await mkdir(join(root, 'mail'));
  // Postfix daemons (user postfix) and the virtual agent (nobody) walk through this directory;
  // mkdtemp-style 0700 would lock them out.
  await chmod(root, 0o755);
  await makeQueueDirs(root);
  await chown(join(root, 'mail'), VMAIL_UID, VMAIL_GID);

  // One catch-all Maildir per domain: the virtual agent forbids $1-style substitution from a
  // regexp map (it would let a local part pick a path), so the recipient is read back from the
  // Delivered-To: header rather than from the directory name.
  await writeFile(
    join(etc, 'vmailbox'),
    opts.domains.map((d) => `/@${d.toLowerCase().replace(/[.\\+*?()[\]{}|^$]/g, '\\$&')}$/ ${d.toLowerCase()}/Maildir/`).join('\n') + '\n',
  );

  let certFile: string | null = null;
  const main: Record<string, string> = {
    compatibility_level: '3.6',
    queue_directory: join(root, 'queue'),
    data_directory: join(root, 'data'),
    myhostname: hostname,
    mydestination: '',
    // inet_interfaces must name an address an interface carries (127.0.20.x is only routed to
    // lo, not assigned): the listener's own address is set in master.cf instead, and this
    // instance sends no mail, so inet_interfaces has no other use.
    inet_interfaces: 'loopback-only',
    inet_protocols: 'ipv4',
    mynetworks: '127.0.0.0/8',
    alias_maps: '',
    alias_database: '',
    local_recipient_maps: '',
    // No network but loopback: a reverse lookup of the client would only wait for a timeout.
    smtpd_peername_lookup: 'no',
    // Replies at once instead of sleeping a second before each error reply.
    smtpd_error_sleep_time: '0s',
    in_flow_delay: '0s',
    maillog_file: join(root, 'maillog'),
    maillog_file_prefixes: root,
    syslog_name: 'mlsd-peer',
    virtual_mailbox_domains: opts.domains.join(', '),
    virtual_mailbox_maps: `regexp:${join(etc, 'vmailbox')}`,
    virtual_mailbox_base: join(root, 'mail'),
    virtual_uid_maps: `static:${VMAIL_UID}`,
    virtual_gid_maps: `static:${VMAIL_GID}`,
    // Nothing leaves this peer: bounces to test senders die here instead of being tried out.
    default_transport: 'error:this test peer sends no mail',
    relay_transport: 'error:this test peer sends no mail',
    smtpd_relay_restrictions: 'reject_unauth_destination',
    smtpd_recipient_restrictions: opts.auth ? 'permit_sasl_authenticated, reject' : 'permit_mynetworks, reject',
    smtpd_tls_security_level: tls === 'none' ? 'none' : tls === 'implicit' ? 'encrypt' : 'may',
    smtputf8_enable: opts.smtputf8 === false ? 'no' : 'yes',
  };
  if (tls !== 'none') {
    certFile = join(etc, 'cert.pem');
    const r = await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', join(etc, 'key.pem'), '-out', certFile, '-days', '2',
      '-subj', `/CN=${hostname}`, '-addext', `subjectAltName=DNS:${hostname},IP:${opts.host}`,
    ]);
    if (r.code !== 0) throw new Error(`openssl: ${r.out}`);
    main.smtpd_tls_cert_file = certFile;
    main.smtpd_tls_key_file = join(etc, 'key.pem');
    main.smtpd_tls_auth_only = opts.auth && tls === 'starttls' ? 'yes' : 'no';
    // "(using TLSv1.3 with cipher ...)" in Received:, so a test can see the sender used TLS.
    main.smtpd_tls_received_header = 'yes';
  }
  if (opts.auth) {
    // Cyrus SASL reading a sasldb file (no saslauthd to run). Debian's Postfix appends
    // "/sasl" to cyrus_sasl_config_path, upstream does not: the file is in both places.
    const conf = [
      'pwcheck_method: auxprop',
      'auxprop_plugin: sasldb',
      'mech_list: PLAIN LOGIN',
      `sasldb_path: ${join(etc, 'sasldb2')}`,
    ].join('\n') + '\n';
    await mkdir(join(etc, 'sasl'));
    await writeFile(join(etc, 'smtpd.conf'), conf);
    await writeFile(join(etc, 'sasl', 'smtpd.conf'), conf);
    const at = opts.auth.user.lastIndexOf('@');
    const [name, realm] = at > 0 ? [opts.auth.user.slice(0, at), opts.auth.user.slice(at + 1)] : [opts.auth.user, hostname];
    const r = await run('/usr/sbin/saslpasswd2', ['-p', '-c', '-f', join(etc, 'sasldb2'), '-u', realm, name], opts.auth.password);
    if (r.code !== 0) throw new Error(`saslpasswd2: ${r.out}`);
    // smtpd reads it as user postfix (not chrooted: see master.cf).
    await chown(join(etc, 'sasldb2'), 0, gidOf('postfix'));
    await chmod(join(etc, 'sasldb2'), 0o640);
    Object.assign(main, {
      smtpd_sasl_auth_enable: 'yes',
      smtpd_sasl_type: 'cyrus',
      smtpd_sasl_path: 'smtpd',
      cyrus_sasl_config_path: etc,
      smtpd_sasl_local_domain: hostname,
      smtpd_sasl_security_options: 'noanonymous',
    });
  }
  await writeFile(join(etc, 'main.cf'), Object.entries(main).map(([k, v]) => `${k} = ${v}`).join('\n') + '\n');

  const wrapper = tls === 'implicit' ? ' -o smtpd_tls_wrappermode=yes' : '';
  // Nothing chrooted (column 5 "n"): smtpd must reach the sasldb file and the Maildirs' paths
  // are absolute. The smtpd listener binds exactly host:port.
  const master = `
${opts.host}:${opts.port} inet n - n - - smtpd${wrapper}
pickup     unix  n - n 60 1 pickup
cleanup    unix  n - n - 0 cleanup
qmgr       unix  n - n 300 1 qmgr
tlsmgr     unix  - - n 1000? 1 tlsmgr
rewrite    unix  - - n - - trivial-rewrite
bounce     unix  - - n - 0 bounce
defer      unix  - - n - 0 bounce
trace      unix  - - n - 0 bounce
verify     unix  - - n - 1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n - - proxymap
proxywrite unix  - - n - 1 proxymap
smtp       unix  - - n - - smtp
relay      unix  - - n - - smtp
showq      unix  n - n - - showq
error      unix  - - n - - error
retry      unix  - - n - - error
discard    unix  - - n - - discard
local      unix  - n n - - local
virtual    unix  - n n - - virtual
lmtp       unix  - - n - - lmtp
anvil      unix  - - n - 1 anvil
scache     unix  - - n - 1 scache
postlog    unix-dgram n - n - 1 postlogd
`;
  await writeFile(join(etc, 'master.cf'), master.trimStart());
  // Postfix 3.7's `postfix start` sleeps in 300 ms steps for ~1.8 s when its configuration
  // was written moments ago (seen with strace, before it runs postfix-script; presumably so
  // that a later edit gets a newer time stamp): backdating the files skips that wait.
  const past = new Date(Date.now() - 60_000);
  for (const f of await readdir(etc)) await utimes(join(etc, f), past, past);
  await utimes(etc, past, past);
  return certFile;
}

/**
 * Creates the queue and data directories as Postfix's own post-install would, from the owner,
 * group and mode lines of its postfix-files, and marks the queue "quick-start". That skips
 * postfix-script's integrity check (post-install and postsuper, with dozens of postconf
 * runs: ~0.6 s of a ~0.15 s start); a freshly made, empty queue has nothing for it to find.
 */
async function makeQueueDirs(root: string): Promise<void> {
  const ids: Record<string, number> = { root: 0, $mail_owner: uidOf('postfix') };
  const groups: Record<string, number> = { '-': 0, $setgid_group: gidOfGroup('postdrop') };
  let entries: string[];
  try {
    entries = readFileSync('/etc/postfix/postfix-files', 'utf8').split('\n');
  } catch {
    entries = FALLBACK_QUEUE_DIRS;
  }
  const dirs: { path: string; uid: number; gid: number; mode: number }[] = [];
  for (const line of entries) {
    const m = /^\$(queue|data)_directory(\/[a-z]+)?:d:([^:]+):([^:]+):(\d+):/.exec(line);
    if (!m) continue;
    const [, kind, sub, owner, group, mode] = m;
    const uid = ids[owner!];
    const gid = group === '-' && kind === 'data' ? gidOf('postfix') : groups[group!];
    if (uid === undefined || gid === undefined) throw new Error(`postfix-files: unexpected owner in ${line}`);
    dirs.push({ path: join(root, kind === 'queue' ? 'queue' : 'data', sub ?? ''), uid, gid, mode: parseInt(mode!, 8) });
  }
  if (!dirs.some((d) => d.path.endsWith('/queue/maildrop'))) throw new Error('postfix-files lists no queue directories');
  for (const d of dirs) {
    await mkdir(d.path, { recursive: true });
    await chown(d.path, d.uid, d.gid);
    await chmod(d.path, d.mode);
  }
  await writeFile(join(root, 'queue', 'quick-start'), '');
}

// Postfix 3.7's list, for a layout without /etc/postfix/postfix-files.
const FALLBACK_QUEUE_DIRS = [
  '$data_directory:d:$mail_owner:-:700:',
  '$queue_directory:d:root:-:755:',
  ...['active', 'bounce', 'corrupt', 'defer', 'deferred', 'flush', 'hold', 'incoming', 'private', 'saved', 'trace'].map(
    (d) => `$queue_directory/${d}:d:$mail_owner:-:700:`,
  ),
  '$queue_directory/maildrop:d:$mail_owner:$setgid_group:730:',
  '$queue_directory/public:d:$mail_owner:$setgid_group:710:',
  '$queue_directory/pid:d:root:-:755:',
];

/** TCP connects until the listener answers (the master opens it before `postfix start` returns,
 *  but a stale process could be holding the address; a refused connect is then the clue). */
async function waitForListener(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port });
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`postfix peer: nothing listens on ${host}:${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function readLog(dir: string): Promise<string> {
  return readFile(join(dir, 'maillog'), 'utf8').catch(() => '');
}

/** Kills the instances (and removes the directories) that a process now gone left behind. */
async function sweepStale(): Promise<void> {
  for (const name of await readdir(tmpdir()).catch(() => [] as string[])) {
    if (!name.startsWith(ROOT_PREFIX)) continue;
    const dir = join(tmpdir(), name);
    const owner = await readFile(join(dir, 'owner'), 'utf8').catch(() => '');
    if (owner) {
      if (ownerStamp(Number(owner.split(' ')[0])) === owner) continue; // its test process still runs
    } else {
      // No owner yet: another process may be creating it this very moment.
      const age = await stat(dir).then((st) => Date.now() - st.mtimeMs, () => Infinity);
      if (age < 60_000) continue;
    }
    killInstanceSync(dir);
    await rm(dir, { recursive: true, force: true });
  }
}

/** "pid starttime": a pid alone could be reused by an unrelated process after a crash. */
function ownerStamp(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime), counted after the ")" that ends the command name.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return `${pid} ${fields[19]}`;
  } catch {
    return null;
  }
}

/** Every process of the instance: all Postfix daemons chdir to the queue directory, and the
 *  master and the commands carry MAIL_CONFIG in their environment. */
function instancePids(dir: string): number[] {
  const queue = join(dir, 'queue');
  const env = `MAIL_CONFIG=${join(dir, 'etc')}\0`;
  const pids: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      if (readlinkSync(`/proc/${p}/cwd`) === queue || readFileSync(`/proc/${p}/environ`, 'latin1').includes(env)) pids.push(Number(p));
    } catch {
      // exited meanwhile, or not ours to read
    }
  }
  return pids;
}

function killInstanceSync(dir: string): void {
  try {
    statSync(dir);
  } catch {
    return;
  }
  for (let round = 0; round < 50; round++) {
    const pids = instancePids(dir);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    // SIGKILL is asynchronous; a zombie lingers until reaped, so poll briefly (sync: exit hook).
    const until = Date.now() + 20;
    while (Date.now() < until) {
      /* spin */
    }
  }
}

function run(cmd: string, args: string[], stdin?: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.once('error', (e) => resolve({ code: -1, out: String(e) }));
    child.once('close', (code) => resolve({ code: code ?? -1, out }));
    child.stdin.end(stdin ?? '');
  });
}

function idOf(file: string, name: string, field: 2 | 3): number {
  const line = readFileSync(file, 'utf8').split('\n').find((l) => l.startsWith(name + ':'));
  const id = Number(line?.split(':')[field]);
  if (!line || !Number.isInteger(id)) throw new Error(`no ${name} in ${file} (is the postfix package installed?)`);
  return id;
}
const uidOf = (user: string) => idOf('/etc/passwd', user, 2);
const gidOfGroup = (group: string) => idOf('/etc/group', group, 2);
const gidOf = (user: string) => idOf('/etc/passwd', user, 3);
