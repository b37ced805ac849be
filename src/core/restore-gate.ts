/**
 * A restore owed to this box's data disk (a swapped disk): capabilities whose data cannot
 * take records while they run (the archive's hash chain) wait for it before they open
 * their data. Mail is accepted meanwhile; only their own work waits.
 */
export class RestoreGate {
  private release: () => void = () => undefined;
  private readonly opened: Promise<void> | null;
  private open = false;

  constructor(pending: boolean) {
    this.opened = pending ? new Promise<void>((res) => (this.release = res)) : null;
    this.open = !pending;
  }

  /** Resolves when the restore is done; null when none is owed. */
  waiting(): Promise<void> | null {
    return this.open ? null : this.opened;
  }

  /** The restore put everything back: waiting capabilities open their data. */
  done(): void {
    this.open = true;
    this.release();
  }
}
