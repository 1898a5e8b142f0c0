/**
 * Drops Node's DEP0123 warning ("Setting the TLS ServerName to an IP address..."), which grpc-js
 * triggers whenever a coordinator is addressed by IP; certificate checks are unaffected (the
 * coordinator's certificate carries its IP addresses). Every other warning still prints.
 */
export function quietIpServerNameWarning(): void {
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: unknown, ...rest: unknown[]) => {
    const opt = rest[0];
    const code = typeof opt === 'object' && opt !== null ? (opt as { code?: string }).code : rest[1];
    if (code === 'DEP0123') return;
    emit(warning, ...rest);
  }) as typeof process.emitWarning;
}
