import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/** One structured JSON event per line. Modules take a child logger tagged with their name. */
export function createLogger(opts: { level?: string; destination?: DestinationStream } = {}): Logger {
  const level = opts.level ?? process.env.MLSD_LOG_LEVEL ?? 'info';
  return pino({ level, base: { svc: 'mlsd' } }, opts.destination ?? pino.destination({ dest: 1, sync: false }));
}
