import { STORE_KINDS } from '../support/stores.js';
import { roundEngineContract } from './round-engine.contract.js';

for (const kind of STORE_KINDS) roundEngineContract(kind);
