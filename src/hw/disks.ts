/**
 * The DiskInventory port: what the box knows about its data disk, read afresh at each
 * poll. Adapters: disks-linux.ts (systeminformation, smartctl, statfs) and disks-sim.ts
 * (real `smartctl -j` output kept in fixture files). The SMART reading itself lives here,
 * so both adapters interpret smartctl's JSON the same way.
 */
export interface DiskSmart {
  /** smart_status.passed; null when the disk did not say. */
  passed: boolean | null;
  reallocatedSectors: number | null;
  pendingSectors: number | null;
  offlineUncorrectable: number | null;
  powerOnHours: number | null;
  temperatureC: number | null;
  /** NVMe only: the critical_warning bit field (0 is none) and the wear figure. */
  nvmeCriticalWarning: number | null;
  nvmePercentageUsed: number | null;
}

export interface DiskReading {
  /** The device path (/dev/sda). */
  device: string;
  /** False when smartctl could not open the device: the disk is not there. */
  present: boolean;
  model: string;
  serial: string;
  /** The World Wide Name as smartctl prints it (`5 000cca 0499602d2`); '' when the disk has none. */
  wwn: string;
  sizeBytes: number | null;
  /** ATA, NVMe, SCSI as smartctl names the protocol. */
  interface: string;
  smart: DiskSmart | null;
  /** What smartctl said went wrong, when it did. */
  messages: string[];
}

export interface DiskSpace {
  totalBytes: number;
  availableBytes: number;
}

export interface DiskInventory {
  /** The data disk as it is now (never throws for a missing disk: `present` is false). */
  dataDisk(): Promise<DiskReading>;
  /** Space on the file system holding the data folder. */
  space(): Promise<DiskSpace>;
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** An ATA attribute's raw count. Raw values of some attributes pack several fields; these three are plain counts. */
function ataRaw(table: unknown, id: number): number | null {
  if (!Array.isArray(table)) return null;
  const a = table.map(obj).find((x) => x.id === id);
  return a ? num(obj(a.raw).value) : null;
}

/**
 * Reads one `smartctl -j -a` output. smartctl's exit status is a bit mask: bit 0 (the
 * command line did not parse, or the device type could not be found) and bit 1 (the
 * device could not be opened) mean there is no disk to read; the other bits report the
 * disk's own state and are read from the fields.
 */
export function interpretSmartctl(raw: unknown, fallbackDevice: string): DiskReading {
  const j = obj(raw);
  const ctl = obj(j.smartctl);
  const exit = num(ctl.exit_status) ?? 0;
  const dev = obj(j.device);
  const messages = Array.isArray(ctl.messages) ? ctl.messages.map((m) => String(obj(m).string ?? '')).filter(Boolean) : [];
  const device = typeof dev.name === 'string' ? dev.name : fallbackDevice;
  const model = typeof j.model_name === 'string' ? j.model_name : '';
  const serial = typeof j.serial_number === 'string' ? j.serial_number : '';
  if ((exit & 3) !== 0 && !model) return { device, present: false, model: '', serial: '', wwn: '', sizeBytes: null, interface: '', smart: null, messages };
  const nvme = obj(j.nvme_smart_health_information_log);
  const isNvme = Object.keys(nvme).length > 0;
  const table = obj(j.ata_smart_attributes).table;
  const status = obj(j.smart_status);
  const smart: DiskSmart = {
    passed: typeof status.passed === 'boolean' ? status.passed : null,
    reallocatedSectors: ataRaw(table, 5),
    pendingSectors: ataRaw(table, 197),
    offlineUncorrectable: ataRaw(table, 198),
    powerOnHours: num(obj(j.power_on_time).hours) ?? num(nvme.power_on_hours),
    temperatureC: num(obj(j.temperature).current) ?? num(nvme.temperature),
    nvmeCriticalWarning: isNvme ? num(nvme.critical_warning) : null,
    nvmePercentageUsed: isNvme ? num(nvme.percentage_used) : null,
  };
  return {
    device,
    present: true,
    model,
    serial,
    wwn: wwnOf(j.wwn),
    sizeBytes: num(obj(j.user_capacity).bytes) ?? num(j.nvme_total_capacity),
    interface: typeof dev.protocol === 'string' ? dev.protocol : '',
    smart,
    messages,
  };
}

/** smartctl's `wwn` object (NAA, OUI, vendor id) in the form its text output uses. */
function wwnOf(v: unknown): string {
  const w = obj(v);
  const [naa, oui, id] = [num(w.naa), num(w.oui), num(w.id)];
  if (naa === null || oui === null || id === null) return '';
  return `${naa.toString(16)} ${oui.toString(16).padStart(6, '0')} ${id.toString(16).padStart(9, '0')}`;
}

/** What identifies one physical disk: a replaced disk has another. */
export interface DiskIdentity {
  model: string;
  serial: string;
  /** '' when unknown (NVMe, USB bridges): then model and serial alone decide. */
  wwn: string;
}

export function diskIdentity(d: DiskReading): DiskIdentity | null {
  return d.present ? { model: d.model, serial: d.serial, wwn: d.wwn } : null;
}

/** One disk, unless model, serial or (where both are known) the WWN differ. */
export function sameDisk(a: DiskIdentity, b: DiskIdentity): boolean {
  return a.model === b.model && a.serial === b.serial && (!a.wwn || !b.wwn || a.wwn === b.wwn);
}

/** The identity as one line: `WDC WD20EFRX-68EUZN0, serial X, WWN 5 0014ee 0499602d2`. */
export function describeIdentity(i: DiskIdentity): string {
  return `${i.model}, serial ${i.serial || '?'}${i.wwn ? `, WWN ${i.wwn}` : ''}`;
}

/** SMART predicts failure: the overall health test failed, or an NVMe critical warning is set. */
export function failurePredicted(s: DiskSmart | null): boolean {
  return !!s && (s.passed === false || (s.nvmeCriticalWarning ?? 0) !== 0);
}
