// Entry of a known-answer check child process: loads the TypeScript check through tsx (no build
// step), as bin/radfed-agent.mjs does for the agent itself.
import { register } from 'tsx/esm/api';

register();
await import('./check-child.ts');
