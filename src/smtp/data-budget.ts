/** smtp.maxDataBytesInFlight as it applies: 0 (the default) is 256 MiB, or room for two messages of the maximum size. */
export function dataBudgetBytes(smtp: { maxDataBytesInFlight: number; maxMessageBytes: number }): number {
  return smtp.maxDataBytesInFlight || Math.max(256 * 1024 * 1024, 2 * smtp.maxMessageBytes);
}

/**
 * One shared budget for the bytes that DATA phases in progress hold: each one's partial
 * spool file on the data disk, and the copy the scanners read back into memory before the
 * commit. Without it, many clients sending large messages at once could fill the disk (and
 * make every other client get 452) before any single message reached its size limit.
 *
 * A claim counts every byte its DATA phase received, so it also bounds what that phase holds
 * in memory (the header block kept for the policies, the write buffer, the scanners' copy).
 *
 * Each DATA phase takes a claim and grows it as its bytes arrive; a growth that would pass
 * the limit is refused, and that DATA phase alone is answered with a temporary reply. A
 * claim is released when its DATA phase ends (committed or not): committed mail belongs to
 * the spool, whose own guard is spool.minFreeBytes.
 */
export class DataBudget {
  private used = 0;

  constructor(private readonly limit: () => number) {}

  /** Bytes held by DATA phases in progress. */
  get inFlight(): number {
    return this.used;
  }

  get max(): number {
    return this.limit();
  }

  claim(): DataClaim {
    return new DataClaim(this);
  }

  /** @internal for DataClaim */
  take(n: number): boolean {
    if (this.used + n > this.limit()) return false;
    this.used += n;
    return true;
  }

  /** @internal for DataClaim */
  give(n: number): void {
    this.used = Math.max(0, this.used - n);
  }
}

/** The bytes one DATA phase holds of the shared budget. */
export class DataClaim {
  private held = 0;
  private released = false;

  constructor(private readonly budget: DataBudget) {}

  get bytes(): number {
    return this.held;
  }

  /** Takes `n` more bytes; false (and nothing taken) when the budget has no room for them. */
  grow(n: number): boolean {
    if (this.released || !this.budget.take(n)) return false;
    this.held += n;
    return true;
  }

  /** Gives everything back; safe to call more than once. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.budget.give(this.held);
    this.held = 0;
  }
}
