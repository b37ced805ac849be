import type { CommandSpec } from '../commands/registry.js';
import type { ConfigStore } from '../config/config.js';
import { shown } from '../archive/commands.js';
import type { BackupCapability } from './capability.js';
import { loadBackupKey, installRecoveryKey } from './keys.js';
import { sshPublicKey } from './ssh-key.js';
import { checkTargetUrl } from './targets/index.js';
import { restoreJson, restoreLine } from './status.js';
import type { TargetSpec } from './target.js';

const TYPES = ['smb', 'sftp', 'dir'] as const;
const secret = (stdin: string | undefined) => (stdin ?? '').replace(/\r?\n$/, '');
const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

export interface BackupCommandDeps {
  backup: () => BackupCapability;
  config: () => ConfigStore;
  configDir: string;
  now: () => number;
}

/** `backup ...` and `restore ...`: targets, runs, verification, browsing, fetching, and the restore. */
export function backupCommands(d: BackupCommandDeps): CommandSpec[] {
  const targets = () => d.config().current.backup.targets;
  return [
    {
      name: 'backup target add',
      summary: 'add a backup target (an SMB 3 share, an SFTP server, a local folder); the first one shows the recovery key, once',
      args: [{ name: 'NAME', required: true }],
      options: [
        { name: 'type', type: 'string', required: true, value: 'smb|sftp|dir' },
        { name: 'url', type: 'string', required: true, value: 'URL' },
        { name: 'user', type: 'string', value: 'U' },
      ],
      stdin: 'optional',
      standby: false,
      run: async (input) => {
        const name = input.arg('NAME');
        const type = input.string('type') as TargetSpec['type'];
        if (!TYPES.includes(type)) throw new Error(`backup target add: --type takes smb, sftp or dir, not ${String(type).slice(0, 20)}`);
        const url = input.string('url')!;
        checkTargetUrl(type, url);
        if (targets().some((t) => t.name === name)) throw new Error(`backup target add: a target named ${name} exists (backup target del ${name} first)`);
        const spec = { name, type, url, user: input.string('user') ?? '', password: secret(input.stdin), hostKey: '' };
        await d.config().set('backup.targets', [...targets(), spec]);
        const key = await loadBackupKey(d.configDir);
        const lines = [`backup target ${name} added (${type} ${url}); check it with: mlsd backup target test ${name}`];
        if (type === 'sftp') lines.push(`the box logs in with its own key too; for a login without a password, add to the server's authorized_keys:`, `  ${await sshPublicKey(d.configDir, `mlsd@${d.config().current.hostname}`)}`);
        if (key.created) {
          lines.push(
            '',
            'RECOVERY KEY (shown this once; write it down and keep it away from the box):',
            `  ${key.recoveryKey}`,
            'Backups are encrypted with it. A box whose system flash also died cannot read its',
            'backups without it: `mlsd backup key import --password-stdin` takes it on a new flash.',
          );
        }
        return { text: lines.join('\n'), json: { added: name, ...(key.created ? { recoveryKey: key.recoveryKey } : {}) } };
      },
    },
    {
      name: 'backup target del',
      summary: 'remove a backup target (what is on it stays there)',
      args: [{ name: 'NAME', required: true }],
      standby: false,
      run: async (input) => {
        const name = input.arg('NAME');
        if (!targets().some((t) => t.name === name)) throw new Error(`backup target del: no target named ${name}`);
        await d.config().set('backup.targets', targets().filter((t) => t.name !== name));
        return { text: `backup target ${name} removed` };
      },
    },
    {
      name: 'backup target list',
      summary: 'the backup targets (passwords masked)',
      standby: true,
      run: () => {
        const list = targets().map((t) => ({ name: t.name, type: t.type, url: t.url, user: t.user, password: t.password ? '********' : '', hostKey: t.hostKey }));
        return { text: list.length ? list.map((t) => `${t.name}  ${t.type}  ${t.url}${t.user ? `  user ${t.user}` : ''}${t.hostKey ? `  host key ${t.hostKey}` : ''}`).join('\n') : 'no backup target (mlsd backup target add)', json: list };
      },
    },
    {
      name: 'backup target test',
      summary: 'log in to a target, write, read back and remove a probe file',
      args: [{ name: 'NAME', required: true }],
      standby: false,
      run: async (input) => {
        await d.backup().testTarget(input.arg('NAME'));
        return { text: `backup target ${input.arg('NAME')}: reachable, login accepted, writable` };
      },
    },
    {
      name: 'backup key import',
      summary: 'a new system flash: put back the backup key from the recovery key written down at setup',
      stdin: true,
      standby: true,
      run: async (input) => {
        const keys = await installRecoveryKey(d.configDir, secret(input.stdin));
        return { text: `backup key installed (backup set ${keys.setId}); add the target and run: mlsd restore start --from TARGET` };
      },
    },
    {
      name: 'backup run',
      summary: 'back up now (to every target, or one)',
      options: [{ name: 'target', type: 'string', value: 'NAME' }],
      standby: false,
      run: async (input) => {
        const rs = await d.backup().run(input.string('target'));
        return { text: rs.map((r) => `generation ${r.generation}: ${r.files} files, ${mb(r.bytes)}; sent ${r.sentObjects} objects, ${mb(r.sentBytes)} in ${(r.durationMs / 1000).toFixed(1)} s${r.dropped.length ? `; ${r.dropped.length} old generations dropped` : ''}`).join('\n'), json: rs };
      },
    },
    {
      name: 'backup status',
      summary: 'the last good backup, its generation, size and duration, the next run, the last failure',
      standby: false,
      run: async () => {
        const b = d.backup();
        const { last, failure, verify } = await b.last();
        const next = b.nextRun();
        const json = { last, failure, verify, next: next === null ? null : new Date(next).toISOString(), running: b.running(), restore: restoreJson(b.restoreProgress(), d.now()) };
        const lines = [
          last ? `last good backup: ${last.at} to ${last.target}, generation ${last.generation}, ${last.files} files, ${mb(last.bytes)} (${mb(last.sentBytes)} sent) in ${(last.durationMs / 1000).toFixed(1)} s` : 'last good backup: none yet',
          `next run: ${json.next ?? 'not scheduled (backup.schedule.enabled is off)'}`,
          ...(failure ? [`LAST RUN FAILED: ${failure.at} on ${failure.target}: ${failure.kind}: ${shown(failure.message)}`] : []),
          ...(verify ? [`last verify: ${verify.at} on ${verify.target}, ${verify.checked} files read back, ${verify.bad} bad`] : []),
          ...(json.running ? [`running now: ${json.running}`] : []),
        ];
        return { text: lines.join('\n'), json };
      },
    },
    {
      name: 'backup generations',
      summary: 'the complete backups (generations) on each target, or one, oldest first',
      options: [{ name: 'target', type: 'string', value: 'NAME' }],
      standby: false,
      run: async (input) => {
        const rs = await d.backup().generations(input.string('target'));
        return { text: rs.map((r) => `${r.target}: ${r.generations.length ? r.generations.join(' ') : 'no backup yet'}`).join('\n') || 'no backup target (mlsd backup target add)', json: rs };
      },
    },
    {
      name: 'backup verify',
      summary: "read back tonight's share of the newest backup (--full: all of it) and check it against the manifest",
      options: [
        { name: 'full', type: 'boolean' },
        { name: 'target', type: 'string', value: 'NAME' },
      ],
      standby: false,
      run: async (input) => {
        const rs = await d.backup().verify(input.flag('full'), input.string('target'));
        const bad = rs.reduce((n, r) => n + r.bad.length, 0);
        const lines = rs.map((r) => `${r.target}: generation ${r.generation ?? 'none'}, ${r.checked} files read back, ${r.bad.length} bad${r.bad.map((b) => `\n  BAD ${shown(b.path)}: ${shown(b.reason)}`).join('')}`);
        return { text: lines.join('\n'), json: rs, exitCode: bad ? 1 : 0 };
      },
    },
    {
      name: 'backup browse',
      summary: "a user's messages in a backup (newest generation, or --generation G)",
      args: [{ name: 'USER', required: true }],
      options: [
        { name: 'generation', type: 'string', value: 'G' },
        { name: 'target', type: 'string', value: 'NAME' },
      ],
      standby: false,
      run: async (input) => {
        const r = await d.backup().browse(input.arg('USER'), { generation: input.string('generation'), target: input.string('target') });
        const lines = [`${r.messages.length} messages of ${input.arg('USER')} in generation ${r.generation} on ${r.target}:`, ...r.messages.map((m) => `${m.id}  ${(m.date ?? '').slice(0, 16).replace('T', ' ')}  ${m.folder}  ${shown(m.from)}  ${shown(m.subject)}`)];
        return { text: lines.join('\n'), json: r };
      },
    },
    {
      name: 'backup fetch',
      summary: 'put one message back into its mailbox from a backup (no full restore)',
      args: [
        { name: 'USER', required: true },
        { name: 'MESSAGE', required: true },
      ],
      options: [
        { name: 'generation', type: 'string', value: 'G' },
        { name: 'target', type: 'string', value: 'NAME' },
      ],
      standby: false,
      run: async (input) => {
        const r = await d.backup().fetch(input.arg('USER'), input.arg('MESSAGE'), { generation: input.string('generation'), target: input.string('target') });
        return { text: r.already ? `${input.arg('MESSAGE')} is in the mailbox already (${r.path})` : `put back: ${r.path}`, json: r };
      },
    },
    {
      name: 'restore status',
      summary: 'the restore: state, files and bytes done and total, the user now, the time left',
      standby: false,
      run: () => {
        const p = d.backup().restoreProgress();
        return { text: restoreLine(p, d.now()), json: restoreJson(p, d.now()) };
      },
    },
    {
      name: 'restore start',
      summary: "put the newest backup from TARGET back onto this box's data disk, behind the mail it serves",
      options: [
        { name: 'from', type: 'string', required: true, value: 'TARGET' },
        { name: 'generation', type: 'string', value: 'G' },
      ],
      standby: false,
      run: async (input) => {
        await d.backup().startRestore(input.string('from')!, input.string('generation'));
        return { text: `restore from ${input.string('from')} started; follow it with: mlsd restore status` };
      },
    },
  ];
}
