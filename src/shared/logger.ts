/** Structured logging: one JSON object per line on stdout (errors on stderr). */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  /** Something an operator should act on that does not stop the process (e.g. an unauthenticated API). */
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** A logger whose lines carry `service`; `sink` replaces stdout/stderr (e.g. to silence tests). */
export function createLogger(service: string, sink?: (line: string) => void): Logger {
  const write = (level: string, message: string, fields?: Record<string, unknown>) => {
    const line = JSON.stringify({ time: new Date().toISOString(), level, service, message, ...fields });
    if (sink) sink(line);
    else (level === "error" ? process.stderr : process.stdout).write(`${line}\n`);
  };
  return {
    info: (message, fields) => write("info", message, fields),
    warn: (message, fields) => write("warn", message, fields),
    error: (message, fields) => write("error", message, fields),
  };
}
