/** `@radfed/shared`: code both the coordinator and the site agent rely on. */
export * from './canonical/index.js';
export * from './cli/run-cli.js';
export * from './errors.js';
export * from './he/index.js';
export * from './keys/index.js';
export * from './logging/logger.js';
export { quietIpServerNameWarning } from './logging/quiet-warnings.js';
export * from './model/index.js';
export * from './pki/index.js';
export * from './provenance/index.js';
