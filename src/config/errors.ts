/** A config value refused: names the key and what is wrong, in one line. */
export class ConfigError extends Error {
  readonly kind = 'config' as const;
  constructor(readonly problems: string[]) {
    super(`config: ${problems.join('; ')}`);
  }
}
