/**
 * The Power port: the box reboots or switches itself off. Adapters: power-sim.ts (records
 * the request; the daemon keeps running) and power-linux.ts (systemctl).
 */
export type PowerAction = 'reboot' | 'shutdown';

export interface Power {
  reboot(): Promise<void>;
  shutdown(): Promise<void>;
}
