/**
 * How configuration problems are reported: every problem as one line, all of them in one ConfigError, so a
 * bad start lists everything to fix at once rather than one value per attempt.
 */
import type { ValidationError } from 'class-validator';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** class-validator's nested errors as problem lines, each naming its dotted path (`sources[0].secrets`). */
export function validationProblems(errors: ValidationError[], path = ''): string[] {
  const out: string[] = [];
  for (const e of errors) {
    const here = path ? (/^\d+$/.test(e.property) ? `${path}[${e.property}]` : `${path}.${e.property}`) : e.property;
    for (const message of Object.values(e.constraints ?? {})) out.push(`${here}: ${message}`);
    if (e.children?.length) out.push(...validationProblems(e.children, here));
  }
  return out;
}
