/** `@radfed/coordinator`: start a coordinator in-process, or talk to one as an operator. */
export { type Coordinator, startCoordinator } from './app.js';
export { OperatorClient, type OperatorConnection, tlsFromPkiDir } from './cli/operator-client.js';
export { type CoordinatorConfig, coordinatorConfigSchema, loadCoordinatorConfig } from './config/config.js';
export * from './errors.js';
