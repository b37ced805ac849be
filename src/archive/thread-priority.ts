import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

/**
 * Lowers the scheduling priority of the calling thread (a worker thread of the archive),
 * so that when the box is busy the thread serving SMTP gets the CPU and the archive falls
 * behind instead (its intake is durable; it catches up when the load drops). Linux: a
 * thread's id is read from /proc/thread-self (<pid>/task/<tid>), and setpriority() on a
 * thread id applies to that thread alone. Raising one's own nice value needs no privilege.
 * Elsewhere it does nothing and says so.
 */
export function lowerThreadPriority(nice = 10): boolean {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) return false;
    setPriority(tid, nice);
    return true;
  } catch {
    return false;
  }
}
