/**
 * Remembers every secret value the runner has read and blanks it out of text on its way to a log
 * line, a span or an admin answer. Values are registered by SecretsService on every read, so a
 * value that leaks through an unexpected path (a client error echoing a request, a flow author
 * logging a variable) is still caught at the sink.
 */
export class SecretRedactor {
  static readonly MASK = '[redacted]';
  /** Insertion-ordered, so the oldest value goes first when the cap is reached. */
  private readonly values = new Set<string>();
  private pattern: RegExp | null = null;

  constructor(
    private readonly maxValues = 10_000,
    /** Shorter values would blank ordinary words everywhere; such secrets are weak anyway. */
    readonly minLength = 4,
  ) {}

  register(value: string): void {
    if (value.length < this.minLength) return;
    // A value with quotes or backslashes appears escaped inside JSON log lines.
    for (const form of new Set([value, JSON.stringify(value).slice(1, -1)])) {
      if (this.values.has(form)) continue;
      this.values.add(form);
      this.pattern = null;
    }
    while (this.values.size > this.maxValues) {
      const oldest = this.values.values().next().value as string;
      this.values.delete(oldest);
      this.pattern = null;
    }
  }

  get size(): number {
    return this.values.size;
  }

  redact(text: string): string {
    if (this.values.size === 0 || text.length === 0) return text;
    return text.replace(this.regex(), SecretRedactor.MASK);
  }

  /** Deep copy of a JSON-like value with every string redacted. */
  redactValue<T>(value: T): T {
    if (this.values.size === 0) return value;
    return JSON.parse(this.redact(JSON.stringify(value) ?? 'null')) as T;
  }

  contains(text: string): boolean {
    if (this.values.size === 0) return false;
    const re = this.regex();
    re.lastIndex = 0;
    return re.test(text);
  }

  /** Tests only. */
  clear(): void {
    this.values.clear();
    this.pattern = null;
  }

  private regex(): RegExp {
    if (!this.pattern) {
      // Longest first, so a value that contains another is masked whole.
      const alternatives = [...this.values].sort((a, b) => b.length - a.length).map(escapeRegExp);
      this.pattern = new RegExp(alternatives.join('|'), 'g');
    }
    return this.pattern;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Process-wide: the log and span sinks are built before Nest's container exists. */
export const secretRedactor = new SecretRedactor();
