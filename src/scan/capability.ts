import { unlink } from 'node:fs/promises';
import type { BoxContext, Capability } from '../core/capability.js';
import type { Timer } from '../core/clock.js';
import { HOUR_MS, MINUTE_MS } from '../core/clock.js';
import { sublevel } from '../store/db.js';
import type { DataDecl } from '../store/data.js';
import type { Spool, Envelope } from '../spool/spool.js';
import { contentUnit } from '../policy/units.js';
import { ContentPolicy } from './policy.js';
import { QuarantineStore, type QuarantineRecord } from './quarantine.js';

const SCAN_STATE = 'scan-state';
const ANOMALY_KEY = 'volume-anomaly';

/** The volume history is weeks long: it must survive a restart and follow a failover. */
export const SCAN_STATE_DATA: DataDecl = {
  owner: 'scan',
  sublevels: [{ name: SCAN_STATE, describe: 'the volume-anomaly history of local senders', replicate: true }],
};

export interface ScanCapability extends Capability {
  quarantine: QuarantineStore;
  /**
   * A committed message goes on to routing, unless the scanners said quarantine or delete
   * (kept in its spool record, so recovery after a crash decides the same way).
   */
  dispatch(env: Envelope, body: Buffer[] | null): void;
  release(id: string): Promise<QuarantineRecord>;
  remove(id: string): Promise<QuarantineRecord>;
}

/** Outbound content scanning (the end-of-DATA unit), and what happens to what it catches. */
export async function startScan(
  box: BoxContext,
  spool: Spool,
  route: (env: Envelope, body?: Buffer[] | null) => void,
  isTrustedClient: (ip: string) => boolean,
): Promise<ScanCapability> {
  const { config, log, durability, clock, emit } = box;
  const contentPolicy = new ContentPolicy({ config: () => config.current, isTrustedClient, emit, log: log.child({ mod: 'scan' }) });
  contentPolicy.restore(await sublevel(box.db, SCAN_STATE).get(ANOMALY_KEY).catch(() => undefined));
  const saveAnomaly = () =>
    durability.writeLazy([{ type: 'put', sublevel: SCAN_STATE, key: ANOMALY_KEY, value: contentPolicy.snapshot() }]).catch((err: Error) => log.error({ evt: 'scan.anomaly.save', err: err.message }, 'could not save volume history'));
  const quarantine = new QuarantineStore(box.dataDir, box.db, durability, box.dirs, log.child({ mod: 'quarantine' }));
  await quarantine.init();
  await quarantine.sweepOrphans();

  // One operation per message at a time: a double release must not deliver twice.
  const busy = new Set<string>();
  const exclusive = async <T>(id: string, op: () => Promise<T>): Promise<T> => {
    if (busy.has(id)) throw new Error(`quarantine: ${id} is being released or deleted right now`);
    busy.add(id);
    try {
      return await op();
    } finally {
      busy.delete(id);
    }
  };
  const retryTimers = new Set<Timer>();
  const dispatch = (env: Envelope, body: Buffer[] | null): void => {
    const action = env.scan?.action;
    if (action === 'quarantine') {
      void quarantine.add(env, spool.dataPath(env.id), spool.removeOp(env.id), config.current.scan.quarantineDays).then(
        () => emit({ kind: 'scan.quarantined', severity: 'info', account: env.login ?? undefined, ip: env.clientIp, text: `${env.id} from <${env.from}> quarantined (${env.scan!.class}): ${env.scan!.summary}` }),
        (err: Error) => {
          // It stays in the spool (never delivered, never lost) and is tried again.
          log.error({ evt: 'quarantine.fail', id: env.id, err: err.message }, 'could not quarantine; will try again in 30 s');
          const t = clock.setTimeout(() => {
            retryTimers.delete(t);
            dispatch(env, null);
          }, 30_000);
          retryTimers.add(t);
        },
      );
    } else if (action === 'delete') {
      // Accepted and dropped on purpose (scan.*.action delete): the log line is its only trace.
      log.info({ evt: 'scan.deleted', id: env.id, from: env.from, rcpt: env.rcpt, login: env.login, ip: env.clientIp, summary: env.scan!.summary }, 'spam deleted');
      void durability
        .writeLazy([spool.removeOp(env.id)])
        .then(() => unlink(spool.dataPath(env.id)))
        .catch(() => undefined);
    } else route(env, body);
  };

  const unmerge = durability.data.onMerge('quarantine', async (id, value, body) => {
    if (await quarantine.get(id)) return false;
    await quarantine.takeIn(value as QuarantineRecord, body);
    log.info({ evt: 'ha.merge.quarantine', id }, 'took in a message the other box quarantined alone');
    return true;
  });
  const expire = () => void quarantine.expire().catch((err: Error) => log.error({ evt: 'quarantine.expire.fail', err: err.message }, 'could not expire quarantine'));
  expire();
  const expiryTimer = clock.setInterval(expire, HOUR_MS).unref();
  const anomalyTimer = clock.setInterval(() => void saveAnomaly(), MINUTE_MS).unref();

  return {
    quarantine,
    dispatch,
    policies: [contentUnit(contentPolicy)],
    release: (id) =>
      exclusive(id, async () => {
        const rec = await quarantine.get(id);
        if (!rec) throw new Error(`quarantine: no message ${id}`);
        // Back into the normal flow, without the scanners' verdict, as the admin decided.
        const env: Envelope = { ...rec.envelope, scan: undefined };
        delete env.scan;
        await spool.adopt(env, quarantine.path(id), [quarantine.removeOp(id)]);
        await quarantine.forgetFile(id);
        log.info({ evt: 'quarantine.release', id, from: env.from, rcpt: env.rcpt, class: rec.class, summary: rec.summary }, 'quarantined message released by the administrator');
        route(env);
        return rec;
      }),
    remove: (id) =>
      exclusive(id, async () => {
        const rec = await quarantine.remove(id);
        log.info({ evt: 'quarantine.delete', id, from: rec.envelope.from }, 'quarantined message deleted');
        return rec;
      }),
    async stop() {
      unmerge();
      retryTimers.forEach((t) => clock.clearTimeout(t));
      clock.clearInterval(expiryTimer);
      clock.clearInterval(anomalyTimer);
      await saveAnomaly();
    },
  };
}
